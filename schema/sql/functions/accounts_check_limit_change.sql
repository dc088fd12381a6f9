-- A participant account's limits change only with their record in account_limit_changes,
-- written by the same transaction, from the limits it had to those it has (checked at commit).
CREATE OR REPLACE FUNCTION accounts_check_limit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM account_limit_changes c
         WHERE c.account_id = NEW.id AND c.timebank_id = NEW.timebank_id
           AND c.floor_before = OLD.floor AND c.ceiling_before = OLD.ceiling
           AND c.floor_after = NEW.floor AND c.ceiling_after = NEW.ceiling
           AND c.xmin = pg_current_xact_id()::xid) THEN
        RAISE EXCEPTION 'the limits of account % changed from %/% to %/% without a record of the change',
            NEW.id, OLD.floor, OLD.ceiling, NEW.floor, NEW.ceiling
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS accounts_limit_change_recorded ON accounts;
CREATE CONSTRAINT TRIGGER accounts_limit_change_recorded
    AFTER UPDATE OF floor, ceiling ON accounts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.participant_id IS NOT NULL
          AND (OLD.floor IS DISTINCT FROM NEW.floor OR OLD.ceiling IS DISTINCT FROM NEW.ceiling))
    EXECUTE FUNCTION accounts_check_limit_change();
