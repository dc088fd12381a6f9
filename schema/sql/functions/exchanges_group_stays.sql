-- An exchange joins a group session only in the transaction that logs it (as one of its
-- legs), and never leaves it or moves to another. Logged by this transaction means its row
-- was written by it (xmin) and it was created at this transaction's start; when an exchange
-- was created never changes, so an exchange logged earlier and touched now stays outside.
-- An exchange never takes a session's id (they share one sequence; exchange_groups_check
-- holds the other way round).
CREATE OR REPLACE FUNCTION exchanges_group_stays() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF EXISTS (SELECT FROM exchange_groups WHERE id = NEW.id) THEN
            RAISE EXCEPTION 'exchange %: the id of a group session', NEW.id USING ERRCODE = 'TBIN0';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'exchange %: when it was logged is history and cannot change', OLD.id
            USING ERRCODE = 'TBIN0';
    END IF;
    IF NEW.group_id IS DISTINCT FROM OLD.group_id
       AND (OLD.group_id IS NOT NULL OR OLD.xmin <> pg_current_xact_id()::xid
            OR OLD.created_at <> now()) THEN
        RAISE EXCEPTION 'exchange %: a leg of a group session joins it when logged, and stays', OLD.id
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER exchanges_group_stays
    BEFORE INSERT OR UPDATE OF group_id, created_at ON exchanges
    FOR EACH ROW EXECUTE FUNCTION exchanges_group_stays();
