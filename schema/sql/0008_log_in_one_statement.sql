-- Logging an exchange writes in one statement, its own transaction (no BEGIN and COMMIT round
-- trips, and row locks held only while it runs). The statement claims the idempotency key
-- before it writes; the read before it only looks the key up, with this function.

-- An exchange inserted as approved carries a transfer posted by this very transaction (not an
-- older direct transfer of the same shape, which might since have been reversed), and one
-- nobody has reversed.
CREATE OR REPLACE FUNCTION exchanges_stamp_counting() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.approved_at IS NOT NULL AND NEW.approved_at IS DISTINCT FROM OLD.approved_at
           OR OLD.reversed_at IS NOT NULL AND NEW.reversed_at IS DISTINCT FROM OLD.reversed_at THEN
            RAISE EXCEPTION 'when an exchange was approved or reversed is history and cannot change'
                USING ERRCODE = 'TBIN0';
        END IF;
        IF NEW.state = 'approved' AND OLD.state <> 'approved' THEN
            NEW.approved_at := clock_timestamp();
        ELSIF NEW.state = 'reversed' AND OLD.state <> 'reversed' THEN
            NEW.reversed_at := clock_timestamp();
        END IF;
    ELSIF NEW.state = 'approved' AND NEW.pending_transfer_id IS NULL AND EXISTS (
            SELECT FROM transfers t
              JOIN accounts debit ON debit.id = t.debit_account_id
              JOIN accounts credit ON credit.id = t.credit_account_id
             WHERE t.id = NEW.transfer_id AND t.timebank_id = NEW.timebank_id
               AND t.kind = 'exchange' AND t.minutes = NEW.minutes
               AND t.pending_transfer_id IS NULL
               AND t.xmin = pg_current_xact_id()::xid
               AND debit.participant_id = NEW.receiver_id
               AND credit.participant_id = NEW.giver_id
               AND NOT EXISTS (SELECT FROM transfers r WHERE r.reverses_transfer_id = t.id)) THEN
        NEW.approved_at := clock_timestamp();
    ELSIF NEW.state IN ('approved', 'reversed') THEN
        RAISE EXCEPTION 'an exchange is logged first, then approved (or approved as it is logged, with a transfer of its own posted with it)'
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NEW;
END $$;

-- The stored answer of an idempotency key for the request of hash p_hash (NULL while it has
-- none); a different request under the same key is refused, as ledger_claim_key refuses it.
CREATE FUNCTION ledger_answered_key(p_key text, p_stored_hash bytea, p_stored_result jsonb,
                                    p_hash bytea)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_stored_hash <> p_hash THEN
        RAISE EXCEPTION 'idempotency key % was already used for a different request', p_key
            USING ERRCODE = 'TBID0';
    END IF;
    RETURN p_stored_result;
END $$;
