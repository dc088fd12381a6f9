-- A group session's legs agree with it, checked at commit of every transaction that writes a
-- session or one of its legs: as many legs as it says, their minutes summing to its minutes,
-- each between the host (on the host's side) and one attendee, on the session's date and
-- category; and the legs move together: once one is approved, rejected, cancelled or
-- reversed, every leg is.
CREATE OR REPLACE FUNCTION exchange_groups_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    g exchange_groups;
    found_legs integer;
    found_minutes bigint;
    strays integer;
    settled text[];
BEGIN
    SELECT * INTO g FROM exchange_groups
     WHERE id = CASE TG_TABLE_NAME WHEN 'exchange_groups' THEN NEW.id ELSE NEW.group_id END;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT count(*), coalesce(sum(e.minutes), 0),
           count(*) FILTER (WHERE e.timebank_id <> g.timebank_id
                               OR e.service_date <> g.service_date
                               OR e.category_id <> g.category_id
                               OR CASE g.host_side WHEN 'giver' THEN e.giver_id
                                                   ELSE e.receiver_id END <> g.host_id),
           array_agg(DISTINCT e.state) FILTER (WHERE e.state IN
               ('approved', 'rejected', 'cancelled', 'reversed'))
      INTO found_legs, found_minutes, strays, settled
      FROM exchanges e WHERE e.group_id = g.id;
    IF found_legs <> g.legs OR found_minutes <> g.minutes THEN
        RAISE EXCEPTION 'group session % does not balance: % legs of % minutes, it says % legs of % minutes',
            g.id, found_legs, found_minutes, g.legs, g.minutes
            USING ERRCODE = 'TBIN0';
    END IF;
    IF strays > 0 THEN
        RAISE EXCEPTION 'group session %: every leg is between its host and one attendee, on its date and category', g.id
            USING ERRCODE = 'TBIN0';
    END IF;
    IF cardinality(settled) > 1 OR (cardinality(settled) = 1 AND EXISTS (
            SELECT FROM exchanges e WHERE e.group_id = g.id AND e.state <> settled[1])) THEN
        RAISE EXCEPTION 'group session %: its legs are decided together', g.id
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS exchange_groups_check ON exchange_groups;
CREATE CONSTRAINT TRIGGER exchange_groups_check
    AFTER INSERT OR UPDATE ON exchange_groups
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    EXECUTE FUNCTION exchange_groups_check();

DROP TRIGGER IF EXISTS exchanges_group_check ON exchanges;
CREATE CONSTRAINT TRIGGER exchanges_group_check
    AFTER INSERT OR UPDATE OF state, group_id, minutes ON exchanges
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.group_id IS NOT NULL)
    EXECUTE FUNCTION exchange_groups_check();

-- A session's figures are history: only what erasure forgets (its description, who logged it)
-- may be set to null; exchanges never leave or join a session once in one.
CREATE OR REPLACE TRIGGER exchange_groups_append_only BEFORE UPDATE OR DELETE ON exchange_groups
    FOR EACH ROW EXECUTE FUNCTION ledger_records_append_only('description', 'logged_by_user_id');

CREATE OR REPLACE TRIGGER exchange_groups_no_truncate BEFORE TRUNCATE ON exchange_groups
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_records_append_only();
