-- Take a reservation out of 'pending' (locking it), or say why it cannot be.
CREATE OR REPLACE FUNCTION ledger_resolve_pending(
    p_timebank_id bigint, p_pending_id bigint, p_state text)
RETURNS pending_transfers
LANGUAGE plpgsql AS $$
DECLARE
    p pending_transfers%ROWTYPE;
BEGIN
    UPDATE pending_transfers SET state = p_state, resolved_at = now()
     WHERE id = p_pending_id AND timebank_id = p_timebank_id AND state = 'pending'
    RETURNING * INTO p;
    IF NOT FOUND THEN
        SELECT * INTO p FROM pending_transfers WHERE id = p_pending_id AND timebank_id = p_timebank_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'reservation % not found in this timebank', p_pending_id USING ERRCODE = 'TBNF0';
        END IF;
        RAISE EXCEPTION 'reservation % is already %', p_pending_id, p.state USING ERRCODE = 'TBST0';
    END IF;
    RETURN p;
END $$;
