-- I2 and I6 on transfers: within the timebank's maximum; a posted reservation matches the
-- reservation; a reversal mirrors the transfer it reverses and is never itself reversed.
CREATE OR REPLACE FUNCTION transfers_check_links() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p pending_transfers%ROWTYPE;
    original transfers%ROWTYPE;
BEGIN
    IF NEW.pending_transfer_id IS NOT NULL THEN
        SELECT * INTO p FROM pending_transfers WHERE id = NEW.pending_transfer_id;
        IF NOT FOUND OR p.state <> 'posted' OR p.debit_account_id <> NEW.debit_account_id
           OR p.credit_account_id <> NEW.credit_account_id OR p.minutes <> NEW.minutes
           OR p.kind <> NEW.kind THEN
            RAISE EXCEPTION 'transfer does not match reservation % (or the reservation is not being posted)', p.id
                USING ERRCODE = 'TBIN0';
        END IF;
    ELSIF NEW.kind = 'exchange' THEN
        -- A reserved exchange was checked when reserved: its approval never fails on policy.
        PERFORM ledger_check_exchange_maximum(NEW.timebank_id, NEW.minutes);
    END IF;
    IF NEW.reverses_transfer_id IS NOT NULL THEN
        SELECT * INTO original FROM transfers WHERE id = NEW.reverses_transfer_id;
        IF NOT FOUND OR NEW.reverses_transfer_id = NEW.id THEN
            RAISE EXCEPTION 'a reversal must reverse an existing, earlier transfer'
                USING ERRCODE = 'TBIN0';
        END IF;
        IF original.kind = 'reversal' THEN
            RAISE EXCEPTION 'transfer % is a reversal and cannot itself be reversed', original.id
                USING ERRCODE = 'TBST0';
        END IF;
        IF original.debit_account_id <> NEW.credit_account_id
           OR original.credit_account_id <> NEW.debit_account_id
           OR original.minutes <> NEW.minutes THEN
            RAISE EXCEPTION 'a reversal must move the same minutes back between the same accounts'
                USING ERRCODE = 'TBIN0';
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER transfers_check_links BEFORE INSERT ON transfers
    FOR EACH ROW EXECUTE FUNCTION transfers_check_links();
