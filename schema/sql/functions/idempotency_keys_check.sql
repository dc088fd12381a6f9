-- I8: an idempotency key, once claimed, keeps its request hash and its first result, and is
-- never deleted. TRUNCATE is refused by ledger_refuse_change.
CREATE OR REPLACE FUNCTION idempotency_keys_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'idempotency keys are kept' USING ERRCODE = 'TBIN0';
    END IF;
    IF (NEW.timebank_id, NEW.author, NEW.key, NEW.request_hash, NEW.created_at)
       IS DISTINCT FROM (OLD.timebank_id, OLD.author, OLD.key, OLD.request_hash, OLD.created_at)
       OR (OLD.result IS NOT NULL AND NEW.result IS DISTINCT FROM OLD.result) THEN
        RAISE EXCEPTION 'idempotency key % already answered; it cannot be changed', OLD.key
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER idempotency_keys_check BEFORE UPDATE OR DELETE ON idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION idempotency_keys_check();
