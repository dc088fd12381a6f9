-- The account of participant p_participant_id of the timebank, or of its community pot
-- (p_participant_id null): refused when there is none (TBNF0) or when it is closed, its
-- participant having left (TBST0). It is not locked: the caller locks it with the others.
CREATE OR REPLACE FUNCTION ledger_open_account(p_timebank_id bigint, p_participant_id bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    found_id bigint;
    closed timestamptz;
BEGIN
    IF p_participant_id IS NULL THEN
        SELECT id, closed_at INTO found_id, closed FROM accounts
         WHERE timebank_id = p_timebank_id AND system_role = 'community_fund';
    ELSE
        SELECT id, closed_at INTO found_id, closed FROM accounts
         WHERE timebank_id = p_timebank_id AND participant_id = p_participant_id;
    END IF;
    IF found_id IS NULL THEN
        RAISE EXCEPTION 'participant % has no account in this timebank',
            coalesce(p_participant_id::text, '(the community pot)') USING ERRCODE = 'TBNF0';
    END IF;
    IF closed IS NOT NULL THEN
        RAISE EXCEPTION 'participant % has left: their account is closed', p_participant_id
            USING ERRCODE = 'TBST0';
    END IF;
    RETURN found_id;
END $$;
