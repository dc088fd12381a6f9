-- I1 at commit: each transfer has exactly its two postings, summing to zero.
CREATE OR REPLACE FUNCTION transfers_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    leg_count int;
    leg_sum bigint;
BEGIN
    SELECT count(*), coalesce(sum(minutes), 0) INTO leg_count, leg_sum
      FROM postings WHERE transfer_id = NEW.id;
    IF leg_count <> 2 OR leg_sum <> 0 THEN
        RAISE EXCEPTION 'transfer % has % postings summing to %; it needs two that sum to zero',
            NEW.id, leg_count, leg_sum
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS transfers_balanced ON transfers;
CREATE CONSTRAINT TRIGGER transfers_balanced AFTER INSERT ON transfers
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION transfers_check_balanced();
