-- An exchange approved by the statement that logs it is queued for the report aggregates, as
-- exchanges_keep_reports queues one approved later.
CREATE OR REPLACE FUNCTION exchanges_keep_reports_logged() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_queue (exchange_id, counting) VALUES (NEW.id, true);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER exchanges_keep_reports_logged AFTER INSERT ON exchanges
    FOR EACH ROW WHEN (NEW.approved_at IS NOT NULL)
    EXECUTE FUNCTION exchanges_keep_reports_logged();
