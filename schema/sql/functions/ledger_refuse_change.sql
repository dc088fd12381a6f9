-- I7: posted history is append-only. Refuses UPDATE, DELETE or TRUNCATE on the tables whose
-- rows are history (the triggers below).
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % refused: posted history is append-only; post a reversal instead',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'TBIN0';
END $$;

CREATE OR REPLACE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

CREATE OR REPLACE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

CREATE OR REPLACE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

CREATE OR REPLACE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

CREATE OR REPLACE TRIGGER pending_transfers_no_truncate BEFORE TRUNCATE ON pending_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

CREATE OR REPLACE TRIGGER idempotency_keys_no_truncate BEFORE TRUNCATE ON idempotency_keys
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

CREATE OR REPLACE TRIGGER exchange_decisions_append_only
    BEFORE UPDATE OR DELETE ON exchange_decisions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

CREATE OR REPLACE TRIGGER account_limit_changes_no_truncate BEFORE TRUNCATE ON account_limit_changes
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
