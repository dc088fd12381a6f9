-- Set (p_counting) or recompute one bitmap row of a day (p_month false) or a month. A write
-- that only confirms what the bitmap already says leaves the row alone: approvals read it
-- under a KEY SHARE lock, which a reversal clearing a bit must wait for.
CREATE OR REPLACE FUNCTION report_mark_row(
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
