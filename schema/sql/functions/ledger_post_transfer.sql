-- Post one transfer of kind exchange, grant or adjustment. The public posting functions each
-- take an optional idempotency key (author, key, request hash) and return (replayed, the row):
-- on a replay, the row first answered.
CREATE OR REPLACE FUNCTION ledger_post_transfer(
    p_timebank_id bigint, p_debit bigint, p_credit bigint, p_minutes bigint, p_kind text,
    p_memo text, p_author text, p_key text, p_hash bytea,
    OUT replayed boolean, OUT transfer transfers)
LANGUAGE plpgsql AS $$
DECLARE
    previous jsonb := ledger_claim_key(p_timebank_id, p_author, p_key, p_hash);
BEGIN
    replayed := previous IS NOT NULL;
    IF replayed THEN
        SELECT * INTO transfer FROM transfers WHERE id = (previous ->> 'transfer_id')::bigint;
        RETURN;
    END IF;
    IF p_kind IS NULL OR p_kind NOT IN ('exchange', 'grant', 'adjustment') THEN
        RAISE EXCEPTION 'a transfer of kind % cannot be posted directly', p_kind USING ERRCODE = 'TBVA0';
    END IF;
    transfer := ledger_apply_transfer(p_timebank_id, p_debit, p_credit, p_minutes, p_kind,
                                      p_memo, NULL, NULL);
    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('transfer_id', transfer.id));
END $$;
