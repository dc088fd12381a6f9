-- A closed account stays closed: its participant left, and re-joining opens a new account.
CREATE OR REPLACE FUNCTION accounts_stay_closed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'account % is closed and stays closed', OLD.id USING ERRCODE = 'TBST0';
END $$;

CREATE OR REPLACE TRIGGER accounts_stay_closed BEFORE UPDATE OF closed_at ON accounts
    FOR EACH ROW WHEN (OLD.closed_at IS NOT NULL AND NEW.closed_at IS DISTINCT FROM OLD.closed_at)
    EXECUTE FUNCTION accounts_stay_closed();
