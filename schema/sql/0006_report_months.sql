-- Reports for whole months read month-sized aggregates, so a year is a dozen rows per figure
-- rather than every day or every pair:
--
-- * report_month_people: the month's givers and receivers as bitmaps (as report_day_people
--   holds them per day). Distinct people over whole months = OR of a few rows + bit count.
--
-- * Ties by steps. For each pair of participants, report_pair_months holds the months they
--   exchanged in and how often in each direction. A pair is a tie in months [s, e] when one
--   of its months falls in there; counting each pair at its first month in [s, e] only, and
--   noting that month m is a pair's first in [s, e] exactly when the pair's previous month
--   before m is earlier than s:
--       ties(s, e) = number of (pair, month m) with s <= m <= e and previous(m) < s.
--   report_tie_steps keeps those numbers per (month, previous month), so a year of ties is a
--   sum over a few hundred rows. The same is kept for the months each pair exchanged in one
--   direction ("forth": the lower id gave) and in the other ("back"); a pair is a two-way tie
--   in [s, e] when it has both directions there, so two-way = forth + back - any.
--
-- Step counts are spread over a few shards (by database backend), so that concurrent
-- approvals do not queue on one hot row; a report sums the shards.
--
-- Writes that only confirm what a bitmap already says no longer rewrite the row: the
-- bitmaps are read under a KEY SHARE lock (which concurrent approvals share, and which a
-- reversal clearing a bit must wait for), and written only when a bit changes.

CREATE TABLE report_month_people (
    timebank_id bigint     NOT NULL,
    month       date       NOT NULL,  -- first day of the month
    dimension   text       NOT NULL,
    chunk       integer    NOT NULL,
    givers      bit(2048)  NOT NULL,
    receivers   bit(2048)  NOT NULL,
    CONSTRAINT report_month_people_pkey PRIMARY KEY (timebank_id, month, dimension, chunk),
    CONSTRAINT report_month_people_first_day CHECK (extract(day FROM month) = 1)
);

INSERT INTO report_month_people (timebank_id, month, dimension, chunk, givers, receivers)
SELECT timebank_id, date_trunc('month', day)::date, dimension, chunk, bit_or(givers),
       bit_or(receivers)
  FROM report_day_people
 GROUP BY 1, 2, 3, 4;

-- Whether participant p still takes part (as giver or receiver) between two days in a
-- dimension, in the exchanges that count now (read by party, through the counted indexes).
CREATE FUNCTION report_still_counts_between(
    p_first date, p_last date, p_dimension text, p_participant_id bigint, p_as_giver boolean)
RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_as_giver THEN
        RETURN EXISTS (
            SELECT 1 FROM exchanges e
              JOIN participants g ON g.id = e.giver_id
              JOIN participants r ON r.id = e.receiver_id
             WHERE e.giver_id = p_participant_id AND e.service_date BETWEEN p_first AND p_last
               AND e.approved_at IS NOT NULL AND e.reversed_at IS NULL
               AND (p_dimension = 'all'
                    OR p_dimension = 'category:' || e.category_id
                    OR p_dimension = 'flow:' || g.kind || '>' || r.kind));
    END IF;
    RETURN EXISTS (
        SELECT 1 FROM exchanges e
          JOIN participants g ON g.id = e.giver_id
          JOIN participants r ON r.id = e.receiver_id
         WHERE e.receiver_id = p_participant_id AND e.service_date BETWEEN p_first AND p_last
           AND e.approved_at IS NOT NULL AND e.reversed_at IS NULL
           AND (p_dimension = 'all'
                OR p_dimension = 'category:' || e.category_id
                OR p_dimension = 'flow:' || g.kind || '>' || r.kind));
END $$;

-- Set (p_counting) or recompute one bitmap row of a day (p_month false) or a month.
CREATE FUNCTION report_mark_row(
    p_month boolean, p_timebank_id bigint, p_day date, p_dimension text, p_chunk integer,
    p_giver_id bigint, p_giver_pos integer, p_receiver_id bigint, p_receiver_pos integer,
    p_counting boolean)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    zeros bit(2048) := repeat('0', 2048)::bit(2048);
    first date := CASE WHEN p_month THEN date_trunc('month', p_day)::date ELSE p_day END;
    last date := CASE WHEN p_month
                      THEN (date_trunc('month', p_day) + interval '1 month - 1 day')::date
                      ELSE p_day END;
    old_givers bit(2048);
    old_receivers bit(2048);
    new_givers bit(2048);
    new_receivers bit(2048);
BEGIN
    IF p_counting THEN
        -- Shared with other approvals; a reversal's FOR UPDATE waits for it.
        IF p_month THEN
            SELECT givers, receivers INTO old_givers, old_receivers FROM report_month_people
             WHERE timebank_id = p_timebank_id AND month = first AND dimension = p_dimension
               AND chunk = p_chunk
               FOR KEY SHARE;
        ELSE
            SELECT givers, receivers INTO old_givers, old_receivers FROM report_day_people
             WHERE timebank_id = p_timebank_id AND day = first AND dimension = p_dimension
               AND chunk = p_chunk
               FOR KEY SHARE;
        END IF;
        IF FOUND AND (p_giver_pos IS NULL OR get_bit(old_givers, p_giver_pos) = 1)
                 AND (p_receiver_pos IS NULL OR get_bit(old_receivers, p_receiver_pos) = 1) THEN
            RETURN;  -- nothing to change
        END IF;
        new_givers := CASE WHEN p_giver_pos IS NULL THEN zeros
                           ELSE set_bit(zeros, p_giver_pos, 1) END;
        new_receivers := CASE WHEN p_receiver_pos IS NULL THEN zeros
                              ELSE set_bit(zeros, p_receiver_pos, 1) END;
        IF p_month THEN
            INSERT INTO report_month_people AS m
                   (timebank_id, month, dimension, chunk, givers, receivers)
            VALUES (p_timebank_id, first, p_dimension, p_chunk, new_givers, new_receivers)
            ON CONFLICT (timebank_id, month, dimension, chunk) DO UPDATE
               SET givers = m.givers | EXCLUDED.givers,
                   receivers = m.receivers | EXCLUDED.receivers;
        ELSE
            INSERT INTO report_day_people AS d
                   (timebank_id, day, dimension, chunk, givers, receivers)
            VALUES (p_timebank_id, first, p_dimension, p_chunk, new_givers, new_receivers)
            ON CONFLICT (timebank_id, day, dimension, chunk) DO UPDATE
               SET givers = d.givers | EXCLUDED.givers,
                   receivers = d.receivers | EXCLUDED.receivers;
        END IF;
        RETURN;
    END IF;

    -- Stopping: lock the row (waiting for approvals in flight), then decide from what counts.
    IF p_month THEN
        SELECT givers, receivers INTO old_givers, old_receivers FROM report_month_people
         WHERE timebank_id = p_timebank_id AND month = first AND dimension = p_dimension
           AND chunk = p_chunk
           FOR UPDATE;
    ELSE
        SELECT givers, receivers INTO old_givers, old_receivers FROM report_day_people
         WHERE timebank_id = p_timebank_id AND day = first AND dimension = p_dimension
           AND chunk = p_chunk
           FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    new_givers := old_givers;
    new_receivers := old_receivers;
    IF p_giver_pos IS NOT NULL THEN
        new_givers := set_bit(new_givers, p_giver_pos, report_still_counts_between(
            first, last, p_dimension, p_giver_id, true)::int);
    END IF;
    IF p_receiver_pos IS NOT NULL THEN
        new_receivers := set_bit(new_receivers, p_receiver_pos, report_still_counts_between(
            first, last, p_dimension, p_receiver_id, false)::int);
    END IF;
    IF new_givers <> old_givers OR new_receivers <> old_receivers THEN
        IF p_month THEN
            UPDATE report_month_people SET givers = new_givers, receivers = new_receivers
             WHERE timebank_id = p_timebank_id AND month = first AND dimension = p_dimension
               AND chunk = p_chunk;
        ELSE
            UPDATE report_day_people SET givers = new_givers, receivers = new_receivers
             WHERE timebank_id = p_timebank_id AND day = first AND dimension = p_dimension
               AND chunk = p_chunk;
        END IF;
    END IF;
END $$;

-- The day's row, then the month's (always in that order, so concurrent marks cannot deadlock).
CREATE OR REPLACE FUNCTION report_mark(
    p_timebank_id bigint, p_day date, p_dimension text, p_chunk integer,
    p_giver_id bigint, p_giver_pos integer, p_receiver_id bigint, p_receiver_pos integer,
    p_counting boolean)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM report_mark_row(false, p_timebank_id, p_day, p_dimension, p_chunk, p_giver_id,
                            p_giver_pos, p_receiver_id, p_receiver_pos, p_counting);
    PERFORM report_mark_row(true, p_timebank_id, p_day, p_dimension, p_chunk, p_giver_id,
                            p_giver_pos, p_receiver_id, p_receiver_pos, p_counting);
END $$;

DROP FUNCTION report_still_counts(bigint, date, text, bigint, boolean);

-- An exchange starts (p_counting) or stops counting: move every aggregate it is part of.
-- Rows are taken in one order (dimension, chunk; day before month) so that concurrent
-- updates do not deadlock. First days are written only where they move.
CREATE OR REPLACE FUNCTION report_apply(e exchanges, p_counting boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    sign int := CASE WHEN p_counting THEN 1 ELSE -1 END;
    giver participants%ROWTYPE;
    receiver participants%ROWTYPE;
    dimensions text[];
    dimension text;
    g_chunk int;
    r_chunk int;
    person bigint;
    first date;
BEGIN
    SELECT * INTO giver FROM participants WHERE id = e.giver_id;
    SELECT * INTO receiver FROM participants WHERE id = e.receiver_id;

    INSERT INTO report_days AS d (timebank_id, day, category_id, giver_kind, receiver_kind,
                                  minutes, exchanges)
    VALUES (e.timebank_id, e.service_date, e.category_id, giver.kind, receiver.kind,
            sign * e.minutes, sign)
    ON CONFLICT (timebank_id, day, category_id, giver_kind, receiver_kind)
    DO UPDATE SET minutes = d.minutes + EXCLUDED.minutes,
                  exchanges = d.exchanges + EXCLUDED.exchanges;

    dimensions := ARRAY(SELECT x FROM unnest(ARRAY[
        'all', 'category:' || e.category_id, 'flow:' || giver.kind || '>' || receiver.kind]) x
        ORDER BY x);

    g_chunk := giver.ordinal / 2048;
    r_chunk := receiver.ordinal / 2048;
    FOREACH dimension IN ARRAY dimensions LOOP
        IF g_chunk = r_chunk THEN
            PERFORM report_mark(e.timebank_id, e.service_date, dimension, g_chunk,
                                giver.id, giver.ordinal % 2048, receiver.id, receiver.ordinal % 2048,
                                p_counting);
        ELSIF g_chunk < r_chunk THEN
            PERFORM report_mark(e.timebank_id, e.service_date, dimension, g_chunk,
                                giver.id, giver.ordinal % 2048, NULL, NULL, p_counting);
            PERFORM report_mark(e.timebank_id, e.service_date, dimension, r_chunk,
                                NULL, NULL, receiver.id, receiver.ordinal % 2048, p_counting);
        ELSE
            PERFORM report_mark(e.timebank_id, e.service_date, dimension, r_chunk,
                                NULL, NULL, receiver.id, receiver.ordinal % 2048, p_counting);
            PERFORM report_mark(e.timebank_id, e.service_date, dimension, g_chunk,
                                giver.id, giver.ordinal % 2048, NULL, NULL, p_counting);
        END IF;
    END LOOP;

    IF p_counting THEN
        -- Nobody's first day moves later; write only where it moves earlier.
        INSERT INTO report_firsts AS f (timebank_id, participant_id, first_day)
        SELECT e.timebank_id, x, e.service_date
          FROM unnest(ARRAY[least(giver.id, receiver.id), greatest(giver.id, receiver.id)]) x
        ON CONFLICT (participant_id) DO UPDATE SET first_day = EXCLUDED.first_day
         WHERE f.first_day > EXCLUDED.first_day;
        RETURN;
    END IF;
    FOREACH person IN ARRAY ARRAY[least(giver.id, receiver.id), greatest(giver.id, receiver.id)]
    LOOP
        -- Lock first (waiting for approvals in flight), then look.
        PERFORM 1 FROM report_firsts WHERE participant_id = person FOR UPDATE;
        first := report_first_day(person);
        IF first IS NULL THEN
            DELETE FROM report_firsts WHERE participant_id = person;
        ELSE
            UPDATE report_firsts SET first_day = first WHERE participant_id = person;
        END IF;
    END LOOP;
END $$;

-- Ties ------------------------------------------------------------------------------------

CREATE TABLE report_pair_months (
    timebank_id bigint  NOT NULL,
    low_id      bigint  NOT NULL,
    high_id     bigint  NOT NULL,
    month       date    NOT NULL,  -- first day of the month
    forth       integer NOT NULL,  -- exchanges counting now in which low gave to high
    back        integer NOT NULL,  -- ... and high to low
    CONSTRAINT report_pair_months_pkey PRIMARY KEY (timebank_id, low_id, high_id, month),
    CONSTRAINT report_pair_months_ordered CHECK (low_id < high_id),
    CONSTRAINT report_pair_months_counts CHECK (forth >= 0 AND back >= 0)
);

CREATE TABLE report_tie_steps (
    timebank_id bigint   NOT NULL,
    kind        text     NOT NULL,  -- 'any', 'forth' or 'back': which months of each pair
    month       date     NOT NULL,
    previous    date     NOT NULL,  -- the pair's previous such month; '-infinity' if none
    shard       smallint NOT NULL,
    pairs       integer  NOT NULL,
    CONSTRAINT report_tie_steps_pkey PRIMARY KEY (timebank_id, kind, month, previous, shard),
    CONSTRAINT report_tie_steps_kind CHECK (kind IN ('any', 'forth', 'back')),
    CONSTRAINT report_tie_steps_order CHECK (previous < month)
);

-- Month p_month joins (p_joining) or leaves a pair's months of one kind: move the steps of
-- that month and of the pair's next month of that kind, in one statement (rows in key
-- order). Step counts go to this backend's shard. The pair is locked by the caller.
CREATE FUNCTION report_step_pair(
    p_timebank_id bigint, p_kind text, p_low bigint, p_high bigint, p_month date,
    p_joining boolean)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    sign integer := CASE WHEN p_joining THEN 1 ELSE -1 END;
    before date;
    after date;
BEGIN
    SELECT coalesce(max(month) FILTER (WHERE month < p_month), '-infinity'),
           min(month) FILTER (WHERE month > p_month)
      INTO before, after
      FROM report_pair_months
     WHERE timebank_id = p_timebank_id AND low_id = p_low AND high_id = p_high
       AND month <> p_month
       AND CASE p_kind WHEN 'forth' THEN forth > 0 WHEN 'back' THEN back > 0
                       ELSE forth + back > 0 END;
    INSERT INTO report_tie_steps AS s (timebank_id, kind, month, previous, shard, pairs)
    SELECT p_timebank_id, p_kind, v.month, v.previous, pg_backend_pid() % 8, v.delta
      FROM (VALUES (p_month, before, sign), (after, before, -sign), (after, p_month, sign))
           AS v(month, previous, delta)
     WHERE v.month IS NOT NULL
     ORDER BY v.month, v.previous
    ON CONFLICT (timebank_id, kind, month, previous, shard)
    DO UPDATE SET pairs = s.pairs + EXCLUDED.pairs;
END $$;

CREATE OR REPLACE FUNCTION report_mark_pair(e exchanges, p_counting boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    low bigint := least(e.giver_id, e.receiver_id);
    high bigint := greatest(e.giver_id, e.receiver_id);
    month_start date := date_trunc('month', e.service_date)::date;
    sign integer := CASE WHEN p_counting THEN 1 ELSE -1 END;
    d_forth integer := CASE WHEN e.giver_id = low THEN sign ELSE 0 END;
    d_back integer := CASE WHEN e.giver_id = high THEN sign ELSE 0 END;
    new_forth integer;
    new_back integer;
BEGIN
    -- One pair at a time: its months are read and then moved.
    PERFORM pg_advisory_xact_lock(hashtextextended('report pair ' || low || ' ' || high, 0));
    IF p_counting THEN
        INSERT INTO report_pair_months AS p (timebank_id, low_id, high_id, month, forth, back)
        VALUES (e.timebank_id, low, high, month_start, d_forth, d_back)
        ON CONFLICT (timebank_id, low_id, high_id, month)
        DO UPDATE SET forth = p.forth + EXCLUDED.forth, back = p.back + EXCLUDED.back
        RETURNING forth, back INTO new_forth, new_back;
    ELSE
        UPDATE report_pair_months SET forth = forth + d_forth, back = back + d_back
         WHERE timebank_id = e.timebank_id AND low_id = low AND high_id = high
           AND month = month_start
        RETURNING forth, back INTO STRICT new_forth, new_back;
    END IF;
    IF (new_forth - d_forth > 0) <> (new_forth > 0) THEN
        PERFORM report_step_pair(e.timebank_id, 'forth', low, high, month_start, new_forth > 0);
    END IF;
    IF (new_back - d_back > 0) <> (new_back > 0) THEN
        PERFORM report_step_pair(e.timebank_id, 'back', low, high, month_start, new_back > 0);
    END IF;
    IF (new_forth + new_back - d_forth - d_back > 0) <> (new_forth + new_back > 0) THEN
        PERFORM report_step_pair(e.timebank_id, 'any', low, high, month_start,
                                 new_forth + new_back > 0);
    END IF;
END $$;

-- What already counts.
INSERT INTO report_pair_months (timebank_id, low_id, high_id, month, forth, back)
SELECT timebank_id, least(giver_id, receiver_id), greatest(giver_id, receiver_id),
       date_trunc('month', service_date)::date,
       count(*) FILTER (WHERE giver_id < receiver_id), count(*) FILTER (WHERE giver_id > receiver_id)
  FROM exchanges
 WHERE approved_at IS NOT NULL AND reversed_at IS NULL
 GROUP BY 1, 2, 3, 4;

INSERT INTO report_tie_steps (timebank_id, kind, month, previous, shard, pairs)
SELECT timebank_id, kind, month, coalesce(previous, '-infinity'), 0, count(*)
  FROM (
      SELECT timebank_id, 'any' AS kind, month,
             lag(month) OVER (PARTITION BY timebank_id, low_id, high_id ORDER BY month) AS previous
        FROM report_pair_months
      UNION ALL
      SELECT timebank_id, 'forth', month,
             lag(month) OVER (PARTITION BY timebank_id, low_id, high_id ORDER BY month)
        FROM report_pair_months WHERE forth > 0
      UNION ALL
      SELECT timebank_id, 'back', month,
             lag(month) OVER (PARTITION BY timebank_id, low_id, high_id ORDER BY month)
        FROM report_pair_months WHERE back > 0
  ) steps
 GROUP BY 1, 2, 3, 4;

DROP TABLE report_pairs;
