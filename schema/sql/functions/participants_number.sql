-- Gives each new participant the next ordinal of its timebank (its bit in the reports'
-- bitmaps).
CREATE OR REPLACE FUNCTION participants_number() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE timebanks SET participants_enrolled = participants_enrolled + 1
     WHERE id = NEW.timebank_id
    RETURNING participants_enrolled - 1 INTO NEW.ordinal;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER participants_number BEFORE INSERT ON participants
    FOR EACH ROW EXECUTE FUNCTION participants_number();
