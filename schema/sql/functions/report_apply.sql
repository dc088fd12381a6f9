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
