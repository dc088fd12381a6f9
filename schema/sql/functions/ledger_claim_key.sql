-- Claim an idempotency key: NULL when newly claimed (go ahead), the stored result when this
-- exact request was already answered; a different request under the same key is refused.
CREATE OR REPLACE FUNCTION ledger_claim_key(
    p_timebank_id bigint, p_author text, p_key text, p_hash bytea)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    stored_hash bytea;
    stored_result jsonb;
BEGIN
    IF p_key IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO idempotency_keys (timebank_id, author, key, request_hash)
    VALUES (p_timebank_id, p_author, p_key, p_hash)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    SELECT request_hash, result INTO stored_hash, stored_result FROM idempotency_keys
     WHERE timebank_id = p_timebank_id AND author = p_author AND key = p_key;
    IF stored_hash <> p_hash THEN
        RAISE EXCEPTION 'idempotency key % was already used for a different request', p_key
            USING ERRCODE = 'TBID0';
    END IF;
    RETURN stored_result;
END $$;
