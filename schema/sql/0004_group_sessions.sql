-- Group sessions: one record of many exchanges (its legs) between a host and the people who
-- came, logged and decided together; and how each timebank shows a member their balance.

-- A group session shares the exchanges' ids, so an id names either an exchange or a session,
-- never both. The host gives to every attendee (host_side 'giver': a class, a lunch club) or
-- receives from each (host_side 'receiver': volunteers at an organisation's event). Each leg
-- is an exchange row (exchanges.group_id) between the host and one attendee, with its own
-- minutes, reservation and transfer; what the session adds up to is kept here once, so
-- PostgreSQL can hold its legs to it (exchange_groups_check).
CREATE TABLE exchange_groups (
    id                bigint      NOT NULL DEFAULT nextval(pg_get_serial_sequence('exchanges', 'id')),
    timebank_id       bigint      NOT NULL,
    host_id           bigint      NOT NULL,
    host_side         text        NOT NULL,
    legs              integer     NOT NULL,
    minutes           bigint      NOT NULL,
    service_date      date        NOT NULL,
    category_id       bigint      NOT NULL,
    description       text,
    logged_by_user_id bigint,
    on_behalf         boolean     NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT exchange_groups_pkey PRIMARY KEY (id),
    CONSTRAINT exchange_groups_timebank_id_id_key UNIQUE (timebank_id, id),
    CONSTRAINT exchange_groups_host_fkey FOREIGN KEY (timebank_id, host_id)
        REFERENCES participants (timebank_id, id),
    CONSTRAINT exchange_groups_category_fkey FOREIGN KEY (timebank_id, category_id)
        REFERENCES categories (timebank_id, id),
    CONSTRAINT exchange_groups_logged_by_fkey FOREIGN KEY (logged_by_user_id)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT exchange_groups_host_side_valid CHECK (host_side IN ('giver', 'receiver')),
    CONSTRAINT exchange_groups_legs_range CHECK (legs BETWEEN 1 AND 200),
    CONSTRAINT exchange_groups_minutes_positive CHECK (minutes >= legs),
    CONSTRAINT exchange_groups_description_length CHECK (length(description) <= 2000)
);
CREATE INDEX exchange_groups_timebank_idx ON exchange_groups (timebank_id, id);
CREATE INDEX exchange_groups_host_idx ON exchange_groups (host_id, id);

ALTER TABLE exchanges ADD COLUMN group_id bigint;
ALTER TABLE exchanges ADD CONSTRAINT exchanges_group_fkey FOREIGN KEY (timebank_id, group_id)
    REFERENCES exchange_groups (timebank_id, id);
CREATE INDEX exchanges_group_idx ON exchanges (group_id, id) WHERE group_id IS NOT NULL;

-- How a member sees their own balance: the net figure ('balance'), or the hours they have
-- given and received without a net figure ('given_received': a minus sign reads as debt and
-- keeps people from asking for help). Coordinators always see the balance.
ALTER TABLE timebanks ADD COLUMN balance_display text NOT NULL DEFAULT 'balance';
ALTER TABLE timebanks ADD CONSTRAINT timebanks_balance_display_valid
    CHECK (balance_display IN ('balance', 'given_received'));
