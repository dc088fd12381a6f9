-- Exchanges brought in from another system's history carry an import key: a hash of the
-- row's normalised fields and of its occurrence among identical rows of its file. One key per
-- timebank, so importing the same file again finds what is already there and skips it.
ALTER TABLE exchanges
    ADD COLUMN import_key bytea,
    ADD CONSTRAINT exchanges_import_key_size
        CHECK (import_key IS NULL OR octet_length(import_key) = 32);

CREATE UNIQUE INDEX exchanges_timebank_import_key_key
    ON exchanges (timebank_id, import_key) WHERE import_key IS NOT NULL;
