-- What the funder publications of each timebank have shown and withheld, cell by cell
-- (``timebank.reports`` explains cells and their protection). Withholding only grows: the
-- next publication starts from every cell withheld before and never withholds, in place of
-- another, a cell a funder has already been shown. Each publication is protected on its own
-- and a funder may keep them all; without this record the cells withheld could change from
-- one month to the next and two publications read together could give one away.
--
-- A cell is one figure of one period: ``figure`` is what it counts (volume: minutes, hours and
-- exchanges; firsts: first exchanges; new: people who joined; enrolled: people enrolled at the
-- end of the month; category, flow: a category's or a flow's minutes, named by ``label``,
-- the category slug or "giver kind>receiver kind"). No row names a person.
CREATE TABLE published_cells (
    timebank_id     bigint  NOT NULL,
    figure          text    NOT NULL,
    period_kind     text    NOT NULL,
    period_start    date    NOT NULL,
    label           text    NOT NULL DEFAULT '',
    withheld        boolean NOT NULL,
    -- The last month of the publication that first published the cell, and of the one that
    -- first withheld it.
    first_published date    NOT NULL,
    first_withheld  date,
    CONSTRAINT published_cells_pkey
        PRIMARY KEY (timebank_id, figure, period_kind, period_start, label),
    CONSTRAINT published_cells_timebank_fkey FOREIGN KEY (timebank_id) REFERENCES timebanks (id),
    CONSTRAINT published_cells_figure_valid
        CHECK (figure IN ('volume', 'firsts', 'new', 'enrolled', 'category', 'flow')),
    CONSTRAINT published_cells_period_valid
        CHECK (period_kind IN ('month', 'quarter', 'year') AND extract(day FROM period_start) = 1),
    CONSTRAINT published_cells_withheld_when CHECK (withheld = (first_withheld IS NOT NULL))
);

-- Withheld is for good: a cell once withheld is never shown again.
CREATE FUNCTION published_cells_withheld_for_good() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.withheld AND NOT NEW.withheld THEN
        RAISE EXCEPTION 'a withheld cell stays withheld' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER published_cells_withheld_for_good
    BEFORE UPDATE ON published_cells
    FOR EACH ROW EXECUTE FUNCTION published_cells_withheld_for_good();
