-- The contribution report counts gifts, grants and group sessions (timebank/reports/__init__.py,
-- "Group sessions, gifts, the pot, leaving and opening balances"). They are read straight from
-- their rows: gifts only ever add (never reversed) and legs are few beside all exchanges, so
-- these indexes, rather than aggregates of their own, keep a report's reads to its period.

-- Gifts and grants by the moment they were made (their day is the UTC date of created_at).
CREATE INDEX gifts_timebank_created_idx ON gifts (timebank_id, created_at);

-- The legs of group sessions by service date.
CREATE INDEX exchanges_group_legs_idx ON exchanges (timebank_id, service_date)
    WHERE group_id IS NOT NULL;

-- Funder publications gain the cells of the new figures: minutes gifted between members,
-- gifted to the pot, granted from the pot, and minutes in group sessions.
ALTER TABLE published_cells DROP CONSTRAINT published_cells_figure_valid;
ALTER TABLE published_cells ADD CONSTRAINT published_cells_figure_valid
    CHECK (figure IN ('volume', 'firsts', 'new', 'enrolled', 'category', 'flow',
                      'gifted', 'gifted_to_pot', 'granted', 'sessions'));
