-- A member's gift from their own account to another member or to the community pot
-- (p_to null), or a coordinator's grant from the pot (p_kind 'grant', p_from null) to a
-- member: posted at once, the giver's floor and the receiver's ceiling holding as for any
-- transfer. The note goes in gifts, never in the ledger. Returns (replayed, the transfer,
-- the gift), as ledger_post_transfer does.
CREATE OR REPLACE FUNCTION ledger_gift(
    p_timebank_id bigint, p_kind text, p_from bigint, p_to bigint, p_minutes bigint,
    p_note text, p_user_id bigint, p_author text, p_key text, p_hash bytea,
    OUT replayed boolean, OUT transfer transfers, OUT gift gifts)
LANGUAGE plpgsql AS $$
DECLARE
    previous jsonb := ledger_claim_key(p_timebank_id, p_author, p_key, p_hash);
BEGIN
    replayed := previous IS NOT NULL;
    IF replayed THEN
        SELECT * INTO gift FROM gifts WHERE id = (previous ->> 'gift_id')::bigint;
        SELECT * INTO transfer FROM transfers WHERE id = gift.transfer_id;
        RETURN;
    END IF;
    IF p_kind = 'gift' AND p_from IS NULL THEN
        RAISE EXCEPTION 'a gift comes from a member''s own account' USING ERRCODE = 'TBVA0';
    ELSIF p_kind = 'grant' AND (p_from IS NOT NULL OR p_to IS NULL) THEN
        RAISE EXCEPTION 'a grant goes from the community pot to a member' USING ERRCODE = 'TBVA0';
    ELSIF p_kind IS NULL OR p_kind NOT IN ('gift', 'grant') THEN
        RAISE EXCEPTION 'a gift is of kind gift or grant, not %', p_kind USING ERRCODE = 'TBVA0';
    END IF;
    IF p_from = p_to THEN
        RAISE EXCEPTION 'nobody gifts to themselves' USING ERRCODE = 'TBVA0';
    END IF;
    transfer := ledger_apply_transfer(p_timebank_id, ledger_open_account(p_timebank_id, p_from),
                                      ledger_open_account(p_timebank_id, p_to), p_minutes,
                                      p_kind, NULL, NULL, NULL);
    -- Stamped when written, not when the transaction began (now()): a report counts a gift
    -- as of that moment, as it counts an exchange as of its approval (clock_timestamp() too),
    -- so a gift whose transaction waited cannot land in a moment already reported.
    INSERT INTO gifts (timebank_id, kind, from_participant_id, to_participant_id, minutes, note,
                       transfer_id, created_by_user_id, created_at)
    VALUES (p_timebank_id, p_kind, p_from, p_to, p_minutes, p_note, transfer.id, p_user_id,
            clock_timestamp())
    RETURNING * INTO gift;
    PERFORM ledger_answer_key(p_timebank_id, p_author, p_key,
                              jsonb_build_object('gift_id', gift.id, 'transfer_id', transfer.id));
END $$;
