-- Aggregates for the reports, kept up to date by PostgreSQL whenever an exchange starts or
-- stops counting (approved, reversed), so a report reads a few hundred small rows per year
-- instead of every exchange. They hold the ledger as it stands now; a report "as of" an
-- earlier moment recomputes, from the exchanges themselves, just the days changed since then.
--
-- People are counted with bitmaps: each participant has an ordinal in its timebank, and a
-- day's givers and receivers are bit strings of 2048 ordinals per chunk, so "distinct people
-- over any set of days" is a bitwise OR and a bit count.

ALTER TABLE timebanks ADD COLUMN participants_enrolled integer NOT NULL DEFAULT 0;
ALTER TABLE participants ADD COLUMN ordinal integer;

UPDATE participants p SET ordinal = numbered.n
  FROM (SELECT id, row_number() OVER (PARTITION BY timebank_id ORDER BY id) - 1 AS n
          FROM participants) numbered
 WHERE numbered.id = p.id;
UPDATE timebanks t SET participants_enrolled =
    (SELECT count(*) FROM participants p WHERE p.timebank_id = t.id);

ALTER TABLE participants
    ALTER COLUMN ordinal SET NOT NULL,
    ADD CONSTRAINT participants_timebank_id_ordinal_key UNIQUE (timebank_id, ordinal);

CREATE FUNCTION participants_number() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE timebanks SET participants_enrolled = participants_enrolled + 1
     WHERE id = NEW.timebank_id
    RETURNING participants_enrolled - 1 INTO NEW.ordinal;
    RETURN NEW;
END $$;

CREATE TRIGGER participants_number BEFORE INSERT ON participants
    FOR EACH ROW EXECUTE FUNCTION participants_number();

CREATE TABLE report_days (
    timebank_id   bigint   NOT NULL,
    day           date     NOT NULL,
    category_id   bigint   NOT NULL,
    giver_kind    text     NOT NULL,
    receiver_kind text     NOT NULL,
    minutes       bigint   NOT NULL,
    exchanges     bigint   NOT NULL,
    CONSTRAINT report_days_pkey
        PRIMARY KEY (timebank_id, day, category_id, giver_kind, receiver_kind)
);

CREATE TABLE report_day_people (
    timebank_id bigint     NOT NULL,
    day         date       NOT NULL,
    dimension   text       NOT NULL,  -- 'all', 'category:<id>' or 'flow:<giver kind>><receiver kind>'
    chunk       integer    NOT NULL,
    givers      bit(2048)  NOT NULL,
    receivers   bit(2048)  NOT NULL,
    CONSTRAINT report_day_people_pkey PRIMARY KEY (timebank_id, day, dimension, chunk)
);

CREATE TABLE report_firsts (
    timebank_id    bigint NOT NULL,
    participant_id bigint NOT NULL,
    first_day      date   NOT NULL,
    CONSTRAINT report_firsts_pkey PRIMARY KEY (participant_id)
);
CREATE INDEX report_firsts_day_idx ON report_firsts (timebank_id, first_day);

-- Finding what changed after a moment, and whether a person still counts on a day.
CREATE INDEX exchanges_approved_at_idx ON exchanges (timebank_id, approved_at)
    WHERE approved_at IS NOT NULL;
CREATE INDEX exchanges_reversed_at_idx ON exchanges (timebank_id, reversed_at)
    WHERE reversed_at IS NOT NULL;
CREATE INDEX exchanges_counted_giver_idx ON exchanges (giver_id, service_date)
    WHERE approved_at IS NOT NULL AND reversed_at IS NULL;
CREATE INDEX exchanges_counted_receiver_idx ON exchanges (receiver_id, service_date)
    WHERE approved_at IS NOT NULL AND reversed_at IS NULL;

-- Whether participant p still takes part (as giver or receiver) on a day in a dimension, in
-- the exchanges that count now.
CREATE FUNCTION report_still_counts(
    p_timebank_id bigint, p_day date, p_dimension text,
    p_participant_id bigint, p_as_giver boolean)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1
          FROM exchanges e
          JOIN participants g ON g.id = e.giver_id
          JOIN participants r ON r.id = e.receiver_id
         WHERE e.timebank_id = p_timebank_id AND e.service_date = p_day
           AND e.approved_at IS NOT NULL AND e.reversed_at IS NULL
           AND CASE WHEN p_as_giver THEN e.giver_id ELSE e.receiver_id END = p_participant_id
           AND (p_dimension = 'all'
                OR p_dimension = 'category:' || e.category_id
                OR p_dimension = 'flow:' || g.kind || '>' || r.kind))
$$;

-- Move one day-people row: set or recompute the giver's and the receiver's bits.
CREATE FUNCTION report_mark(
    p_timebank_id bigint, p_day date, p_dimension text, p_chunk integer,
    p_giver_id bigint, p_giver_pos integer, p_receiver_id bigint, p_receiver_pos integer,
    p_counting boolean)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    zeros bit(2048) := repeat('0', 2048)::bit(2048);
    g_bit int;
    r_bit int;
BEGIN
    -- Lock (or create) the row first, then decide the bits from what counts now.
    INSERT INTO report_day_people (timebank_id, day, dimension, chunk, givers, receivers)
    VALUES (p_timebank_id, p_day, p_dimension, p_chunk, zeros, zeros)
    ON CONFLICT DO NOTHING;
    PERFORM 1 FROM report_day_people
      WHERE timebank_id = p_timebank_id AND day = p_day AND dimension = p_dimension
        AND chunk = p_chunk
      FOR UPDATE;
    IF p_giver_pos IS NOT NULL THEN
        g_bit := CASE WHEN p_counting THEN 1 ELSE report_still_counts(
            p_timebank_id, p_day, p_dimension, p_giver_id, true)::int END;
    END IF;
    IF p_receiver_pos IS NOT NULL THEN
        r_bit := CASE WHEN p_counting THEN 1 ELSE report_still_counts(
            p_timebank_id, p_day, p_dimension, p_receiver_id, false)::int END;
    END IF;
    UPDATE report_day_people
       SET givers = CASE WHEN p_giver_pos IS NULL THEN givers
                         ELSE set_bit(givers, p_giver_pos, g_bit) END,
           receivers = CASE WHEN p_receiver_pos IS NULL THEN receivers
                            ELSE set_bit(receivers, p_receiver_pos, r_bit) END
     WHERE timebank_id = p_timebank_id AND day = p_day AND dimension = p_dimension
       AND chunk = p_chunk;
END $$;

CREATE FUNCTION report_first_day(p_participant_id bigint) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT min(d) FROM (
        SELECT min(service_date) AS d FROM exchanges
         WHERE giver_id = p_participant_id AND approved_at IS NOT NULL AND reversed_at IS NULL
        UNION ALL
        SELECT min(service_date) FROM exchanges
         WHERE receiver_id = p_participant_id AND approved_at IS NOT NULL AND reversed_at IS NULL
    ) firsts
$$;

-- An exchange starts (p_counting) or stops counting: move every aggregate it is part of.
-- Rows are taken in one order (day, dimension, chunk) so concurrent updates cannot deadlock.
CREATE FUNCTION report_apply(e exchanges, p_counting boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    sign int := CASE WHEN p_counting THEN 1 ELSE -1 END;
    giver participants%ROWTYPE;
    receiver participants%ROWTYPE;
    dimension text;
    g_chunk int;
    r_chunk int;
    person bigint;
    first date;
BEGIN
    SELECT * INTO giver FROM participants WHERE id = e.giver_id;
    SELECT * INTO receiver FROM participants WHERE id = e.receiver_id;
    g_chunk := giver.ordinal / 2048;
    r_chunk := receiver.ordinal / 2048;

    INSERT INTO report_days AS d (timebank_id, day, category_id, giver_kind, receiver_kind,
                                  minutes, exchanges)
    VALUES (e.timebank_id, e.service_date, e.category_id, giver.kind, receiver.kind,
            sign * e.minutes, sign)
    ON CONFLICT (timebank_id, day, category_id, giver_kind, receiver_kind)
    DO UPDATE SET minutes = d.minutes + EXCLUDED.minutes, exchanges = d.exchanges + EXCLUDED.exchanges;

    FOREACH dimension IN ARRAY (
        SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY[
            'all', 'category:' || e.category_id, 'flow:' || giver.kind || '>' || receiver.kind]) x)
    LOOP
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

    FOREACH person IN ARRAY (SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY[giver.id, receiver.id]) x)
    LOOP
        IF p_counting THEN
            INSERT INTO report_firsts AS f (timebank_id, participant_id, first_day)
            VALUES (e.timebank_id, person, e.service_date)
            ON CONFLICT (participant_id) DO UPDATE SET first_day = least(f.first_day, EXCLUDED.first_day);
        ELSE
            first := report_first_day(person);
            IF first IS NULL THEN
                DELETE FROM report_firsts WHERE participant_id = person;
            ELSE
                UPDATE report_firsts SET first_day = first WHERE participant_id = person;
            END IF;
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION exchanges_keep_reports() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.approved_at IS NOT NULL AND OLD.approved_at IS NULL THEN
        PERFORM report_apply(NEW, true);
    END IF;
    IF NEW.reversed_at IS NOT NULL AND OLD.reversed_at IS NULL THEN
        PERFORM report_apply(NEW, false);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER exchanges_keep_reports AFTER UPDATE OF state ON exchanges
    FOR EACH ROW EXECUTE FUNCTION exchanges_keep_reports();

-- What already counts (a database migrated with exchanges in it).
SELECT report_apply(e, true) FROM exchanges e WHERE e.approved_at IS NOT NULL ORDER BY e.id;
SELECT report_apply(e, false) FROM exchanges e WHERE e.reversed_at IS NOT NULL ORDER BY e.id;
