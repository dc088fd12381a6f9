-- Void a reservation, releasing its pending amounts. Returns (replayed, the reservation), as
-- ledger_post_transfer does.
CREATE OR REPLACE FUNCTION ledger_void_pending(
    p_timebank_id bigint, p_pending_id bigint, p_author text, p_key text, p_hash bytea,
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
    pending := ledger_resolve_pending(p_timebank_id, p_pending_id, 'voided');
    PERFORM ledger_hold(p_timebank_id, pending.debit_account_id, pending.credit_account_id,
                        -pending.minutes);
    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('pending_id', pending.id));
END $$;
