-- Withheld is for good: a cell once withheld is never shown again.
CREATE OR REPLACE FUNCTION published_cells_withheld_for_good() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.withheld AND NOT NEW.withheld THEN
        RAISE EXCEPTION 'a withheld cell stays withheld' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER published_cells_withheld_for_good
    BEFORE UPDATE ON published_cells
    FOR EACH ROW EXECUTE FUNCTION published_cells_withheld_for_good();
