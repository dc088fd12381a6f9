-- A reversal's flag on an account names a reversal of that account posted by the transaction
-- that set it (checked at commit).
CREATE OR REPLACE FUNCTION accounts_check_flag() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM transfers t
         WHERE t.id = NEW.flagged_by_reversal_id AND t.timebank_id = NEW.timebank_id
           AND t.kind = 'reversal' AND NEW.id IN (t.debit_account_id, t.credit_account_id)
           AND t.xmin = pg_current_xact_id()::xid) THEN
        RAISE EXCEPTION 'account % is flagged by transfer %, which is not a reversal of it posted with the flag',
            NEW.id, NEW.flagged_by_reversal_id
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS accounts_flag_set_by_reversal ON accounts;
CREATE CONSTRAINT TRIGGER accounts_flag_set_by_reversal
    AFTER UPDATE OF flagged_by_reversal_id ON accounts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.flagged_by_reversal_id IS NOT NULL
          AND NEW.flagged_by_reversal_id IS DISTINCT FROM OLD.flagged_by_reversal_id)
    EXECUTE FUNCTION accounts_check_flag();
