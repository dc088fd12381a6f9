-- Reserve minutes for a pending exchange (two-phase: later posted or voided). Returns
-- (replayed, the reservation), as ledger_post_transfer does.
CREATE OR REPLACE FUNCTION ledger_reserve(
    p_timebank_id bigint, p_debit bigint, p_credit bigint, p_minutes bigint, p_kind text,
    p_memo text, p_author text, p_key text, p_hash bytea,
    OUT replayed boolean, OUT pending pending_transfers)
LANGUAGE plpgsql AS $$
DECLARE
    previous jsonb := ledger_claim_key(p_timebank_id, p_author, p_key, p_hash);
BEGIN
    replayed := previous IS NOT NULL;
    IF replayed THEN
        SELECT * INTO pending FROM pending_transfers WHERE id = (previous ->> 'pending_id')::bigint;
        RETURN;
    END IF;
    IF p_minutes IS NULL OR p_minutes <= 0 THEN
        RAISE EXCEPTION 'minutes must be a positive whole number' USING ERRCODE = 'TBVA0';
    END IF;
    IF p_debit = p_credit THEN
        RAISE EXCEPTION 'a transfer needs two different accounts' USING ERRCODE = 'TBVA0';
    END IF;
    IF p_kind = 'exchange' THEN
        PERFORM ledger_check_exchange_maximum(p_timebank_id, p_minutes);
    END IF;
    PERFORM ledger_hold(p_timebank_id, p_debit, p_credit, p_minutes);
    INSERT INTO pending_transfers (timebank_id, debit_account_id, credit_account_id, minutes, kind, memo)
    VALUES (p_timebank_id, p_debit, p_credit, p_minutes, p_kind, p_memo)
    RETURNING * INTO pending;
    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('pending_id', pending.id));
END $$;
