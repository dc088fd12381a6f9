-- A participant's opening balance against the community pot, once per account: the pot
-- credits a positive one and takes a negative one (the account's limits hold). The same
-- value again changes nothing and answers replayed; another value is refused (TBST0).
-- Returns (replayed, the opening balance, its transfer: null for zero).
CREATE OR REPLACE FUNCTION ledger_set_opening(
    p_timebank_id bigint, p_participant_id bigint, p_minutes bigint, p_user_id bigint,
    p_author text, p_key text, p_hash bytea,
    OUT replayed boolean, OUT opening opening_balances, OUT transfer transfers)
LANGUAGE plpgsql AS $$
DECLARE
    previous jsonb := ledger_claim_key(p_timebank_id, p_author, p_key, p_hash);
    acct_id bigint;
    pot_id bigint;
BEGIN
    replayed := previous IS NOT NULL;
    IF replayed THEN
        SELECT * INTO opening FROM opening_balances
         WHERE account_id = (previous ->> 'account_id')::bigint;
        SELECT * INTO transfer FROM transfers WHERE id = opening.transfer_id;
        RETURN;
    END IF;
    IF p_participant_id IS NULL OR p_minutes IS NULL THEN
        RAISE EXCEPTION 'an opening balance names a participant and whole minutes'
            USING ERRCODE = 'TBVA0';
    END IF;
    acct_id := ledger_open_account(p_timebank_id, p_participant_id);
    pot_id := ledger_open_account(p_timebank_id, NULL);
    PERFORM FROM accounts WHERE id IN (acct_id, pot_id) ORDER BY id FOR NO KEY UPDATE;
    SELECT * INTO opening FROM opening_balances WHERE account_id = acct_id;
    IF FOUND THEN
        IF opening.minutes <> p_minutes THEN
            RAISE EXCEPTION 'the opening balance of participant % is already set, to % minutes',
                p_participant_id, opening.minutes USING ERRCODE = 'TBST0';
        END IF;
        replayed := true;
        SELECT * INTO transfer FROM transfers WHERE id = opening.transfer_id;
    ELSE
        IF p_minutes > 0 THEN
            transfer := ledger_apply_transfer(p_timebank_id, pot_id, acct_id, p_minutes,
                                              'opening', NULL, NULL, NULL);
        ELSIF p_minutes < 0 THEN
            transfer := ledger_apply_transfer(p_timebank_id, acct_id, pot_id, -p_minutes,
                                              'opening', NULL, NULL, NULL);
        END IF;
        INSERT INTO opening_balances (account_id, timebank_id, minutes, transfer_id, set_by_user_id)
        VALUES (acct_id, p_timebank_id, p_minutes, transfer.id, p_user_id)
        RETURNING * INTO opening;
    END IF;
    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('account_id', acct_id));
END $$;
