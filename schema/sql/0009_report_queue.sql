-- Report aggregates are brought up to date in batches, off the path of the request that
-- approves or reverses an exchange. The request's statement only queues the change (one small
-- row); a background applier (report_apply_queued, called by every service process about once
-- a second) moves the aggregates for a whole batch at once: one row per day and category in
-- report_days however many exchanges it holds, each day's and month's bitmaps OR-ed once,
-- first days by min. Before, every approval moved a dozen aggregate rows on its own, under
-- row locks taken one by one.
--
-- Reports stay exact at every moment: the aggregates hold the changes applied so far, the
-- queue the rest, and both are read in one snapshot, the queue's exchanges as corrections
-- (timebank/reports/repository.py), as changes since an "as of" moment already were.
--
-- Order: an exchange's approval is queued by a transaction that committed before its reversal
-- could start, so it always has the smaller id; one applier runs at a time (an advisory lock),
-- taking the oldest entries first. Approvals in a batch are applied before its reversals, which
-- recount from the exchanges as they stand; both kinds of change commute with entries still in
-- flight (bits are OR-ed or recounted from the truth, counts are sums).

CREATE TABLE report_queue (
    id          bigserial PRIMARY KEY,
    exchange_id bigint  NOT NULL,  -- no foreign key: exchanges are never deleted
    counting    boolean NOT NULL   -- true: it starts counting (approved); false: it stops
);
CREATE INDEX report_queue_exchange_idx ON report_queue (exchange_id);

CREATE OR REPLACE FUNCTION exchanges_keep_reports() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.approved_at IS NOT NULL AND OLD.approved_at IS NULL THEN
        INSERT INTO report_queue (exchange_id, counting) VALUES (NEW.id, true);
    END IF;
    IF NEW.reversed_at IS NOT NULL AND OLD.reversed_at IS NULL THEN
        INSERT INTO report_queue (exchange_id, counting) VALUES (NEW.id, false);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION exchanges_keep_reports_logged() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_queue (exchange_id, counting) VALUES (NEW.id, true);
    RETURN NULL;
END $$;

-- Apply up to p_limit queued changes, oldest first; returns how many were applied, or -1 when
-- another applier holds the lock (it will get to them).
CREATE FUNCTION report_apply_queued(p_limit integer DEFAULT 5000) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    zeros bit(2048) := repeat('0', 2048)::bit(2048);
    applied integer;
    starting bigint[];
    stopping bigint[];
    pm record;
    new_forth integer;
    new_back integer;
    gone exchanges%ROWTYPE;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('report apply queued', 0)) THEN
        RETURN -1;
    END IF;
    WITH batch AS (
        DELETE FROM report_queue q
         WHERE q.id IN (SELECT id FROM report_queue ORDER BY id LIMIT p_limit)
        RETURNING q.id, q.exchange_id, q.counting
    )
    SELECT count(*),
           coalesce(array_agg(exchange_id ORDER BY id) FILTER (WHERE counting), '{}'),
           coalesce(array_agg(exchange_id ORDER BY id) FILTER (WHERE NOT counting), '{}')
      INTO applied, starting, stopping
      FROM batch;
    IF applied = 0 THEN
        RETURN 0;
    END IF;

    IF cardinality(starting) > 0 THEN
        -- One statement for the additive aggregates (no temporary tables: nothing for the
        -- catalog to churn through once a second for years).
        WITH batch AS (
            SELECT e.timebank_id, e.service_date AS day,
                   date_trunc('month', e.service_date)::date AS month, e.category_id, e.minutes,
                   e.giver_id, e.receiver_id, g.kind AS giver_kind, r.kind AS receiver_kind,
                   g.ordinal AS giver_ordinal, r.ordinal AS receiver_ordinal
              FROM unnest(starting) s(id)
              JOIN exchanges e ON e.id = s.id
              JOIN participants g ON g.id = e.giver_id
              JOIN participants r ON r.id = e.receiver_id
        ),
        -- Minutes and exchanges: one row per day, category and flow.
        days AS (
            INSERT INTO report_days AS d (timebank_id, day, category_id, giver_kind,
                                          receiver_kind, minutes, exchanges)
            SELECT timebank_id, day, category_id, giver_kind, receiver_kind, sum(minutes),
                   count(*)
              FROM batch
             GROUP BY 1, 2, 3, 4, 5
             ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT (timebank_id, day, category_id, giver_kind, receiver_kind)
            DO UPDATE SET minutes = d.minutes + EXCLUDED.minutes,
                          exchanges = d.exchanges + EXCLUDED.exchanges
        ),
        -- People: each party's bit in each dimension, OR-ed into the day's and the month's row
        -- (written only where a bit changes).
        bits AS (
            SELECT b.timebank_id, b.day, b.month, dim.dimension, leg.ordinal / 2048 AS chunk,
                   bit_or(CASE WHEN leg.gave THEN set_bit(zeros, leg.ordinal % 2048, 1)
                               ELSE zeros END) AS givers,
                   bit_or(CASE WHEN leg.gave THEN zeros
                               ELSE set_bit(zeros, leg.ordinal % 2048, 1) END) AS receivers
              FROM batch b
              CROSS JOIN LATERAL (VALUES (b.giver_ordinal, true), (b.receiver_ordinal, false))
                    AS leg(ordinal, gave)
              CROSS JOIN LATERAL (VALUES ('all'), ('category:' || b.category_id),
                                         ('flow:' || b.giver_kind || '>' || b.receiver_kind))
                    AS dim(dimension)
             GROUP BY 1, 2, 3, 4, 5
        ),
        day_people AS (
            INSERT INTO report_day_people AS d
                   (timebank_id, day, dimension, chunk, givers, receivers)
            SELECT timebank_id, day, dimension, chunk, givers, receivers
              FROM bits
             ORDER BY 1, 2, 3, 4
            ON CONFLICT (timebank_id, day, dimension, chunk) DO UPDATE
               SET givers = d.givers | EXCLUDED.givers,
                   receivers = d.receivers | EXCLUDED.receivers
             WHERE (d.givers | EXCLUDED.givers) <> d.givers
                OR (d.receivers | EXCLUDED.receivers) <> d.receivers
        ),
        month_people AS (
            INSERT INTO report_month_people AS m
                   (timebank_id, month, dimension, chunk, givers, receivers)
            SELECT timebank_id, month, dimension, chunk, bit_or(givers), bit_or(receivers)
              FROM bits
             GROUP BY 1, 2, 3, 4
             ORDER BY 1, 2, 3, 4
            ON CONFLICT (timebank_id, month, dimension, chunk) DO UPDATE
               SET givers = m.givers | EXCLUDED.givers,
                   receivers = m.receivers | EXCLUDED.receivers
             WHERE (m.givers | EXCLUDED.givers) <> m.givers
                OR (m.receivers | EXCLUDED.receivers) <> m.receivers
        )
        -- First days: written only where one moves earlier.
        INSERT INTO report_firsts AS f (timebank_id, participant_id, first_day)
        SELECT timebank_id, pid, min(day)
          FROM batch
          CROSS JOIN LATERAL (VALUES (giver_id), (receiver_id)) AS party(pid)
         GROUP BY 1, 2
         ORDER BY 2
        ON CONFLICT (participant_id) DO UPDATE SET first_day = EXCLUDED.first_day
         WHERE f.first_day > EXCLUDED.first_day;

        -- Ties: each pair's months, then the steps of the months that join a pair's (one
        -- pair-month at a time: a step depends on the pair's other months).
        FOR pm IN
            SELECT e.timebank_id, least(giver_id, receiver_id) AS low,
                   greatest(giver_id, receiver_id) AS high,
                   date_trunc('month', e.service_date)::date AS month,
                   count(*) FILTER (WHERE giver_id < receiver_id)::integer AS d_forth,
                   count(*) FILTER (WHERE giver_id > receiver_id)::integer AS d_back
              FROM unnest(starting) s(id) JOIN exchanges e ON e.id = s.id
             GROUP BY 1, 2, 3, 4
             ORDER BY 1, 2, 3, 4
        LOOP
            INSERT INTO report_pair_months AS p (timebank_id, low_id, high_id, month, forth, back)
            VALUES (pm.timebank_id, pm.low, pm.high, pm.month, pm.d_forth, pm.d_back)
            ON CONFLICT (timebank_id, low_id, high_id, month)
            DO UPDATE SET forth = p.forth + EXCLUDED.forth, back = p.back + EXCLUDED.back
            RETURNING forth, back INTO new_forth, new_back;
            IF new_forth - pm.d_forth = 0 AND new_forth > 0 THEN
                PERFORM report_step_pair(pm.timebank_id, 'forth', pm.low, pm.high, pm.month, true);
            END IF;
            IF new_back - pm.d_back = 0 AND new_back > 0 THEN
                PERFORM report_step_pair(pm.timebank_id, 'back', pm.low, pm.high, pm.month, true);
            END IF;
            IF new_forth + new_back - pm.d_forth - pm.d_back = 0 THEN
                PERFORM report_step_pair(pm.timebank_id, 'any', pm.low, pm.high, pm.month, true);
            END IF;
        END LOOP;
    END IF;

    -- Reversals, one by one in the order they happened, each recounting what it touches.
    FOR gone IN SELECT x.* FROM unnest(stopping) WITH ORDINALITY s(id, n)
                  JOIN exchanges x ON x.id = s.id ORDER BY s.n
    LOOP
        PERFORM report_apply(gone, false);
        PERFORM report_mark_pair(gone, false);
    END LOOP;
    RETURN applied;
END $$;
