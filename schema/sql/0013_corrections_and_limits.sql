-- Corrections are always possible, and one account's limits can be changed, on the record.
--
-- A reversal always posts: a wrong or fraudulent credit that was spent can be taken back even
-- when that takes the account below its floor (or another above its ceiling). Such an account
-- is flagged with the reversal that took it out, for a coordinator to see and settle.
--
-- I5 now reads: every participant account satisfies
--     floor <= balance - pending_out  and  balance + pending_in <= ceiling,
-- unless it carries the flag of a reversal (accounts.flagged_by_reversal_id). The flag
--   * is set only by a reversal that leaves the account outside its limits, posted by the same
--     transaction, on that account (checked at commit: accounts_flag_set_by_reversal);
--   * is carried only while the account is outside its limits (accounts_flagged_only_outside),
--     and is cleared by the first change that brings it back within them;
--   * lets a flagged account take nothing but a reversal that moves it further out: no posting,
--     reservation or limit change may widen the gap to its floor or ceiling
--     (accounts_flagged_not_further_out refuses as accounts_within_floor / _ceiling would).
--
-- A coordinator changes one account's floor and ceiling through account_limit_changes: who,
-- when, from, to and why, append-only; a change of an account's limits without its row
-- written by the same transaction is refused at commit.

ALTER TABLE accounts ADD COLUMN flagged_by_reversal_id bigint;

ALTER TABLE accounts
    DROP CONSTRAINT accounts_within_floor,
    DROP CONSTRAINT accounts_within_ceiling,
    ADD CONSTRAINT accounts_within_floor
        CHECK (floor IS NULL OR flagged_by_reversal_id IS NOT NULL OR balance - pending_out >= floor),
    ADD CONSTRAINT accounts_within_ceiling
        CHECK (ceiling IS NULL OR flagged_by_reversal_id IS NOT NULL OR balance + pending_in <= ceiling),
    ADD CONSTRAINT accounts_flagged_only_outside
        CHECK (flagged_by_reversal_id IS NULL OR coalesce(
            balance - pending_out < floor OR balance + pending_in > ceiling, false)),
    -- Deferred: the account moves before the reversal's transfer row is written.
    ADD CONSTRAINT accounts_flagged_by_reversal_fkey
        FOREIGN KEY (timebank_id, flagged_by_reversal_id) REFERENCES transfers (timebank_id, id)
        DEFERRABLE INITIALLY DEFERRED;

CREATE INDEX accounts_flagged_idx ON accounts (timebank_id) WHERE flagged_by_reversal_id IS NOT NULL;

-- A flagged account: cleared once back within its limits; otherwise nothing but a new flag
-- (a reversal) may take it further out.
CREATE FUNCTION accounts_flagged_not_further_out() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.floor IS NULL OR NEW.balance - NEW.pending_out >= NEW.floor)
       AND (NEW.ceiling IS NULL OR NEW.balance + NEW.pending_in <= NEW.ceiling) THEN
        NEW.flagged_by_reversal_id := NULL;
        RETURN NEW;
    END IF;
    IF NEW.flagged_by_reversal_id IS NULL
       OR NEW.flagged_by_reversal_id IS DISTINCT FROM OLD.flagged_by_reversal_id THEN
        RETURN NEW;  -- unflagged: the CHECKs decide; newly flagged: checked at commit
    END IF;
    IF NEW.floor - (NEW.balance - NEW.pending_out)
       > greatest(OLD.floor - (OLD.balance - OLD.pending_out), 0) THEN
        RAISE EXCEPTION 'account % is flagged below its floor (% minutes) and cannot go further down',
            NEW.id, OLD.floor
            USING ERRCODE = 'check_violation', CONSTRAINT = 'accounts_within_floor';
    END IF;
    IF (NEW.balance + NEW.pending_in) - NEW.ceiling
       > greatest((OLD.balance + OLD.pending_in) - OLD.ceiling, 0) THEN
        RAISE EXCEPTION 'account % is flagged above its ceiling (% minutes) and cannot go further up',
            NEW.id, OLD.ceiling
            USING ERRCODE = 'check_violation', CONSTRAINT = 'accounts_within_ceiling';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER accounts_flagged_not_further_out BEFORE UPDATE ON accounts
    FOR EACH ROW
    WHEN (OLD.flagged_by_reversal_id IS NOT NULL OR NEW.flagged_by_reversal_id IS NOT NULL)
    EXECUTE FUNCTION accounts_flagged_not_further_out();

-- A flag names a reversal of this account posted by the transaction that set it.
CREATE FUNCTION accounts_check_flag() RETURNS trigger
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

CREATE CONSTRAINT TRIGGER accounts_flag_set_by_reversal
    AFTER UPDATE OF flagged_by_reversal_id ON accounts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.flagged_by_reversal_id IS NOT NULL
          AND NEW.flagged_by_reversal_id IS DISTINCT FROM OLD.flagged_by_reversal_id)
    EXECUTE FUNCTION accounts_check_flag();

------------------------------------------------------------------------------------------------
-- One account's limits, changed by a coordinator, on the record.
------------------------------------------------------------------------------------------------
CREATE TABLE account_limit_changes (
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id        bigint      NOT NULL,
    account_id         bigint      NOT NULL,
    changed_by_user_id bigint,
    changed_at         timestamptz NOT NULL DEFAULT now(),
    floor_before       bigint      NOT NULL,
    ceiling_before     bigint      NOT NULL,
    floor_after        bigint      NOT NULL,
    ceiling_after      bigint      NOT NULL,
    reason             text,  -- null once erased: personal words never outlive a request to erase
    CONSTRAINT account_limit_changes_pkey PRIMARY KEY (id),
    CONSTRAINT account_limit_changes_account_fkey FOREIGN KEY (timebank_id, account_id)
        REFERENCES accounts (timebank_id, id),
    CONSTRAINT account_limit_changes_changed_by_fkey FOREIGN KEY (changed_by_user_id)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT account_limit_changes_limits_around_zero CHECK (floor_after <= 0 AND ceiling_after >= 0),
    CONSTRAINT account_limit_changes_reason_length
        CHECK (reason IS NULL OR length(btrim(reason)) BETWEEN 1 AND 500)
);
CREATE INDEX account_limit_changes_account_idx ON account_limit_changes (account_id, id);

-- Append-only; erasure only forgets who made a change and the words of its reason (each set to
-- null), never its figures.
CREATE FUNCTION account_limit_changes_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.changed_by_user_id IS NULL OR NEW.changed_by_user_id = OLD.changed_by_user_id)
       AND (NEW.reason IS NULL OR NEW.reason = OLD.reason)
       AND (NEW.id, NEW.timebank_id, NEW.account_id, NEW.changed_at, NEW.floor_before,
            NEW.ceiling_before, NEW.floor_after, NEW.ceiling_after)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.timebank_id, OLD.account_id, OLD.changed_at, OLD.floor_before,
            OLD.ceiling_before, OLD.floor_after, OLD.ceiling_after) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on account_limit_changes refused: the record of limit changes is append-only', TG_OP
        USING ERRCODE = 'TBIN0';
END $$;

CREATE TRIGGER account_limit_changes_append_only BEFORE UPDATE OR DELETE ON account_limit_changes
    FOR EACH ROW EXECUTE FUNCTION account_limit_changes_append_only();
CREATE TRIGGER account_limit_changes_no_truncate BEFORE TRUNCATE ON account_limit_changes
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- A participant account's limits change only with their record, written by the same
-- transaction, from the limits it had to those it has.
CREATE FUNCTION accounts_check_limit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM account_limit_changes c
         WHERE c.account_id = NEW.id AND c.timebank_id = NEW.timebank_id
           AND c.floor_before = OLD.floor AND c.ceiling_before = OLD.ceiling
           AND c.floor_after = NEW.floor AND c.ceiling_after = NEW.ceiling
           AND c.xmin = pg_current_xact_id()::xid) THEN
        RAISE EXCEPTION 'the limits of account % changed from %/% to %/% without a record of the change',
            NEW.id, OLD.floor, OLD.ceiling, NEW.floor, NEW.ceiling
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER accounts_limit_change_recorded
    AFTER UPDATE OF floor, ceiling ON accounts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.participant_id IS NOT NULL
          AND (OLD.floor IS DISTINCT FROM NEW.floor OR OLD.ceiling IS DISTINCT FROM NEW.ceiling))
    EXECUTE FUNCTION accounts_check_limit_change();

-- Change one account's limits and record it, in one call: refused (as accounts_within_floor or
-- accounts_within_ceiling) when the new limits would not hold the balance and reservations.
CREATE FUNCTION ledger_set_limits(
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

------------------------------------------------------------------------------------------------
-- Posting: as before (0010), except that a reversal always posts, flagging an account it takes
-- outside its limits with its own id (allocated first: the accounts move before it is written).
------------------------------------------------------------------------------------------------
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

------------------------------------------------------------------------------------------------
-- A batch: as before (0001), except that an account flagged by a reversal may take steps that
-- leave it outside its limits, as long as none takes it further out than it was.
------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION ledger_post_batch(
    p_timebank_id bigint, p_debits bigint[], p_credits bigint[], p_minutes bigint[],
    p_kind text, p_memos text[], p_author text, p_key text, p_hash bytea)
RETURNS TABLE (replayed boolean, transfer transfers)
LANGUAGE plpgsql AS $$
DECLARE
    previous jsonb := ledger_claim_key(p_timebank_id, p_author, p_key, p_hash);
    n int := coalesce(cardinality(p_minutes), 0);
    distinct_accounts int;
    locked_accounts int;
    breach record;
    ids bigint[];
BEGIN
    IF previous IS NOT NULL THEN
        RETURN QUERY SELECT true, t FROM transfers t
                      WHERE t.id = ANY (ARRAY(SELECT jsonb_array_elements_text(previous -> 'transfer_ids')::bigint))
                      ORDER BY t.id;
        RETURN;
    END IF;
    IF n = 0 OR coalesce(cardinality(p_debits), 0) <> n OR coalesce(cardinality(p_credits), 0) <> n
       OR (p_memos IS NOT NULL AND cardinality(p_memos) <> n) THEN
        RAISE EXCEPTION 'a batch needs the same number (at least one) of debits, credits and minutes'
            USING ERRCODE = 'TBVA0';
    END IF;
    IF p_kind IS NULL OR p_kind NOT IN ('exchange', 'grant', 'adjustment') THEN
        RAISE EXCEPTION 'a transfer of kind % cannot be posted directly', p_kind USING ERRCODE = 'TBVA0';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_debits, p_credits, p_minutes) AS u(d, c, m)
                WHERE m IS NULL OR m <= 0 OR d IS NULL OR c IS NULL OR d = c) THEN
        RAISE EXCEPTION 'every transfer needs positive minutes and two different accounts'
            USING ERRCODE = 'TBVA0';
    END IF;
    IF p_kind = 'exchange' THEN
        PERFORM ledger_check_exchange_maximum(p_timebank_id, max(m)) FROM unnest(p_minutes) AS m;
    END IF;

    CREATE TEMP TABLE IF NOT EXISTS ledger_batch_legs (
        ord int, transfer_id bigint, account_id bigint, minutes bigint,
        balance_after bigint, account_version bigint
    ) ON COMMIT DELETE ROWS;
    TRUNCATE ledger_batch_legs;

    -- Lock every account once, in ascending id order.
    SELECT count(DISTINCT a) INTO distinct_accounts FROM unnest(p_debits || p_credits) AS a;
    SELECT count(*) INTO locked_accounts FROM (
        SELECT id FROM accounts
         WHERE id = ANY (p_debits || p_credits) AND timebank_id = p_timebank_id
         ORDER BY id FOR NO KEY UPDATE) locked;
    IF locked_accounts <> distinct_accounts THEN
        RAISE EXCEPTION 'an account in the batch was not found in this timebank' USING ERRCODE = 'TBNF0';
    END IF;

    ids := ARRAY(SELECT nextval(pg_get_serial_sequence('transfers', 'id')) FROM generate_series(1, n));
    INSERT INTO ledger_batch_legs (ord, transfer_id, account_id, minutes, balance_after, account_version)
    SELECT leg.ord, ids[leg.ord], leg.account_id, leg.minutes,
           a.balance + sum(leg.minutes) OVER running,
           a.version + row_number() OVER running
      FROM (SELECT u.ord, u.d AS account_id, -u.m AS minutes, 0 AS side
              FROM unnest(p_debits, p_credits, p_minutes) WITH ORDINALITY AS u(d, c, m, ord)
            UNION ALL
            SELECT u.ord, u.c, u.m, 1
              FROM unnest(p_debits, p_credits, p_minutes) WITH ORDINALITY AS u(d, c, m, ord)) leg
      JOIN accounts a ON a.id = leg.account_id
    WINDOW running AS (PARTITION BY leg.account_id ORDER BY leg.ord, leg.side);

    -- I5 at every step of the batch, not only at its end (a flagged account: no step further out).
    SELECT l.account_id, l.balance_after, a.floor, a.ceiling,
           l.balance_after - a.pending_out < a.floor AS below_floor INTO breach
      FROM ledger_batch_legs l JOIN accounts a ON a.id = l.account_id
     WHERE (l.balance_after - a.pending_out < a.floor
            AND (a.flagged_by_reversal_id IS NULL
                 OR a.floor - (l.balance_after - a.pending_out)
                    > greatest(a.floor - (a.balance - a.pending_out), 0)))
        OR (l.balance_after + a.pending_in > a.ceiling
            AND (a.flagged_by_reversal_id IS NULL
                 OR (l.balance_after + a.pending_in) - a.ceiling
                    > greatest(a.balance + a.pending_in - a.ceiling, 0)))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'account % would reach % minutes, outside its limits (% to %)',
            breach.account_id, breach.balance_after, breach.floor, breach.ceiling
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = CASE WHEN breach.below_floor
                                    THEN 'accounts_within_floor' ELSE 'accounts_within_ceiling' END;
    END IF;

    UPDATE accounts a
       SET balance = a.balance + net.minutes, version = a.version + net.legs
      FROM (SELECT account_id, sum(minutes) AS minutes, count(*) AS legs
              FROM ledger_batch_legs GROUP BY account_id) net
     WHERE a.id = net.account_id;

    INSERT INTO transfers (id, timebank_id, debit_account_id, credit_account_id, minutes, kind, memo)
    OVERRIDING SYSTEM VALUE
    SELECT ids[u.ord], p_timebank_id, u.d, u.c, u.m, p_kind, p_memos[u.ord]
      FROM unnest(p_debits, p_credits, p_minutes) WITH ORDINALITY AS u(d, c, m, ord)
     ORDER BY u.ord;

    INSERT INTO postings (timebank_id, transfer_id, account_id, minutes, balance_after, account_version)
    SELECT p_timebank_id, l.transfer_id, l.account_id, l.minutes, l.balance_after, l.account_version
      FROM ledger_batch_legs l
     ORDER BY l.account_id, l.account_version;

    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('transfer_ids', to_jsonb(ids)));
    RETURN QUERY SELECT false, t FROM transfers t WHERE t.id = ANY (ids) ORDER BY t.id;
END $$;
