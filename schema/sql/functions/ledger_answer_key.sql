-- Store the answer of a claimed idempotency key; nothing when no key was given.
CREATE OR REPLACE FUNCTION ledger_answer_key(
    p_timebank_id bigint, p_author text, p_key text, p_result jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_key IS NULL THEN
        RETURN;
    END IF;
    UPDATE idempotency_keys SET result = p_result
     WHERE timebank_id = p_timebank_id AND author = p_author AND key = p_key;
END $$;
