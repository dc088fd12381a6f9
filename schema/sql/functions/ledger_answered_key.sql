-- The stored answer of an idempotency key for the request of hash p_hash (NULL while it has
-- none); a different request under the same key is refused, as ledger_claim_key refuses it.
-- For the statement that logs an exchange, which looks the key up before it claims it.
CREATE OR REPLACE FUNCTION ledger_answered_key(
    p_key text, p_stored_hash bytea, p_stored_result jsonb, p_hash bytea)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_stored_hash <> p_hash THEN
        RAISE EXCEPTION 'idempotency key % was already used for a different request', p_key
            USING ERRCODE = 'TBID0';
    END IF;
    RETURN p_stored_result;
END $$;
