-- I1 and I3 on postings: each leg names a transfer of its timebank and matches it, continues
-- its account's chain of versions and balances, and agrees with the account row it moved.
-- I9: no leg lands on a closed account, whatever the net of a batch.
-- This trigger, not foreign keys, checks a posting's transfer and account.
CREATE OR REPLACE FUNCTION postings_check_leg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t transfers%ROWTYPE;
    acct_balance bigint;
    acct_version bigint;
    acct_closed_at timestamptz;
    previous_balance bigint;
BEGIN
    SELECT * INTO t FROM transfers WHERE id = NEW.transfer_id;
    IF NOT FOUND OR t.timebank_id <> NEW.timebank_id THEN
        RAISE EXCEPTION 'posting names transfer %, which is not a transfer of timebank %',
            NEW.transfer_id, NEW.timebank_id
            USING ERRCODE = 'TBIN0';
    END IF;
    IF NOT ((NEW.account_id = t.debit_account_id AND NEW.minutes = -t.minutes)
         OR (NEW.account_id = t.credit_account_id AND NEW.minutes = t.minutes)) THEN
        RAISE EXCEPTION 'posting of % on account % does not match transfer % (% minutes from % to %)',
            NEW.minutes, NEW.account_id, t.id, t.minutes, t.debit_account_id, t.credit_account_id
            USING ERRCODE = 'TBIN0';
    END IF;
    IF NEW.account_version = 1 THEN
        previous_balance := 0;
    ELSE
        SELECT balance_after INTO previous_balance FROM postings
         WHERE account_id = NEW.account_id AND account_version = NEW.account_version - 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'posting on account % skips to version % (no version %)',
                NEW.account_id, NEW.account_version, NEW.account_version - 1
                USING ERRCODE = 'TBIN0';
        END IF;
    END IF;
    IF NEW.balance_after <> previous_balance + NEW.minutes THEN
        RAISE EXCEPTION 'posting on account % claims balance % but % + % = %', NEW.account_id,
            NEW.balance_after, previous_balance, NEW.minutes, previous_balance + NEW.minutes
            USING ERRCODE = 'TBIN0';
    END IF;
    -- The account has already moved (a batch moves it once, by its net amount, then writes a
    -- chain of postings): a posting may not run ahead of it, and the last one must match it.
    SELECT balance, version, closed_at INTO acct_balance, acct_version, acct_closed_at
      FROM accounts WHERE id = NEW.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'posting names account %, which does not exist', NEW.account_id
            USING ERRCODE = 'TBIN0';
    END IF;
    IF acct_closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'account % is closed: its participant has left', NEW.account_id
            USING ERRCODE = 'TBST0';
    END IF;
    IF NEW.account_version > acct_version
       OR (NEW.account_version = acct_version AND NEW.balance_after <> acct_balance) THEN
        RAISE EXCEPTION 'posting on account % (balance % at version %) disagrees with the account (balance % at version %)',
            NEW.account_id, NEW.balance_after, NEW.account_version, acct_balance, acct_version
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER postings_check_leg BEFORE INSERT ON postings
    FOR EACH ROW EXECUTE FUNCTION postings_check_leg();
