-- Exchanges of time and their decision history. An exchange's reservation and its transfers
-- live in the ledger; the links below make "posted at most once" a unique constraint (I6).

-- approved_at and reversed_at say when an exchange came to count and when it stopped; reports
-- count an exchange "as of" a moment T when it was approved by T and not reversed by T, so
-- asking again with the same T gives the same figures whatever happens later. PostgreSQL
-- stamps both moments itself (exchanges_stamp_counting).
CREATE TABLE exchanges (
    id                   bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id          bigint      NOT NULL,
    giver_id             bigint      NOT NULL,
    receiver_id          bigint      NOT NULL,
    minutes              bigint      NOT NULL,
    service_date         date        NOT NULL,
    category_id          bigint      NOT NULL,
    description          text        NOT NULL DEFAULT '',
    state                text        NOT NULL DEFAULT 'logged',
    logged_by_user_id    bigint,
    logged_for           text        NOT NULL,
    on_behalf            boolean     NOT NULL DEFAULT false,
    review_reason        text,
    pending_transfer_id  bigint,
    transfer_id          bigint,
    reversal_transfer_id bigint,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    approved_at          timestamptz,
    reversed_at          timestamptz,
    CONSTRAINT exchanges_pkey PRIMARY KEY (id),
    CONSTRAINT exchanges_timebank_id_id_key UNIQUE (timebank_id, id),
    CONSTRAINT exchanges_giver_fkey FOREIGN KEY (timebank_id, giver_id) REFERENCES participants (timebank_id, id),
    CONSTRAINT exchanges_receiver_fkey FOREIGN KEY (timebank_id, receiver_id) REFERENCES participants (timebank_id, id),
    CONSTRAINT exchanges_category_fkey FOREIGN KEY (timebank_id, category_id) REFERENCES categories (timebank_id, id),
    CONSTRAINT exchanges_logged_by_fkey FOREIGN KEY (logged_by_user_id) REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT exchanges_pending_transfer_fkey FOREIGN KEY (timebank_id, pending_transfer_id)
        REFERENCES pending_transfers (timebank_id, id),
    CONSTRAINT exchanges_transfer_fkey FOREIGN KEY (timebank_id, transfer_id) REFERENCES transfers (timebank_id, id),
    CONSTRAINT exchanges_reversal_transfer_fkey FOREIGN KEY (timebank_id, reversal_transfer_id)
        REFERENCES transfers (timebank_id, id),
    CONSTRAINT exchanges_pending_transfer_id_key UNIQUE (pending_transfer_id),
    CONSTRAINT exchanges_transfer_id_key UNIQUE (transfer_id),
    CONSTRAINT exchanges_reversal_transfer_id_key UNIQUE (reversal_transfer_id),
    CONSTRAINT exchanges_minutes_positive CHECK (minutes > 0),
    CONSTRAINT exchanges_distinct_parties CHECK (giver_id <> receiver_id),
    CONSTRAINT exchanges_description_length CHECK (length(description) <= 2000),
    CONSTRAINT exchanges_state_valid CHECK (state IN
        ('logged', 'awaiting_approval', 'disputed', 'approved', 'rejected', 'cancelled', 'reversed')),
    CONSTRAINT exchanges_logged_for_valid CHECK (logged_for IN ('giver', 'receiver')),
    -- The ledger links follow the state: posted exactly when approved or reversed.
    CONSTRAINT exchanges_posted_when_approved
        CHECK ((state IN ('approved', 'reversed')) = (transfer_id IS NOT NULL)),
    CONSTRAINT exchanges_reversed_when_reversal
        CHECK ((state = 'reversed') = (reversal_transfer_id IS NOT NULL)),
    CONSTRAINT exchanges_approved_at_when_posted
        CHECK ((approved_at IS NOT NULL) = (state IN ('approved', 'reversed'))),
    CONSTRAINT exchanges_reversed_at_when_reversed
        CHECK ((reversed_at IS NOT NULL) = (state = 'reversed')),
    CONSTRAINT exchanges_reversed_after_approved CHECK (reversed_at >= approved_at)
);
CREATE INDEX exchanges_timebank_state_idx ON exchanges (timebank_id, state, id);
CREATE INDEX exchanges_giver_idx ON exchanges (giver_id, id);
CREATE INDEX exchanges_receiver_idx ON exchanges (receiver_id, id);
CREATE INDEX exchanges_service_date_idx ON exchanges (timebank_id, service_date);
-- Reports read counted exchanges of one timebank by service date, find what changed after a
-- moment, and ask whether a person still counts on a day.
CREATE INDEX exchanges_counted_idx ON exchanges (timebank_id, service_date)
    INCLUDE (giver_id, receiver_id, minutes, category_id, approved_at, reversed_at)
    WHERE approved_at IS NOT NULL;
CREATE INDEX exchanges_approved_at_idx ON exchanges (timebank_id, approved_at)
    WHERE approved_at IS NOT NULL;
CREATE INDEX exchanges_reversed_at_idx ON exchanges (timebank_id, reversed_at)
    WHERE reversed_at IS NOT NULL;
CREATE INDEX exchanges_counted_giver_idx ON exchanges (giver_id, service_date)
    WHERE approved_at IS NOT NULL AND reversed_at IS NULL;
CREATE INDEX exchanges_counted_receiver_idx ON exchanges (receiver_id, service_date)
    WHERE approved_at IS NOT NULL AND reversed_at IS NULL;

-- Every decision taken on an exchange: who, when, on whose behalf, why. Append-only
-- (ledger_refuse_change).
CREATE TABLE exchange_decisions (
    id             bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id    bigint      NOT NULL,
    exchange_id    bigint      NOT NULL,
    action         text        NOT NULL,
    from_state     text,
    to_state       text        NOT NULL,
    actor_user_id  bigint,
    actor_role     text        NOT NULL,
    on_behalf_of   bigint,
    reason         text,
    decided_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT exchange_decisions_pkey PRIMARY KEY (id),
    CONSTRAINT exchange_decisions_exchange_fkey FOREIGN KEY (timebank_id, exchange_id)
        REFERENCES exchanges (timebank_id, id),
    CONSTRAINT exchange_decisions_actor_fkey FOREIGN KEY (actor_user_id) REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT exchange_decisions_on_behalf_fkey FOREIGN KEY (timebank_id, on_behalf_of)
        REFERENCES participants (timebank_id, id),
    CONSTRAINT exchange_decisions_action_valid CHECK (action IN
        ('log', 'confirm', 'dispute', 'approve', 'reject', 'cancel', 'reverse', 'auto_approve')),
    CONSTRAINT exchange_decisions_actor_role_valid CHECK (actor_role IN
        ('member', 'coordinator', 'admin', 'policy')),
    CONSTRAINT exchange_decisions_reason_length CHECK (length(reason) <= 2000)
);
CREATE INDEX exchange_decisions_exchange_idx ON exchange_decisions (exchange_id, id);
