-- Post many transfers in one transaction, all or none: every account touched is locked once
-- (ascending id) and updated once with its net movement; each transfer still gets its own two
-- postings with the running balance, and no running balance may pass a limit (an account
-- flagged by a reversal may stay outside its limits, as long as no step takes it further out).
-- With an idempotency key, returns (replayed, transfer) rows as ledger_post_transfer does.
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
