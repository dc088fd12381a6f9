-- Set or recompute a party's bits in a day's row, then the month's (always in that order, so
-- concurrent marks cannot deadlock).
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
