-- Whatever happens to a reservation, both accounts' pending amounts must agree by commit time.
CREATE OR REPLACE FUNCTION pending_transfers_check_holds() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_check_pending(NEW.debit_account_id);
    PERFORM ledger_check_pending(NEW.credit_account_id);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS pending_transfers_match_accounts ON pending_transfers;
CREATE CONSTRAINT TRIGGER pending_transfers_match_accounts
    AFTER INSERT OR UPDATE OF state ON pending_transfers
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION pending_transfers_check_holds();
