-- I5's bookkeeping: the account's pending amounts are the sums of its open reservations.
CREATE OR REPLACE FUNCTION ledger_check_pending(p_account_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    acct accounts%ROWTYPE;
    reserved_out bigint;
    reserved_in bigint;
BEGIN
    SELECT * INTO acct FROM accounts WHERE id = p_account_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT coalesce(sum(minutes), 0) INTO reserved_out
      FROM pending_transfers WHERE debit_account_id = p_account_id AND state = 'pending';
    SELECT coalesce(sum(minutes), 0) INTO reserved_in
      FROM pending_transfers WHERE credit_account_id = p_account_id AND state = 'pending';
    IF acct.pending_out <> reserved_out OR acct.pending_in <> reserved_in THEN
        RAISE EXCEPTION 'account % shows pending in %/out %, but its open reservations hold in %/out %',
            acct.id, acct.pending_in, acct.pending_out, reserved_in, reserved_out
            USING ERRCODE = 'TBIN0';
    END IF;
END $$;
