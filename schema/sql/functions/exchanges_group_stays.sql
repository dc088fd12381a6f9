-- An exchange joins a group session only in the transaction that logs it (as one of its
-- legs), and never leaves it or moves to another.
CREATE OR REPLACE FUNCTION exchanges_group_stays() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.group_id IS DISTINCT FROM OLD.group_id
       AND (OLD.group_id IS NOT NULL OR OLD.xmin <> pg_current_xact_id()::xid) THEN
        RAISE EXCEPTION 'exchange %: a leg of a group session joins it when logged, and stays', OLD.id
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER exchanges_group_stays BEFORE UPDATE OF group_id ON exchanges
    FOR EACH ROW EXECUTE FUNCTION exchanges_group_stays();
