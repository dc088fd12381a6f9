-- Apply up to p_limit queued changes (report_queue), oldest first; returns how many were
-- applied, or -1 when another applier holds the lock (it will get to them). Approvals in a
-- batch are applied together, before its reversals, which recount from the exchanges as they
-- stand; both commute with entries still in flight (bits are OR-ed or recounted from the
-- truth, counts are sums).
CREATE OR REPLACE FUNCTION report_apply_queued(p_limit integer DEFAULT 5000) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    zeros bit(2048) := repeat('0', 2048)::bit(2048);
    applied integer;
    starting bigint[];
    stopping bigint[];
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

        -- Ties: the steps of each pair the batch touches, recounted from its months as they
        -- were and as they will be (a step depends on the pair's other months, and a pair may
        -- gain several in one batch), then its months. Each step row is written once per
        -- batch, however many pairs move it.
        WITH delta AS (
            SELECT e.timebank_id AS tb, least(e.giver_id, e.receiver_id) AS low,
                   greatest(e.giver_id, e.receiver_id) AS high,
                   date_trunc('month', e.service_date)::date AS month,
                   count(*) FILTER (WHERE e.giver_id < e.receiver_id)::integer AS forth,
                   count(*) FILTER (WHERE e.giver_id > e.receiver_id)::integer AS back
              FROM unnest(starting) s(id) JOIN exchanges e ON e.id = s.id
             GROUP BY 1, 2, 3, 4
        ),
        before AS (
            SELECT p.timebank_id AS tb, p.low_id AS low, p.high_id AS high, p.month, p.forth,
                   p.back
              FROM (SELECT DISTINCT tb, low, high FROM delta) x
              JOIN report_pair_months p
                ON p.timebank_id = x.tb AND p.low_id = x.low AND p.high_id = x.high
        ),
        after AS (
            SELECT coalesce(b.tb, d.tb) AS tb, coalesce(b.low, d.low) AS low,
                   coalesce(b.high, d.high) AS high, coalesce(b.month, d.month) AS month,
                   coalesce(b.forth, 0) + coalesce(d.forth, 0) AS forth,
                   coalesce(b.back, 0) + coalesce(d.back, 0) AS back
              FROM before b FULL JOIN delta d
                ON d.tb = b.tb AND d.low = b.low AND d.high = b.high AND d.month = b.month
        ),
        kinds AS (
            SELECT m.sign, m.tb, m.low, m.high, k.kind, m.month
              FROM (SELECT -1 AS sign, * FROM before UNION ALL SELECT 1, * FROM after) m
             CROSS JOIN LATERAL (VALUES ('any', m.forth + m.back > 0), ('forth', m.forth > 0),
                                        ('back', m.back > 0)) AS k(kind, counts)
             WHERE k.counts
        ),
        steps AS (
            SELECT sign, tb, kind, month,
                   coalesce(lag(month) OVER (PARTITION BY sign, tb, low, high, kind
                                             ORDER BY month), '-infinity') AS previous
              FROM kinds
        )
        INSERT INTO report_tie_steps AS t (timebank_id, kind, month, previous, shard, pairs)
        SELECT tb, kind, month, previous, 0, sum(sign)
          FROM steps
         GROUP BY 1, 2, 3, 4
        HAVING sum(sign) <> 0
         ORDER BY 1, 2, 3, 4
        ON CONFLICT (timebank_id, kind, month, previous, shard)
        DO UPDATE SET pairs = t.pairs + EXCLUDED.pairs;

        INSERT INTO report_pair_months AS p (timebank_id, low_id, high_id, month, forth, back)
        SELECT e.timebank_id, least(e.giver_id, e.receiver_id),
               greatest(e.giver_id, e.receiver_id),
               date_trunc('month', e.service_date)::date,
               count(*) FILTER (WHERE e.giver_id < e.receiver_id),
               count(*) FILTER (WHERE e.giver_id > e.receiver_id)
          FROM unnest(starting) s(id) JOIN exchanges e ON e.id = s.id
         GROUP BY 1, 2, 3, 4
         ORDER BY 1, 2, 3, 4
        ON CONFLICT (timebank_id, low_id, high_id, month)
        DO UPDATE SET forth = p.forth + EXCLUDED.forth, back = p.back + EXCLUDED.back;
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
