-- Reserve (or release, with negative minutes) on both accounts: one UPDATE each, the lower id
-- first (so locked first).
CREATE OR REPLACE FUNCTION ledger_hold(
    p_timebank_id bigint, p_debit bigint, p_credit bigint, p_minutes bigint)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    debit_first boolean := p_debit < p_credit;
    is_debit boolean;
    moving bigint;
BEGIN
    FOR step IN 1..2 LOOP
        is_debit := (step = 1) = debit_first;
        moving := CASE WHEN is_debit THEN p_debit ELSE p_credit END;
        UPDATE accounts
           SET pending_out = pending_out + CASE WHEN is_debit THEN p_minutes ELSE 0 END,
               pending_in = pending_in + CASE WHEN is_debit THEN 0 ELSE p_minutes END
         WHERE id = moving AND timebank_id = p_timebank_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'account % not found in this timebank', moving USING ERRCODE = 'TBNF0';
        END IF;
    END LOOP;
END $$;
