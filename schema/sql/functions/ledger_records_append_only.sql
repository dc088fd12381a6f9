-- The records beside the ledger's new kinds (gifts, opening balances, departures) are
-- append-only like the ledger: an UPDATE may only set to null the columns erasure forgets
-- (the trigger's arguments); DELETE and TRUNCATE are refused.
CREATE OR REPLACE FUNCTION ledger_records_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    erasable text[] := TG_ARGV;
BEGIN
    IF TG_OP = 'UPDATE'
       AND to_jsonb(NEW) - erasable = to_jsonb(OLD) - erasable
       AND NOT EXISTS (SELECT FROM unnest(erasable) AS c
                        WHERE to_jsonb(NEW) -> c <> 'null'::jsonb
                          AND to_jsonb(NEW) -> c IS DISTINCT FROM to_jsonb(OLD) -> c) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on % refused: the record is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'TBIN0';
END $$;

CREATE OR REPLACE TRIGGER gifts_append_only BEFORE UPDATE OR DELETE ON gifts
    FOR EACH ROW EXECUTE FUNCTION ledger_records_append_only('note', 'created_by_user_id');

CREATE OR REPLACE TRIGGER gifts_no_truncate BEFORE TRUNCATE ON gifts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_records_append_only();

CREATE OR REPLACE TRIGGER opening_balances_append_only BEFORE UPDATE OR DELETE ON opening_balances
    FOR EACH ROW EXECUTE FUNCTION ledger_records_append_only('set_by_user_id');

CREATE OR REPLACE TRIGGER opening_balances_no_truncate BEFORE TRUNCATE ON opening_balances
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_records_append_only();

CREATE OR REPLACE TRIGGER departures_append_only BEFORE UPDATE OR DELETE ON departures
    FOR EACH ROW EXECUTE FUNCTION ledger_records_append_only('recorded_by_user_id');

CREATE OR REPLACE TRIGGER departures_no_truncate BEFORE TRUNCATE ON departures
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_records_append_only();
