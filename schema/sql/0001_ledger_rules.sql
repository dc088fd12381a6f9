-- Ledger rules enforced by PostgreSQL itself (DESIGN.md §2, invariants I1–I8), and the posting
-- functions the service calls: one short transaction, one round trip, accounts locked in
-- ascending id order.
--
-- Errors raised here carry their own SQLSTATE so the service can type them:
--   TBNF0 not found, TBST0 invalid state transition, TBVA0 invalid request,
--   TBID0 idempotency key reused with a different request, TBIN0 invariant violated.

------------------------------------------------------------------------------------------------
-- I7: posted history is append-only.
------------------------------------------------------------------------------------------------
CREATE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % refused: posted history is append-only; post a reversal instead',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'TBIN0';
END $$;

CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

------------------------------------------------------------------------------------------------
-- Accounts start empty; their balance and version only move with a posting (I3, checked at
-- commit by accounts_match_postings below).
------------------------------------------------------------------------------------------------
CREATE FUNCTION accounts_start_empty() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.balance <> 0 OR NEW.version <> 0 OR NEW.pending_in <> 0 OR NEW.pending_out <> 0 THEN
        RAISE EXCEPTION 'a new account starts with zero balance, pending and version'
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER accounts_start_empty BEFORE INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_start_empty();

CREATE FUNCTION accounts_refuse_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.version <> 0 THEN
        RAISE EXCEPTION 'account % has postings and cannot be deleted', OLD.id
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER accounts_refuse_delete BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_refuse_delete();

-- At commit, the account's balance and version must be those of its latest posting, and its
-- pending amounts the sum of its open reservations. The row is read again rather than taken
-- from NEW, because one transaction may move the same account several times.
CREATE FUNCTION ledger_check_account(p_account_id bigint) RETURNS void
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

CREATE FUNCTION ledger_check_pending(p_account_id bigint) RETURNS void
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

CREATE FUNCTION accounts_check_at_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_ARGV[0] = 'postings' THEN
        PERFORM ledger_check_account(NEW.id);
    ELSE
        PERFORM ledger_check_pending(NEW.id);
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER accounts_match_postings
    AFTER UPDATE OF balance, version ON accounts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.balance IS DISTINCT FROM NEW.balance OR OLD.version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION accounts_check_at_commit('postings');

CREATE CONSTRAINT TRIGGER accounts_match_reservations
    AFTER UPDATE OF pending_in, pending_out ON accounts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.pending_in IS DISTINCT FROM NEW.pending_in OR OLD.pending_out IS DISTINCT FROM NEW.pending_out)
    EXECUTE FUNCTION accounts_check_at_commit('reservations');

------------------------------------------------------------------------------------------------
-- I1 and I3 on postings: each leg matches its transfer, continues its account's chain, and
-- agrees with the account row it moved; at commit, each transfer has exactly its two legs.
------------------------------------------------------------------------------------------------
CREATE FUNCTION postings_check_leg() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t transfers%ROWTYPE;
    acct_balance bigint;
    acct_version bigint;
    previous_balance bigint;
BEGIN
    SELECT * INTO t FROM transfers WHERE id = NEW.transfer_id;
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
    SELECT balance, version INTO acct_balance, acct_version FROM accounts WHERE id = NEW.account_id;
    IF NEW.account_version > acct_version
       OR (NEW.account_version = acct_version AND NEW.balance_after <> acct_balance) THEN
        RAISE EXCEPTION 'posting on account % (balance % at version %) disagrees with the account (balance % at version %)',
            NEW.account_id, NEW.balance_after, NEW.account_version, acct_balance, acct_version
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER postings_check_leg BEFORE INSERT ON postings
    FOR EACH ROW EXECUTE FUNCTION postings_check_leg();

CREATE FUNCTION transfers_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    leg_count int;
    leg_sum bigint;
BEGIN
    SELECT count(*), coalesce(sum(minutes), 0) INTO leg_count, leg_sum
      FROM postings WHERE transfer_id = NEW.id;
    IF leg_count <> 2 OR leg_sum <> 0 THEN
        RAISE EXCEPTION 'transfer % has % postings summing to %; it needs two that sum to zero',
            NEW.id, leg_count, leg_sum
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER transfers_balanced AFTER INSERT ON transfers
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION transfers_check_balanced();

------------------------------------------------------------------------------------------------
-- I2 and I6 on transfers: within the timebank's maximum; a posted reservation matches the
-- reservation; a reversal mirrors the transfer it reverses and is never itself reversed.
------------------------------------------------------------------------------------------------
CREATE FUNCTION ledger_check_exchange_maximum(p_timebank_id bigint, p_minutes bigint)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    maximum bigint;
BEGIN
    SELECT max_exchange_minutes INTO maximum FROM timebanks WHERE id = p_timebank_id;
    IF p_minutes > maximum THEN
        RAISE EXCEPTION 'an exchange of % minutes is above this timebank''s maximum of % minutes',
            p_minutes, maximum
            USING ERRCODE = 'TBVA0';
    END IF;
END $$;

CREATE FUNCTION transfers_check_links() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p pending_transfers%ROWTYPE;
    original transfers%ROWTYPE;
BEGIN
    IF NEW.pending_transfer_id IS NOT NULL THEN
        SELECT * INTO p FROM pending_transfers WHERE id = NEW.pending_transfer_id;
        IF NOT FOUND OR p.state <> 'posted' OR p.debit_account_id <> NEW.debit_account_id
           OR p.credit_account_id <> NEW.credit_account_id OR p.minutes <> NEW.minutes
           OR p.kind <> NEW.kind THEN
            RAISE EXCEPTION 'transfer does not match reservation % (or the reservation is not being posted)', p.id
                USING ERRCODE = 'TBIN0';
        END IF;
    ELSIF NEW.kind = 'exchange' THEN
        -- A reserved exchange was checked when reserved: its approval never fails on policy.
        PERFORM ledger_check_exchange_maximum(NEW.timebank_id, NEW.minutes);
    END IF;
    IF NEW.reverses_transfer_id IS NOT NULL THEN
        SELECT * INTO original FROM transfers WHERE id = NEW.reverses_transfer_id;
        IF NOT FOUND OR NEW.reverses_transfer_id = NEW.id THEN
            RAISE EXCEPTION 'a reversal must reverse an existing, earlier transfer'
                USING ERRCODE = 'TBIN0';
        END IF;
        IF original.kind = 'reversal' THEN
            RAISE EXCEPTION 'transfer % is a reversal and cannot itself be reversed', original.id
                USING ERRCODE = 'TBST0';
        END IF;
        IF original.debit_account_id <> NEW.credit_account_id
           OR original.credit_account_id <> NEW.debit_account_id
           OR original.minutes <> NEW.minutes THEN
            RAISE EXCEPTION 'a reversal must move the same minutes back between the same accounts'
                USING ERRCODE = 'TBIN0';
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER transfers_check_links BEFORE INSERT ON transfers
    FOR EACH ROW EXECUTE FUNCTION transfers_check_links();

CREATE FUNCTION pending_transfers_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.state <> 'pending' THEN
            RAISE EXCEPTION 'a reservation starts pending' USING ERRCODE = 'TBIN0';
        END IF;
        IF NEW.kind = 'exchange' THEN
            PERFORM ledger_check_exchange_maximum(NEW.timebank_id, NEW.minutes);
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'reservations are kept; void one instead of deleting it' USING ERRCODE = 'TBIN0';
    END IF;
    IF (NEW.id, NEW.timebank_id, NEW.debit_account_id, NEW.credit_account_id, NEW.minutes,
        NEW.kind, NEW.memo, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.timebank_id, OLD.debit_account_id, OLD.credit_account_id, OLD.minutes,
        OLD.kind, OLD.memo, OLD.created_at) THEN
        RAISE EXCEPTION 'a reservation cannot be altered, only posted or voided' USING ERRCODE = 'TBIN0';
    END IF;
    IF OLD.state <> 'pending' OR NEW.state NOT IN ('posted', 'voided') THEN
        RAISE EXCEPTION 'reservation % is % and cannot become %', OLD.id, OLD.state, NEW.state
            USING ERRCODE = 'TBST0';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER pending_transfers_check BEFORE INSERT OR UPDATE OR DELETE ON pending_transfers
    FOR EACH ROW EXECUTE FUNCTION pending_transfers_check();

-- A posted reservation has its transfer by commit time.
CREATE FUNCTION pending_transfers_check_posted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM transfers WHERE pending_transfer_id = NEW.id) THEN
        RAISE EXCEPTION 'reservation % is marked posted but no transfer posts it', NEW.id
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NULL;
END $$;

-- Whatever happens to a reservation, both accounts' pending amounts must agree by commit time.
CREATE FUNCTION pending_transfers_check_holds() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_check_pending(NEW.debit_account_id);
    PERFORM ledger_check_pending(NEW.credit_account_id);
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER pending_transfers_match_accounts
    AFTER INSERT OR UPDATE OF state ON pending_transfers
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION pending_transfers_check_holds();

CREATE TRIGGER pending_transfers_no_truncate BEFORE TRUNCATE ON pending_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

CREATE CONSTRAINT TRIGGER pending_transfers_posted_once AFTER UPDATE OF state ON pending_transfers
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.state = 'posted')
    EXECUTE FUNCTION pending_transfers_check_posted();

------------------------------------------------------------------------------------------------
-- I8: an idempotency key, once claimed, keeps its request hash and its first result.
------------------------------------------------------------------------------------------------
CREATE FUNCTION idempotency_keys_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'idempotency keys are kept' USING ERRCODE = 'TBIN0';
    END IF;
    IF (NEW.timebank_id, NEW.author, NEW.key, NEW.request_hash, NEW.created_at)
       IS DISTINCT FROM (OLD.timebank_id, OLD.author, OLD.key, OLD.request_hash, OLD.created_at)
       OR (OLD.result IS NOT NULL AND NEW.result IS DISTINCT FROM OLD.result) THEN
        RAISE EXCEPTION 'idempotency key % already answered; it cannot be changed', OLD.key
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER idempotency_keys_check BEFORE UPDATE OR DELETE ON idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION idempotency_keys_check();

CREATE TRIGGER idempotency_keys_no_truncate BEFORE TRUNCATE ON idempotency_keys
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- A key is claimed and answered in the same transaction: by commit, it holds its result.
CREATE FUNCTION idempotency_keys_check_answered() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM idempotency_keys
                WHERE timebank_id = NEW.timebank_id AND author = NEW.author AND key = NEW.key
                  AND result IS NULL) THEN
        RAISE EXCEPTION 'idempotency key % was claimed but never answered', NEW.key
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER idempotency_keys_answered AFTER INSERT ON idempotency_keys
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION idempotency_keys_check_answered();

------------------------------------------------------------------------------------------------
-- Posting functions.
------------------------------------------------------------------------------------------------

-- Claim an idempotency key: NULL when newly claimed (go ahead), the stored result when this
-- exact request was already answered; a different request under the same key is refused.
CREATE FUNCTION ledger_claim_key(p_timebank_id bigint, p_author text, p_key text, p_hash bytea)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    stored_hash bytea;
    stored_result jsonb;
BEGIN
    IF p_key IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO idempotency_keys (timebank_id, author, key, request_hash)
    VALUES (p_timebank_id, p_author, p_key, p_hash)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    SELECT request_hash, result INTO stored_hash, stored_result FROM idempotency_keys
     WHERE timebank_id = p_timebank_id AND author = p_author AND key = p_key;
    IF stored_hash <> p_hash THEN
        RAISE EXCEPTION 'idempotency key % was already used for a different request', p_key
            USING ERRCODE = 'TBID0';
    END IF;
    RETURN stored_result;
END $$;

CREATE FUNCTION ledger_answer_key(p_timebank_id bigint, p_author text, p_key text, p_result jsonb)
RETURNS void
LANGUAGE sql AS $$
    UPDATE idempotency_keys SET result = p_result
     WHERE p_key IS NOT NULL AND timebank_id = p_timebank_id AND author = p_author AND key = p_key;
$$;

-- Move one account's balance and pending amounts (the row is locked by the UPDATE).
CREATE FUNCTION ledger_move_account(
    p_timebank_id bigint, p_account_id bigint,
    p_balance_delta bigint, p_pending_in_delta bigint, p_pending_out_delta bigint,
    OUT new_balance bigint, OUT new_version bigint)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts
       SET balance = balance + p_balance_delta,
           version = version + (p_balance_delta <> 0)::int,
           pending_in = pending_in + p_pending_in_delta,
           pending_out = pending_out + p_pending_out_delta
     WHERE id = p_account_id AND timebank_id = p_timebank_id
    RETURNING balance, version INTO new_balance, new_version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % not found in this timebank', p_account_id USING ERRCODE = 'TBNF0';
    END IF;
END $$;

-- Post one transfer: both accounts locked in ascending id order, the transfer and its two
-- postings written together. From a reservation, the pending amounts are released as the
-- balances move, so the limits checked at reservation time cannot fail now.
CREATE FUNCTION ledger_apply_transfer(
    p_timebank_id bigint, p_debit bigint, p_credit bigint, p_minutes bigint, p_kind text,
    p_memo text, p_pending_id bigint, p_reverses_id bigint)
RETURNS transfers
LANGUAGE plpgsql AS $$
DECLARE
    from_pending bigint := CASE WHEN p_pending_id IS NULL THEN 0 ELSE p_minutes END;
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
    IF p_debit < p_credit THEN
        SELECT * INTO debit_balance, debit_version
          FROM ledger_move_account(p_timebank_id, p_debit, -p_minutes, 0, -from_pending);
        SELECT * INTO credit_balance, credit_version
          FROM ledger_move_account(p_timebank_id, p_credit, p_minutes, -from_pending, 0);
    ELSE
        SELECT * INTO credit_balance, credit_version
          FROM ledger_move_account(p_timebank_id, p_credit, p_minutes, -from_pending, 0);
        SELECT * INTO debit_balance, debit_version
          FROM ledger_move_account(p_timebank_id, p_debit, -p_minutes, 0, -from_pending);
    END IF;
    INSERT INTO transfers (timebank_id, debit_account_id, credit_account_id, minutes, kind,
                           pending_transfer_id, reverses_transfer_id, memo)
    VALUES (p_timebank_id, p_debit, p_credit, p_minutes, p_kind, p_pending_id, p_reverses_id, p_memo)
    RETURNING * INTO posted;
    INSERT INTO postings (timebank_id, transfer_id, account_id, minutes, balance_after, account_version)
    VALUES (p_timebank_id, posted.id, p_debit, -p_minutes, debit_balance, debit_version),
           (p_timebank_id, posted.id, p_credit, p_minutes, credit_balance, credit_version);
    RETURN posted;
END $$;

-- Reserve (or release, with negative minutes) on both accounts, locked in ascending id order.
CREATE FUNCTION ledger_hold(p_timebank_id bigint, p_debit bigint, p_credit bigint, p_minutes bigint)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_debit < p_credit THEN
        PERFORM ledger_move_account(p_timebank_id, p_debit, 0, 0, p_minutes);
        PERFORM ledger_move_account(p_timebank_id, p_credit, 0, p_minutes, 0);
    ELSE
        PERFORM ledger_move_account(p_timebank_id, p_credit, 0, p_minutes, 0);
        PERFORM ledger_move_account(p_timebank_id, p_debit, 0, 0, p_minutes);
    END IF;
END $$;

-- The public posting functions below each take an optional idempotency key (author, key,
-- request hash) and return (replayed, the row): on a replay, the row first answered.

CREATE FUNCTION ledger_post_transfer(
    p_timebank_id bigint, p_debit bigint, p_credit bigint, p_minutes bigint, p_kind text,
    p_memo text, p_author text, p_key text, p_hash bytea,
    OUT replayed boolean, OUT transfer transfers)
LANGUAGE plpgsql AS $$
DECLARE
    previous jsonb := ledger_claim_key(p_timebank_id, p_author, p_key, p_hash);
BEGIN
    replayed := previous IS NOT NULL;
    IF replayed THEN
        SELECT * INTO transfer FROM transfers WHERE id = (previous ->> 'transfer_id')::bigint;
        RETURN;
    END IF;
    IF p_kind IS NULL OR p_kind NOT IN ('exchange', 'grant', 'adjustment') THEN
        RAISE EXCEPTION 'a transfer of kind % cannot be posted directly', p_kind USING ERRCODE = 'TBVA0';
    END IF;
    transfer := ledger_apply_transfer(p_timebank_id, p_debit, p_credit, p_minutes, p_kind,
                                      p_memo, NULL, NULL);
    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('transfer_id', transfer.id));
END $$;

CREATE FUNCTION ledger_reserve(
    p_timebank_id bigint, p_debit bigint, p_credit bigint, p_minutes bigint, p_kind text,
    p_memo text, p_author text, p_key text, p_hash bytea,
    OUT replayed boolean, OUT pending pending_transfers)
LANGUAGE plpgsql AS $$
DECLARE
    previous jsonb := ledger_claim_key(p_timebank_id, p_author, p_key, p_hash);
BEGIN
    replayed := previous IS NOT NULL;
    IF replayed THEN
        SELECT * INTO pending FROM pending_transfers WHERE id = (previous ->> 'pending_id')::bigint;
        RETURN;
    END IF;
    IF p_minutes IS NULL OR p_minutes <= 0 THEN
        RAISE EXCEPTION 'minutes must be a positive whole number' USING ERRCODE = 'TBVA0';
    END IF;
    IF p_debit = p_credit THEN
        RAISE EXCEPTION 'a transfer needs two different accounts' USING ERRCODE = 'TBVA0';
    END IF;
    IF p_kind = 'exchange' THEN
        PERFORM ledger_check_exchange_maximum(p_timebank_id, p_minutes);
    END IF;
    PERFORM ledger_hold(p_timebank_id, p_debit, p_credit, p_minutes);
    INSERT INTO pending_transfers (timebank_id, debit_account_id, credit_account_id, minutes, kind, memo)
    VALUES (p_timebank_id, p_debit, p_credit, p_minutes, p_kind, p_memo)
    RETURNING * INTO pending;
    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('pending_id', pending.id));
END $$;

-- Take a reservation out of 'pending' (locking it), or say why it cannot be.
CREATE FUNCTION ledger_resolve_pending(p_timebank_id bigint, p_pending_id bigint, p_state text)
RETURNS pending_transfers
LANGUAGE plpgsql AS $$
DECLARE
    p pending_transfers%ROWTYPE;
BEGIN
    UPDATE pending_transfers SET state = p_state, resolved_at = now()
     WHERE id = p_pending_id AND timebank_id = p_timebank_id AND state = 'pending'
    RETURNING * INTO p;
    IF NOT FOUND THEN
        SELECT * INTO p FROM pending_transfers WHERE id = p_pending_id AND timebank_id = p_timebank_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'reservation % not found in this timebank', p_pending_id USING ERRCODE = 'TBNF0';
        END IF;
        RAISE EXCEPTION 'reservation % is already %', p_pending_id, p.state USING ERRCODE = 'TBST0';
    END IF;
    RETURN p;
END $$;

CREATE FUNCTION ledger_post_pending(
    p_timebank_id bigint, p_pending_id bigint, p_author text, p_key text, p_hash bytea,
    OUT replayed boolean, OUT transfer transfers)
LANGUAGE plpgsql AS $$
DECLARE
    previous jsonb := ledger_claim_key(p_timebank_id, p_author, p_key, p_hash);
    p pending_transfers%ROWTYPE;
BEGIN
    replayed := previous IS NOT NULL;
    IF replayed THEN
        SELECT * INTO transfer FROM transfers WHERE id = (previous ->> 'transfer_id')::bigint;
        RETURN;
    END IF;
    p := ledger_resolve_pending(p_timebank_id, p_pending_id, 'posted');
    transfer := ledger_apply_transfer(p_timebank_id, p.debit_account_id, p.credit_account_id,
                                      p.minutes, p.kind, p.memo, p.id, NULL);
    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('transfer_id', transfer.id));
END $$;

CREATE FUNCTION ledger_void_pending(
    p_timebank_id bigint, p_pending_id bigint, p_author text, p_key text, p_hash bytea,
    OUT replayed boolean, OUT pending pending_transfers)
LANGUAGE plpgsql AS $$
DECLARE
    previous jsonb := ledger_claim_key(p_timebank_id, p_author, p_key, p_hash);
BEGIN
    replayed := previous IS NOT NULL;
    IF replayed THEN
        SELECT * INTO pending FROM pending_transfers WHERE id = (previous ->> 'pending_id')::bigint;
        RETURN;
    END IF;
    pending := ledger_resolve_pending(p_timebank_id, p_pending_id, 'voided');
    PERFORM ledger_hold(p_timebank_id, pending.debit_account_id, pending.credit_account_id,
                        -pending.minutes);
    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('pending_id', pending.id));
END $$;

CREATE FUNCTION ledger_reverse(
    p_timebank_id bigint, p_transfer_id bigint, p_reason text, p_author text, p_key text,
    p_hash bytea, OUT replayed boolean, OUT transfer transfers)
LANGUAGE plpgsql AS $$
DECLARE
    previous jsonb := ledger_claim_key(p_timebank_id, p_author, p_key, p_hash);
    original transfers%ROWTYPE;
BEGIN
    replayed := previous IS NOT NULL;
    IF replayed THEN
        SELECT * INTO transfer FROM transfers WHERE id = (previous ->> 'transfer_id')::bigint;
        RETURN;
    END IF;
    IF p_reason IS NULL OR length(btrim(p_reason)) = 0 THEN
        RAISE EXCEPTION 'a reversal needs a reason' USING ERRCODE = 'TBVA0';
    END IF;
    -- Lock the original so concurrent reversals of it take turns; the second then sees the
    -- first and is told the transfer is already reversed (not a limit error).
    SELECT * INTO original FROM transfers WHERE id = p_transfer_id AND timebank_id = p_timebank_id
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'transfer % not found in this timebank', p_transfer_id USING ERRCODE = 'TBNF0';
    END IF;
    IF original.kind = 'reversal' THEN
        RAISE EXCEPTION 'transfer % is a reversal and cannot itself be reversed', p_transfer_id
            USING ERRCODE = 'TBST0';
    END IF;
    IF EXISTS (SELECT 1 FROM transfers WHERE reverses_transfer_id = p_transfer_id) THEN
        RAISE EXCEPTION 'transfer % is already reversed', p_transfer_id USING ERRCODE = 'TBST0';
    END IF;
    transfer := ledger_apply_transfer(p_timebank_id, original.credit_account_id,
                                      original.debit_account_id, original.minutes, 'reversal',
                                      p_reason, NULL, p_transfer_id);
    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('transfer_id', transfer.id));
END $$;

-- Post many transfers in one transaction, all or none: every account touched is locked once
-- (ascending id) and updated once with its net movement; each transfer still gets its own two
-- postings with the running balance, and no running balance may pass a limit.
CREATE FUNCTION ledger_post_batch(
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

    -- I5 at every step of the batch, not only at its end.
    SELECT l.account_id, l.balance_after, a.floor, a.ceiling,
           l.balance_after - a.pending_out < a.floor AS below_floor INTO breach
      FROM ledger_batch_legs l JOIN accounts a ON a.id = l.account_id
     WHERE l.balance_after - a.pending_out < a.floor OR l.balance_after + a.pending_in > a.ceiling
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
