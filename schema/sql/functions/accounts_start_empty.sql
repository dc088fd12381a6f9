-- Accounts start empty; their balance and version only move with a posting (I3, checked at
-- commit by accounts_check_at_commit).
CREATE OR REPLACE FUNCTION accounts_start_empty() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.balance <> 0 OR NEW.version <> 0 OR NEW.pending_in <> 0 OR NEW.pending_out <> 0 THEN
        RAISE EXCEPTION 'a new account starts with zero balance, pending and version'
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER accounts_start_empty BEFORE INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_start_empty();
