-- A group session's legs agree with it, checked at commit of every transaction that writes a
-- session or one of its legs (inserting, changing or deleting one): as many legs as it says,
-- their minutes summing to its minutes, each between the host (on the host's side) and one
-- attendee, on the session's date and category; and the legs move together: once one is
-- approved (or reversed) every leg is, and once one is rejected or cancelled every leg is one
-- or the other. A session's id is never an exchange's (they share one sequence).
CREATE OR REPLACE FUNCTION exchange_groups_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    g exchange_groups;
    checked_id bigint;
    found_legs integer;
    found_minutes bigint;
    strays integer;
    settled text[];
BEGIN
    -- One branch per table: NEW of exchange_groups has no group_id to name.
    IF TG_TABLE_NAME = 'exchange_groups' THEN
        checked_id := NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        checked_id := OLD.group_id;
    ELSE
        checked_id := NEW.group_id;
    END IF;
    SELECT * INTO g FROM exchange_groups WHERE id = checked_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT FROM exchanges e WHERE e.id = g.id) THEN
        RAISE EXCEPTION 'group session % has the id of an exchange', g.id USING ERRCODE = 'TBIN0';
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
    -- Settled legs: all approved, all reversed, or all released (rejected, or cancelled
    -- where nobody had confirmed them), never some settled and some still open.
    IF settled IS NOT NULL AND NOT (
            settled <@ ARRAY['rejected', 'cancelled']
            OR cardinality(settled) = 1 AND settled[1] IN ('approved', 'reversed'))
       OR EXISTS (SELECT FROM exchanges e
                   WHERE e.group_id = g.id AND settled IS NOT NULL
                     AND e.state IN ('logged', 'awaiting_approval', 'disputed')) THEN
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

-- Every column the check reads: a leg that changes its parties, date, category, minutes or
-- state is checked again with its session.
DROP TRIGGER IF EXISTS exchanges_group_check ON exchanges;
CREATE CONSTRAINT TRIGGER exchanges_group_check
    AFTER INSERT OR UPDATE OF state, group_id, minutes, giver_id, receiver_id, service_date,
                              category_id, timebank_id ON exchanges
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.group_id IS NOT NULL)
    EXECUTE FUNCTION exchange_groups_check();

DROP TRIGGER IF EXISTS exchanges_group_check_delete ON exchanges;
CREATE CONSTRAINT TRIGGER exchanges_group_check_delete
    AFTER DELETE ON exchanges
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.group_id IS NOT NULL)
    EXECUTE FUNCTION exchange_groups_check();

-- A session's figures are history: only what erasure forgets (its description, who logged it)
-- may be set to null; exchanges never leave or join a session once in one.
CREATE OR REPLACE TRIGGER exchange_groups_append_only BEFORE UPDATE OR DELETE ON exchange_groups
    FOR EACH ROW EXECUTE FUNCTION ledger_records_append_only('description', 'logged_by_user_id');

CREATE OR REPLACE TRIGGER exchange_groups_no_truncate BEFORE TRUNCATE ON exchange_groups
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_records_append_only();
