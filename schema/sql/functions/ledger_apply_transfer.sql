-- Post one transfer: both accounts moved in ascending id order (one UPDATE each, which locks
-- the row), then the transfer and its two postings. From a reservation (p_pending_id), the
-- pending amounts are released as the balances move, so the limits checked at reservation
-- time cannot fail now. A reversal always posts, flagging an account it takes outside its
-- limits with its own id (allocated first: the accounts move before it is written).
-- Errors raised by the ledger's functions carry their own SQLSTATE (schema/README.md).
CREATE OR REPLACE FUNCTION ledger_apply_transfer(
    p_timebank_id bigint, p_debit bigint, p_credit bigint, p_minutes bigint, p_kind text,
    p_memo text, p_pending_id bigint, p_reverses_id bigint)
RETURNS transfers
LANGUAGE plpgsql AS $$
DECLARE
    from_pending bigint := CASE WHEN p_pending_id IS NULL THEN 0 ELSE p_minutes END;
    debit_first boolean := p_debit < p_credit;
    reversal_id bigint;
    is_debit boolean;
    moving bigint;
    moved_balance bigint;
    moved_version bigint;
    debit_balance bigint;
    debit_version bigint;
    credit_balance bigint;
    credit_version bigint;
    posted transfers%ROWTYPE;
BEGIN
    IF p_minutes IS NULL OR p_minutes <= 0 THEN
        RAISE EXCEPTION 'minutes must be a positive whole number' USING ERRCODE = 'TBVA0';
    END IF;
    IF p_debit = p_credit THEN
        RAISE EXCEPTION 'a transfer needs two different accounts' USING ERRCODE = 'TBVA0';
    END IF;
    -- An invalid request is refused as invalid before any limit is looked at.
    IF p_kind = 'exchange' AND p_pending_id IS NULL THEN
        PERFORM ledger_check_exchange_maximum(p_timebank_id, p_minutes);
    END IF;
    IF p_kind = 'reversal' THEN
        reversal_id := nextval(pg_get_serial_sequence('transfers', 'id'));
    END IF;
    FOR step IN 1..2 LOOP
        is_debit := (step = 1) = debit_first;
        moving := CASE WHEN is_debit THEN p_debit ELSE p_credit END;
        UPDATE accounts
           SET balance = balance + CASE WHEN is_debit THEN -p_minutes ELSE p_minutes END,
               version = version + 1,
               pending_out = pending_out - CASE WHEN is_debit THEN from_pending ELSE 0 END,
               pending_in = pending_in - CASE WHEN is_debit THEN 0 ELSE from_pending END,
               -- Cleared again by accounts_flagged_not_further_out if it stays within limits.
               flagged_by_reversal_id = CASE
                   WHEN reversal_id IS NOT NULL AND participant_id IS NOT NULL THEN reversal_id
                   ELSE flagged_by_reversal_id END
         WHERE id = moving AND timebank_id = p_timebank_id
        RETURNING balance, version INTO moved_balance, moved_version;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'account % not found in this timebank', moving USING ERRCODE = 'TBNF0';
        END IF;
        IF is_debit THEN
            debit_balance := moved_balance;
            debit_version := moved_version;
        ELSE
            credit_balance := moved_balance;
            credit_version := moved_version;
        END IF;
    END LOOP;
    IF reversal_id IS NULL THEN
        INSERT INTO transfers (timebank_id, debit_account_id, credit_account_id, minutes, kind,
                               pending_transfer_id, reverses_transfer_id, memo)
        VALUES (p_timebank_id, p_debit, p_credit, p_minutes, p_kind, p_pending_id, p_reverses_id, p_memo)
        RETURNING * INTO posted;
    ELSE
        INSERT INTO transfers (id, timebank_id, debit_account_id, credit_account_id, minutes, kind,
                               pending_transfer_id, reverses_transfer_id, memo)
        OVERRIDING SYSTEM VALUE
        VALUES (reversal_id, p_timebank_id, p_debit, p_credit, p_minutes, p_kind, p_pending_id,
                p_reverses_id, p_memo)
        RETURNING * INTO posted;
    END IF;
    INSERT INTO postings (timebank_id, transfer_id, account_id, minutes, balance_after, account_version)
    VALUES (p_timebank_id, posted.id, p_debit, -p_minutes, debit_balance, debit_version),
           (p_timebank_id, posted.id, p_credit, p_minutes, credit_balance, credit_version);
    RETURN posted;
END $$;
