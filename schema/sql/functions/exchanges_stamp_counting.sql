-- Stamps when an exchange came to count (approved_at) and when it stopped (reversed_at); both
-- are history and never change. An exchange is logged first and approved later, or approved as
-- it is logged: then only with a transfer of its own, posted with it by the same transaction.
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
            -- Approved as it is logged: only with a transfer of its own, posted directly (not
            -- from a reservation) by this very transaction, of its minutes, from the
            -- receiver's account to the giver's, and not reversed.
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

CREATE OR REPLACE TRIGGER exchanges_stamp_counting BEFORE INSERT OR UPDATE ON exchanges
    FOR EACH ROW EXECUTE FUNCTION exchanges_stamp_counting();
