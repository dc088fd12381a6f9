-- A key is claimed and answered in the same transaction: by commit, it holds its result.
CREATE OR REPLACE FUNCTION idempotency_keys_check_answered() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM idempotency_keys
                WHERE timebank_id = NEW.timebank_id AND author = NEW.author AND key = NEW.key
                  AND result IS NULL) THEN
        RAISE EXCEPTION 'idempotency key % was claimed but never answered', NEW.key
            USING ERRCODE = 'TBIN0';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS idempotency_keys_answered ON idempotency_keys;
CREATE CONSTRAINT TRIGGER idempotency_keys_answered AFTER INSERT ON idempotency_keys
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION idempotency_keys_check_answered();
