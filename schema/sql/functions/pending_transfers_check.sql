-- A reservation starts pending, within its timebank's exchange maximum, is never altered or
-- deleted, and only moves from pending to posted or voided.
CREATE OR REPLACE FUNCTION pending_transfers_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.state <> 'pending' THEN
            RAISE EXCEPTION 'a reservation starts pending' USING ERRCODE = 'TBIN0';
        END IF;
        IF NEW.kind = 'exchange' THEN
            PERFORM ledger_check_exchange_maximum(NEW.timebank_id, NEW.minutes);
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'reservations are kept; void one instead of deleting it' USING ERRCODE = 'TBIN0';
    END IF;
    IF (NEW.id, NEW.timebank_id, NEW.debit_account_id, NEW.credit_account_id, NEW.minutes,
        NEW.kind, NEW.memo, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.timebank_id, OLD.debit_account_id, OLD.credit_account_id, OLD.minutes,
        OLD.kind, OLD.memo, OLD.created_at) THEN
        RAISE EXCEPTION 'a reservation cannot be altered, only posted or voided' USING ERRCODE = 'TBIN0';
    END IF;
    IF OLD.state <> 'pending' OR NEW.state NOT IN ('posted', 'voided') THEN
        RAISE EXCEPTION 'reservation % is % and cannot become %', OLD.id, OLD.state, NEW.state
            USING ERRCODE = 'TBST0';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER pending_transfers_check
    BEFORE INSERT OR UPDATE OR DELETE ON pending_transfers
    FOR EACH ROW EXECUTE FUNCTION pending_transfers_check();
