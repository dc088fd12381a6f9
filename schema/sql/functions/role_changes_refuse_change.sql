-- The record of role changes is append-only; only the blanking of an erased user's
-- references gets through.
CREATE OR REPLACE FUNCTION role_changes_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Only the blanking of an erased user's references gets through.
    IF TG_OP = 'UPDATE'
       AND (NEW.user_id IS NULL OR NEW.user_id = OLD.user_id)
       AND (NEW.changed_by IS NULL OR NEW.changed_by = OLD.changed_by)
       AND (NEW.id, NEW.timebank_id, NEW.participant_id, NEW.invitation_id, NEW.from_roles,
            NEW.to_roles, NEW.changed_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.timebank_id, OLD.participant_id, OLD.invitation_id, OLD.from_roles,
            OLD.to_roles, OLD.changed_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on % refused: the record of role changes is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'TBIN0';
END $$;

CREATE OR REPLACE TRIGGER role_changes_append_only BEFORE UPDATE OR DELETE ON role_changes
    FOR EACH ROW EXECUTE FUNCTION role_changes_refuse_change();

CREATE OR REPLACE TRIGGER role_changes_no_truncate BEFORE TRUNCATE ON role_changes
    FOR EACH STATEMENT EXECUTE FUNCTION role_changes_refuse_change();
