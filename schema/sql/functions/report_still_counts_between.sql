-- Whether participant p still takes part (as giver or receiver) between two days in a
-- dimension, in the exchanges that count now (read by party, through the counted indexes).
CREATE OR REPLACE FUNCTION report_still_counts_between(
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
