-- Aggregates for the reports, and what funder publications have shown.
--
-- The aggregates hold the exchanges that count now (approved, not reversed). An approval or
-- reversal only queues its exchange (report_queue, by exchanges_keep_reports and
-- exchanges_keep_reports_logged); report_apply_queued, called by every service process about
-- once a second, moves the aggregates for a whole batch at once. Reports stay exact at every
-- moment: they read the aggregates and the queue in one snapshot, the queue's exchanges as
-- corrections (timebank/reports/repository.py); a report "as of" an earlier moment recomputes,
-- from the exchanges themselves, just the days changed since then.
--
-- People are counted with bitmaps: each participant has an ordinal in its timebank, and a
-- day's (or a month's) givers and receivers are bit strings of 2048 ordinals per chunk, so
-- "distinct people over any set of days" is a bitwise OR and a bit count.

-- Minutes and exchanges per day, category and flow (giver kind, receiver kind).
CREATE TABLE report_days (
    timebank_id   bigint   NOT NULL,
    day           date     NOT NULL,
    category_id   bigint   NOT NULL,
    giver_kind    text     NOT NULL,
    receiver_kind text     NOT NULL,
    minutes       bigint   NOT NULL,
    exchanges     bigint   NOT NULL,
    CONSTRAINT report_days_pkey
        PRIMARY KEY (timebank_id, day, category_id, giver_kind, receiver_kind)
);

CREATE TABLE report_day_people (
    timebank_id bigint     NOT NULL,
    day         date       NOT NULL,
    dimension   text       NOT NULL,  -- 'all', 'category:<id>' or 'flow:<giver kind>><receiver kind>'
    chunk       integer    NOT NULL,
    givers      bit(2048)  NOT NULL,
    receivers   bit(2048)  NOT NULL,
    CONSTRAINT report_day_people_pkey PRIMARY KEY (timebank_id, day, dimension, chunk)
);

-- Each participant's first day with an exchange that counts.
CREATE TABLE report_firsts (
    timebank_id    bigint NOT NULL,
    participant_id bigint NOT NULL,
    first_day      date   NOT NULL,
    CONSTRAINT report_firsts_pkey PRIMARY KEY (participant_id)
);
CREATE INDEX report_firsts_day_idx ON report_firsts (timebank_id, first_day);

-- The month's givers and receivers as bitmaps, as report_day_people holds them per day:
-- distinct people over whole months = OR of a few rows + bit count.
CREATE TABLE report_month_people (
    timebank_id bigint     NOT NULL,
    month       date       NOT NULL,  -- first day of the month
    dimension   text       NOT NULL,
    chunk       integer    NOT NULL,
    givers      bit(2048)  NOT NULL,
    receivers   bit(2048)  NOT NULL,
    CONSTRAINT report_month_people_pkey PRIMARY KEY (timebank_id, month, dimension, chunk),
    CONSTRAINT report_month_people_first_day CHECK (extract(day FROM month) = 1)
);

-- Ties by steps. For each pair of participants, report_pair_months holds the months they
-- exchanged in and how often in each direction. A pair is a tie in months [s, e] when one of
-- its months falls in there; counting each pair at its first month in [s, e] only, and noting
-- that month m is a pair's first in [s, e] exactly when the pair's previous month before m is
-- earlier than s:
--     ties(s, e) = number of (pair, month m) with s <= m <= e and previous(m) < s.
-- report_tie_steps keeps those numbers per (month, previous month), so a year of ties is a sum
-- over a few hundred rows. The same is kept for the months each pair exchanged in one
-- direction ("forth": the lower id gave) and in the other ("back"); a pair is a two-way tie in
-- [s, e] when it has both directions there, so two-way = forth + back - any. Step counts may
-- be spread over shards (report_step_pair writes to its backend's); a report sums the shards.
CREATE TABLE report_pair_months (
    timebank_id bigint  NOT NULL,
    low_id      bigint  NOT NULL,
    high_id     bigint  NOT NULL,
    month       date    NOT NULL,  -- first day of the month
    forth       integer NOT NULL,  -- exchanges counting now in which low gave to high
    back        integer NOT NULL,  -- ... and high to low
    CONSTRAINT report_pair_months_pkey PRIMARY KEY (timebank_id, low_id, high_id, month),
    CONSTRAINT report_pair_months_ordered CHECK (low_id < high_id),
    CONSTRAINT report_pair_months_counts CHECK (forth >= 0 AND back >= 0)
);

CREATE TABLE report_tie_steps (
    timebank_id bigint   NOT NULL,
    kind        text     NOT NULL,  -- 'any', 'forth' or 'back': which months of each pair
    month       date     NOT NULL,
    previous    date     NOT NULL,  -- the pair's previous such month; '-infinity' if none
    shard       smallint NOT NULL,
    pairs       integer  NOT NULL,
    CONSTRAINT report_tie_steps_pkey PRIMARY KEY (timebank_id, kind, month, previous, shard),
    CONSTRAINT report_tie_steps_kind CHECK (kind IN ('any', 'forth', 'back')),
    CONSTRAINT report_tie_steps_order CHECK (previous < month)
);

-- Exchanges that started or stopped counting, not yet in the aggregates. An approval is
-- queued by a transaction that committed before its reversal could start, so it always has
-- the smaller id.
CREATE TABLE report_queue (
    id          bigserial PRIMARY KEY,
    exchange_id bigint  NOT NULL,  -- no foreign key: exchanges are never deleted
    counting    boolean NOT NULL   -- true: it starts counting (approved); false: it stops
);
CREATE INDEX report_queue_exchange_idx ON report_queue (exchange_id);

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
