-- Month p_month joins (p_joining) or leaves a pair's months of one kind: move the steps of
-- that month and of the pair's next month of that kind, in one statement (rows in key
-- order). Step counts go to this backend's shard. The pair is locked by the caller.
CREATE OR REPLACE FUNCTION report_step_pair(
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
