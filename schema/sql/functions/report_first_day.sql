-- A participant's first day with an exchange that counts now (NULL if none).
CREATE OR REPLACE FUNCTION report_first_day(p_participant_id bigint) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT min(d) FROM (
        SELECT min(service_date) AS d FROM exchanges
         WHERE giver_id = p_participant_id AND approved_at IS NOT NULL AND reversed_at IS NULL
        UNION ALL
        SELECT min(service_date) FROM exchanges
         WHERE receiver_id = p_participant_id AND approved_at IS NOT NULL AND reversed_at IS NULL
    ) firsts
$$;
