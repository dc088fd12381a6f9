-- A participant leaves: their whole balance goes to the community pot or to the member
-- p_balance_to names (a debt always to the pot, which takes it), and their account is
-- closed; refused while anything is pending on it (TBST0). Their history stays. Returns
-- (replayed, the departure, the transfer that moved the balance: null for zero).
CREATE OR REPLACE FUNCTION ledger_leave(
    p_timebank_id bigint, p_participant_id bigint, p_balance_to bigint, p_user_id bigint,
    p_author text, p_key text, p_hash bytea,
    OUT replayed boolean, OUT departure departures, OUT transfer transfers)
LANGUAGE plpgsql AS $$
DECLARE
    previous jsonb := ledger_claim_key(p_timebank_id, p_author, p_key, p_hash);
    acct accounts%ROWTYPE;
    acct_id bigint;
    pot_id bigint;
    to_id bigint;
BEGIN
    replayed := previous IS NOT NULL;
    IF replayed THEN
        SELECT * INTO departure FROM departures
         WHERE account_id = (previous ->> 'account_id')::bigint;
        SELECT * INTO transfer FROM transfers WHERE id = departure.transfer_id;
        RETURN;
    END IF;
    IF p_participant_id IS NULL THEN
        RAISE EXCEPTION 'leaving names the participant who leaves' USING ERRCODE = 'TBVA0';
    END IF;
    IF p_balance_to = p_participant_id THEN
        RAISE EXCEPTION 'a balance goes to the community pot or to another member'
            USING ERRCODE = 'TBVA0';
    END IF;
    acct_id := ledger_open_account(p_timebank_id, p_participant_id);
    pot_id := ledger_open_account(p_timebank_id, NULL);
    to_id := CASE WHEN p_balance_to IS NULL THEN pot_id
                  ELSE ledger_open_account(p_timebank_id, p_balance_to) END;
    PERFORM FROM accounts WHERE id IN (acct_id, pot_id, to_id) ORDER BY id FOR NO KEY UPDATE;
    SELECT * INTO acct FROM accounts WHERE id = acct_id;
    IF acct.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'participant % has left: their account is closed', p_participant_id
            USING ERRCODE = 'TBST0';
    END IF;
    IF acct.pending_in <> 0 OR acct.pending_out <> 0 THEN
        RAISE EXCEPTION 'participant % has exchanges pending (% in, % out): they are settled first',
            p_participant_id, acct.pending_in, acct.pending_out USING ERRCODE = 'TBST0';
    END IF;
    IF acct.balance < 0 AND p_balance_to IS NOT NULL THEN
        RAISE EXCEPTION 'a balance of % minutes is a debt: the community pot takes it, not a member',
            acct.balance USING ERRCODE = 'TBVA0';
    END IF;
    IF acct.balance > 0 THEN
        transfer := ledger_apply_transfer(p_timebank_id, acct_id, to_id, acct.balance, 'leaving',
                                          NULL, NULL, NULL);
    ELSIF acct.balance < 0 THEN
        transfer := ledger_apply_transfer(p_timebank_id, pot_id, acct_id, -acct.balance, 'leaving',
                                          NULL, NULL, NULL);
    END IF;
    UPDATE accounts SET closed_at = now() WHERE id = acct_id;
    INSERT INTO departures (account_id, timebank_id, participant_id, balance_to_participant_id,
                            balance_minutes, transfer_id, recorded_by_user_id)
    VALUES (acct_id, p_timebank_id, p_participant_id, p_balance_to, acct.balance, transfer.id,
            p_user_id)
    RETURNING * INTO departure;
    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('account_id', acct_id));
END $$;
