-- An exchange that starts counting (approved) or stops (reversed) by an update is queued for
-- the report aggregates (report_apply_queued).
CREATE OR REPLACE FUNCTION exchanges_keep_reports() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.approved_at IS NOT NULL AND OLD.approved_at IS NULL THEN
        INSERT INTO report_queue (exchange_id, counting) VALUES (NEW.id, true);
    END IF;
    IF NEW.reversed_at IS NOT NULL AND OLD.reversed_at IS NULL THEN
        INSERT INTO report_queue (exchange_id, counting) VALUES (NEW.id, false);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER exchanges_keep_reports AFTER UPDATE OF state ON exchanges
    FOR EACH ROW EXECUTE FUNCTION exchanges_keep_reports();
