-- A posted reservation has its transfer by commit time.
CREATE OR REPLACE FUNCTION pending_transfers_check_posted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM transfers WHERE pending_transfer_id = NEW.id) THEN
        RAISE EXCEPTION 'reservation % is marked posted but no transfer posts it', NEW.id
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS pending_transfers_posted_once ON pending_transfers;
CREATE CONSTRAINT TRIGGER pending_transfers_posted_once AFTER UPDATE OF state ON pending_transfers
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.state = 'posted')
    EXECUTE FUNCTION pending_transfers_check_posted();
