-- I2: an exchange is within its timebank's maximum (refused as an invalid request).
CREATE OR REPLACE FUNCTION ledger_check_exchange_maximum(p_timebank_id bigint, p_minutes bigint)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    maximum bigint;
BEGIN
    SELECT max_exchange_minutes INTO maximum FROM timebanks WHERE id = p_timebank_id;
    IF p_minutes > maximum THEN
        RAISE EXCEPTION 'an exchange of % minutes is above this timebank''s maximum of % minutes',
            p_minutes, maximum
            USING ERRCODE = 'TBVA0';
    END IF;
END $$;
