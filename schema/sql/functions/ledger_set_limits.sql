-- Change one account's limits and record it, in one call: refused (as accounts_within_floor or
-- accounts_within_ceiling) when the new limits would not hold the balance and reservations.
CREATE OR REPLACE FUNCTION ledger_set_limits(
    p_timebank_id bigint, p_account_id bigint, p_floor bigint, p_ceiling bigint,
    p_user_id bigint, p_reason text)
RETURNS account_limit_changes
LANGUAGE plpgsql AS $$
DECLARE
    acct accounts%ROWTYPE;
    change account_limit_changes%ROWTYPE;
BEGIN
    SELECT * INTO acct FROM accounts
     WHERE id = p_account_id AND timebank_id = p_timebank_id AND participant_id IS NOT NULL
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % not found in this timebank', p_account_id USING ERRCODE = 'TBNF0';
    END IF;
    IF p_floor IS NULL OR p_ceiling IS NULL OR p_floor > 0 OR p_ceiling < 0 THEN
        RAISE EXCEPTION 'a floor is at most 0 and a ceiling at least 0' USING ERRCODE = 'TBVA0';
    END IF;
    IF acct.balance - acct.pending_out < p_floor THEN
        RAISE EXCEPTION 'a floor of % would not hold the account: balance %, pending out %',
            p_floor, acct.balance, acct.pending_out
            USING ERRCODE = 'check_violation', CONSTRAINT = 'accounts_within_floor';
    END IF;
    IF acct.balance + acct.pending_in > p_ceiling THEN
        RAISE EXCEPTION 'a ceiling of % would not hold the account: balance %, pending in %',
            p_ceiling, acct.balance, acct.pending_in
            USING ERRCODE = 'check_violation', CONSTRAINT = 'accounts_within_ceiling';
    END IF;
    INSERT INTO account_limit_changes (timebank_id, account_id, changed_by_user_id, floor_before,
                                       ceiling_before, floor_after, ceiling_after, reason)
    VALUES (p_timebank_id, p_account_id, p_user_id, acct.floor, acct.ceiling, p_floor, p_ceiling,
            p_reason)
    RETURNING * INTO change;
    UPDATE accounts SET floor = p_floor, ceiling = p_ceiling WHERE id = p_account_id;
    RETURN change;
END $$;
