-- An account flagged by a reversal (I5's exception): the flag is cleared by the first change
-- that brings the account back within its limits; until then nothing but a new flag (a
-- reversal) may take it further out, refused as accounts_within_floor / _ceiling would.
CREATE OR REPLACE FUNCTION accounts_flagged_not_further_out() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.floor IS NULL OR NEW.balance - NEW.pending_out >= NEW.floor)
       AND (NEW.ceiling IS NULL OR NEW.balance + NEW.pending_in <= NEW.ceiling) THEN
        NEW.flagged_by_reversal_id := NULL;
        RETURN NEW;
    END IF;
    IF NEW.flagged_by_reversal_id IS NULL
       OR NEW.flagged_by_reversal_id IS DISTINCT FROM OLD.flagged_by_reversal_id THEN
        RETURN NEW;  -- unflagged: the CHECKs decide; newly flagged: checked at commit
    END IF;
    IF NEW.floor - (NEW.balance - NEW.pending_out)
       > greatest(OLD.floor - (OLD.balance - OLD.pending_out), 0) THEN
        RAISE EXCEPTION 'account % is flagged below its floor (% minutes) and cannot go further down',
            NEW.id, OLD.floor
            USING ERRCODE = 'check_violation', CONSTRAINT = 'accounts_within_floor';
    END IF;
    IF (NEW.balance + NEW.pending_in) - NEW.ceiling
       > greatest((OLD.balance + OLD.pending_in) - OLD.ceiling, 0) THEN
        RAISE EXCEPTION 'account % is flagged above its ceiling (% minutes) and cannot go further up',
            NEW.id, OLD.ceiling
            USING ERRCODE = 'check_violation', CONSTRAINT = 'accounts_within_ceiling';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER accounts_flagged_not_further_out BEFORE UPDATE ON accounts
    FOR EACH ROW
    WHEN (OLD.flagged_by_reversal_id IS NOT NULL OR NEW.flagged_by_reversal_id IS NOT NULL)
    EXECUTE FUNCTION accounts_flagged_not_further_out();
