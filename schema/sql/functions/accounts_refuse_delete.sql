-- An account with postings is never deleted.
CREATE OR REPLACE FUNCTION accounts_refuse_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.version <> 0 THEN
        RAISE EXCEPTION 'account % has postings and cannot be deleted', OLD.id
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN OLD;
END $$;

CREATE OR REPLACE TRIGGER accounts_refuse_delete BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_refuse_delete();
