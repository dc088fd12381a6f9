-- An exchange starts (p_counting) or stops counting: move its pair's months and, where a month
-- joins or leaves the pair's months of a kind, the tie steps (report_step_pair).
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
