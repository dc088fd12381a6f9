-- I3: the account's balance and version are those of its latest posting. The row is read
-- again rather than taken from NEW, because one transaction may move the same account several
-- times.
CREATE OR REPLACE FUNCTION ledger_check_account(p_account_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    acct accounts%ROWTYPE;
    last_version bigint;
    last_balance bigint;
BEGIN
    SELECT * INTO acct FROM accounts WHERE id = p_account_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT account_version, balance_after INTO last_version, last_balance
      FROM postings WHERE account_id = p_account_id
     ORDER BY account_version DESC LIMIT 1;
    IF coalesce(last_version, 0) <> acct.version OR coalesce(last_balance, 0) <> acct.balance THEN
        RAISE EXCEPTION 'account % has balance % at version %, but its postings end at % at version %',
            acct.id, acct.balance, acct.version, coalesce(last_balance, 0), coalesce(last_version, 0)
            USING ERRCODE = 'TBIN0';
    END IF;
END $$;
