-- I3 and I5 at commit: an account whose balance or version moved must match its latest posting
-- (ledger_check_account), one whose pending amounts moved must match its open reservations
-- (ledger_check_pending). The trigger's argument says which.
CREATE OR REPLACE FUNCTION accounts_check_at_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_ARGV[0] = 'postings' THEN
        PERFORM ledger_check_account(NEW.id);
    ELSE
        PERFORM ledger_check_pending(NEW.id);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS accounts_match_postings ON accounts;
CREATE CONSTRAINT TRIGGER accounts_match_postings
    AFTER UPDATE OF balance, version ON accounts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.balance IS DISTINCT FROM NEW.balance OR OLD.version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION accounts_check_at_commit('postings');

DROP TRIGGER IF EXISTS accounts_match_reservations ON accounts;
CREATE CONSTRAINT TRIGGER accounts_match_reservations
    AFTER UPDATE OF pending_in, pending_out ON accounts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.pending_in IS DISTINCT FROM NEW.pending_in
          OR OLD.pending_out IS DISTINCT FROM NEW.pending_out)
    EXECUTE FUNCTION accounts_check_at_commit('reservations');
