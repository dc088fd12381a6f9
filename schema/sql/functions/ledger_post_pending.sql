-- Post a reservation: its transfer, from the pending amounts. Returns (replayed, the
-- transfer); with an idempotency key, a replay returns the transfer first posted.
CREATE OR REPLACE FUNCTION ledger_post_pending(
    p_timebank_id bigint, p_pending_id bigint, p_author text, p_key text, p_hash bytea,
    OUT replayed boolean, OUT transfer transfers)
LANGUAGE plpgsql AS $$
DECLARE
    previous jsonb := ledger_claim_key(p_timebank_id, p_author, p_key, p_hash);
    p pending_transfers%ROWTYPE;
BEGIN
    replayed := previous IS NOT NULL;
    IF replayed THEN
        SELECT * INTO transfer FROM transfers WHERE id = (previous ->> 'transfer_id')::bigint;
        RETURN;
    END IF;
    p := ledger_resolve_pending(p_timebank_id, p_pending_id, 'posted');
    transfer := ledger_apply_transfer(p_timebank_id, p.debit_account_id, p.credit_account_id,
                                      p.minutes, p.kind, p.memo, p.id, NULL);
    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('transfer_id', transfer.id));
END $$;
