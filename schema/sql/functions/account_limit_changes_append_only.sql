-- The record of limit changes is append-only; erasure only forgets who made a change and the
-- words of its reason (each set to null), never its figures. TRUNCATE is refused by
-- ledger_refuse_change.
CREATE OR REPLACE FUNCTION account_limit_changes_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.changed_by_user_id IS NULL OR NEW.changed_by_user_id = OLD.changed_by_user_id)
       AND (NEW.reason IS NULL OR NEW.reason = OLD.reason)
       AND (NEW.id, NEW.timebank_id, NEW.account_id, NEW.changed_at, NEW.floor_before,
            NEW.ceiling_before, NEW.floor_after, NEW.ceiling_after)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.timebank_id, OLD.account_id, OLD.changed_at, OLD.floor_before,
            OLD.ceiling_before, OLD.floor_after, OLD.ceiling_after) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on account_limit_changes refused: the record of limit changes is append-only', TG_OP
        USING ERRCODE = 'TBIN0';
END $$;

CREATE OR REPLACE TRIGGER account_limit_changes_append_only
    BEFORE UPDATE OR DELETE ON account_limit_changes
    FOR EACH ROW EXECUTE FUNCTION account_limit_changes_append_only();
