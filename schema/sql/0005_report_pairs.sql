-- Two-way ties from an aggregate too: for each pair of participants and year, which months
-- they exchanged in, in each direction (bit i = month i + 1), kept up to date by PostgreSQL.
-- A report whose buckets are whole months reads one small row per pair instead of every
-- exchange.

CREATE TABLE report_pairs (
    timebank_id bigint   NOT NULL,
    year        smallint NOT NULL,
    low_id      bigint   NOT NULL,
    high_id     bigint   NOT NULL,
    forth       integer  NOT NULL DEFAULT 0,  -- low gave to high
    back        integer  NOT NULL DEFAULT 0,  -- high gave to low
    CONSTRAINT report_pairs_pkey PRIMARY KEY (timebank_id, year, low_id, high_id),
    CONSTRAINT report_pairs_ordered CHECK (low_id < high_id)
);

CREATE FUNCTION report_mark_pair(e exchanges, p_counting boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    low bigint := least(e.giver_id, e.receiver_id);
    high bigint := greatest(e.giver_id, e.receiver_id);
    pair_year smallint := extract(year FROM e.service_date)::smallint;
    month_bit integer := 1 << (extract(month FROM e.service_date)::int - 1);
    month_start date := date_trunc('month', e.service_date)::date;
    still boolean;
BEGIN
    IF p_counting THEN
        still := true;
    ELSE
        still := EXISTS (
            SELECT 1 FROM exchanges x
             WHERE x.giver_id = e.giver_id AND x.receiver_id = e.receiver_id
               AND x.service_date >= month_start
               AND x.service_date < (month_start + interval '1 month')::date
               AND x.approved_at IS NOT NULL AND x.reversed_at IS NULL);
    END IF;
    INSERT INTO report_pairs AS p (timebank_id, year, low_id, high_id, forth, back)
    VALUES (e.timebank_id, pair_year, low, high,
            CASE WHEN still AND e.giver_id = low THEN month_bit ELSE 0 END,
            CASE WHEN still AND e.giver_id = high THEN month_bit ELSE 0 END)
    ON CONFLICT (timebank_id, year, low_id, high_id) DO UPDATE SET
        forth = CASE WHEN e.giver_id <> low THEN p.forth
                     WHEN still THEN p.forth | month_bit ELSE p.forth & ~month_bit END,
        back = CASE WHEN e.giver_id <> high THEN p.back
                    WHEN still THEN p.back | month_bit ELSE p.back & ~month_bit END;
END $$;

CREATE OR REPLACE FUNCTION exchanges_keep_reports() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.approved_at IS NOT NULL AND OLD.approved_at IS NULL THEN
        PERFORM report_apply(NEW, true);
        PERFORM report_mark_pair(NEW, true);
    END IF;
    IF NEW.reversed_at IS NOT NULL AND OLD.reversed_at IS NULL THEN
        PERFORM report_apply(NEW, false);
        PERFORM report_mark_pair(NEW, false);
    END IF;
    RETURN NULL;
END $$;

-- What already counts.
SELECT report_mark_pair(e, true) FROM exchanges e WHERE e.approved_at IS NOT NULL ORDER BY e.id;
SELECT report_mark_pair(e, false) FROM exchanges e WHERE e.reversed_at IS NOT NULL ORDER BY e.id;
