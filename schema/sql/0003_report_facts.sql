-- When an exchange came to count, and when it stopped: reports count an exchange "as of" a
-- moment T when it was approved by T and not reversed by T, so asking again with the same T
-- gives the same figures whatever happens later. PostgreSQL stamps both moments itself.

ALTER TABLE exchanges
    ADD COLUMN approved_at timestamptz,
    ADD COLUMN reversed_at timestamptz;

UPDATE exchanges e SET approved_at = t.created_at FROM transfers t WHERE t.id = e.transfer_id;
UPDATE exchanges e SET reversed_at = t.created_at FROM transfers t WHERE t.id = e.reversal_transfer_id;

ALTER TABLE exchanges
    ADD CONSTRAINT exchanges_approved_at_when_posted
        CHECK ((approved_at IS NOT NULL) = (state IN ('approved', 'reversed'))),
    ADD CONSTRAINT exchanges_reversed_at_when_reversed
        CHECK ((reversed_at IS NOT NULL) = (state = 'reversed')),
    ADD CONSTRAINT exchanges_reversed_after_approved CHECK (reversed_at >= approved_at);

CREATE FUNCTION exchanges_stamp_counting() RETURNS trigger
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
    ELSIF NEW.state IN ('approved', 'reversed') THEN
        RAISE EXCEPTION 'an exchange is logged first, then approved' USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER exchanges_stamp_counting BEFORE INSERT OR UPDATE ON exchanges
    FOR EACH ROW EXECUTE FUNCTION exchanges_stamp_counting();

-- Reports read counted exchanges of one timebank by service date.
CREATE INDEX exchanges_counted_idx ON exchanges (timebank_id, service_date)
    INCLUDE (giver_id, receiver_id, minutes, category_id, approved_at, reversed_at)
    WHERE approved_at IS NOT NULL;
CREATE INDEX participants_timebank_joined_idx ON participants (timebank_id, joined_on)
    INCLUDE (kind, created_at);
