-- Post the reversal of a transfer, with a reason: the same minutes back between the same
-- accounts, at most once per transfer, never of a reversal. Returns (replayed, the reversal),
-- as ledger_post_transfer does.
CREATE OR REPLACE FUNCTION ledger_reverse(
    p_timebank_id bigint, p_transfer_id bigint, p_reason text, p_author text, p_key text,
    p_hash bytea, OUT replayed boolean, OUT transfer transfers)
LANGUAGE plpgsql AS $$
DECLARE
    previous jsonb := ledger_claim_key(p_timebank_id, p_author, p_key, p_hash);
    original transfers%ROWTYPE;
BEGIN
    replayed := previous IS NOT NULL;
    IF replayed THEN
        SELECT * INTO transfer FROM transfers WHERE id = (previous ->> 'transfer_id')::bigint;
        RETURN;
    END IF;
    IF p_reason IS NULL OR length(btrim(p_reason)) = 0 THEN
        RAISE EXCEPTION 'a reversal needs a reason' USING ERRCODE = 'TBVA0';
    END IF;
    -- Lock the original so concurrent reversals of it take turns; the second then sees the
    -- first and is told the transfer is already reversed (not a limit error).
    SELECT * INTO original FROM transfers WHERE id = p_transfer_id AND timebank_id = p_timebank_id
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'transfer % not found in this timebank', p_transfer_id USING ERRCODE = 'TBNF0';
    END IF;
    IF original.kind = 'reversal' THEN
        RAISE EXCEPTION 'transfer % is a reversal and cannot itself be reversed', p_transfer_id
            USING ERRCODE = 'TBST0';
    END IF;
    IF EXISTS (SELECT 1 FROM transfers WHERE reverses_transfer_id = p_transfer_id) THEN
        RAISE EXCEPTION 'transfer % is already reversed', p_transfer_id USING ERRCODE = 'TBST0';
    END IF;
    transfer := ledger_apply_transfer(p_timebank_id, original.credit_account_id,
                                      original.debit_account_id, original.minutes, 'reversal',
                                      p_reason, NULL, p_transfer_id);
    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('transfer_id', transfer.id));
END $$;
