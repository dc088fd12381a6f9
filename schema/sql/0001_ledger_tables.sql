-- Ledger core tables. Minutes are integers everywhere; every tenant row carries timebank_id,
-- and every reference between tenant rows goes through (timebank_id, id) so that a row can
-- never point into another timebank.

CREATE TABLE timebanks (
    id                      bigint GENERATED ALWAYS AS IDENTITY,
    slug                    text        NOT NULL,
    name                    text        NOT NULL,
    default_floor_minutes   bigint      NOT NULL DEFAULT -600,
    default_ceiling_minutes bigint      NOT NULL DEFAULT 6000,
    max_exchange_minutes    bigint      NOT NULL DEFAULT 720,
    welcome_grant_minutes   bigint      NOT NULL DEFAULT 0,
    created_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT timebanks_pkey PRIMARY KEY (id),
    CONSTRAINT timebanks_slug_key UNIQUE (slug),
    CONSTRAINT timebanks_slug_format CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$'),
    CONSTRAINT timebanks_name_present CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT timebanks_default_floor_not_positive CHECK (default_floor_minutes <= 0),
    CONSTRAINT timebanks_default_ceiling_not_negative CHECK (default_ceiling_minutes >= 0),
    CONSTRAINT timebanks_max_exchange_positive CHECK (max_exchange_minutes > 0),
    CONSTRAINT timebanks_welcome_grant_within_ceiling
        CHECK (welcome_grant_minutes BETWEEN 0 AND default_ceiling_minutes)
);

CREATE TABLE participants (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id  bigint      NOT NULL,
    kind         text        NOT NULL,
    display_name text        NOT NULL,
    joined_on    date        NOT NULL DEFAULT current_date,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT participants_pkey PRIMARY KEY (id),
    CONSTRAINT participants_timebank_fkey FOREIGN KEY (timebank_id) REFERENCES timebanks (id),
    CONSTRAINT participants_timebank_id_id_key UNIQUE (timebank_id, id),
    CONSTRAINT participants_kind_valid CHECK (kind IN ('member', 'professional', 'organisation')),
    CONSTRAINT participants_display_name_present CHECK (length(btrim(display_name)) BETWEEN 1 AND 200)
);

CREATE TABLE categories (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id bigint NOT NULL,
    slug        text   NOT NULL,
    name        text   NOT NULL,
    CONSTRAINT categories_pkey PRIMARY KEY (id),
    CONSTRAINT categories_timebank_fkey FOREIGN KEY (timebank_id) REFERENCES timebanks (id),
    CONSTRAINT categories_timebank_id_id_key UNIQUE (timebank_id, id),
    CONSTRAINT categories_timebank_id_slug_key UNIQUE (timebank_id, slug),
    CONSTRAINT categories_name_present CHECK (length(btrim(name)) BETWEEN 1 AND 100)
);

-- An account belongs to one participant, or is a system account of its timebank (the community
-- fund that issues welcome hours). System accounts have no limits; participant accounts always do.
CREATE TABLE accounts (
    id             bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id    bigint      NOT NULL,
    participant_id bigint,
    system_role    text,
    balance        bigint      NOT NULL DEFAULT 0,
    pending_in     bigint      NOT NULL DEFAULT 0,
    pending_out    bigint      NOT NULL DEFAULT 0,
    floor          bigint,
    ceiling        bigint,
    version        bigint      NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_pkey PRIMARY KEY (id),
    CONSTRAINT accounts_timebank_fkey FOREIGN KEY (timebank_id) REFERENCES timebanks (id),
    CONSTRAINT accounts_timebank_id_id_key UNIQUE (timebank_id, id),
    CONSTRAINT accounts_participant_fkey FOREIGN KEY (timebank_id, participant_id)
        REFERENCES participants (timebank_id, id),
    CONSTRAINT accounts_participant_id_key UNIQUE (participant_id),
    CONSTRAINT accounts_timebank_id_system_role_key UNIQUE (timebank_id, system_role),
    CONSTRAINT accounts_system_role_valid CHECK (system_role IN ('community_fund')),
    CONSTRAINT accounts_owner_xor_system CHECK ((participant_id IS NULL) <> (system_role IS NULL)),
    CONSTRAINT accounts_participant_has_limits
        CHECK (participant_id IS NULL OR (floor IS NOT NULL AND ceiling IS NOT NULL)),
    CONSTRAINT accounts_limits_around_zero CHECK (floor <= 0 AND ceiling >= 0),
    CONSTRAINT accounts_pending_in_not_negative CHECK (pending_in >= 0),
    CONSTRAINT accounts_pending_out_not_negative CHECK (pending_out >= 0),
    CONSTRAINT accounts_version_not_negative CHECK (version >= 0),
    -- I5: pending reservations count against the limits.
    CONSTRAINT accounts_within_floor CHECK (floor IS NULL OR balance - pending_out >= floor),
    CONSTRAINT accounts_within_ceiling CHECK (ceiling IS NULL OR balance + pending_in <= ceiling)
);

-- A reservation of minutes for a pending exchange (two-phase: later posted or voided).
CREATE TABLE pending_transfers (
    id                bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id       bigint      NOT NULL,
    debit_account_id  bigint      NOT NULL,
    credit_account_id bigint      NOT NULL,
    minutes           bigint      NOT NULL,
    kind              text        NOT NULL,
    state             text        NOT NULL DEFAULT 'pending',
    memo              text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    resolved_at       timestamptz,
    CONSTRAINT pending_transfers_pkey PRIMARY KEY (id),
    CONSTRAINT pending_transfers_timebank_id_id_key UNIQUE (timebank_id, id),
    CONSTRAINT pending_transfers_debit_fkey FOREIGN KEY (timebank_id, debit_account_id)
        REFERENCES accounts (timebank_id, id),
    CONSTRAINT pending_transfers_credit_fkey FOREIGN KEY (timebank_id, credit_account_id)
        REFERENCES accounts (timebank_id, id),
    CONSTRAINT pending_transfers_minutes_positive CHECK (minutes > 0),
    CONSTRAINT pending_transfers_distinct_accounts CHECK (debit_account_id <> credit_account_id),
    CONSTRAINT pending_transfers_kind_valid CHECK (kind IN ('exchange', 'grant', 'adjustment')),
    CONSTRAINT pending_transfers_state_valid CHECK (state IN ('pending', 'posted', 'voided')),
    CONSTRAINT pending_transfers_resolved_when_not_pending
        CHECK ((state = 'pending') = (resolved_at IS NULL))
);
CREATE INDEX pending_transfers_open_debit_idx ON pending_transfers (debit_account_id)
    WHERE state = 'pending';
CREATE INDEX pending_transfers_open_credit_idx ON pending_transfers (credit_account_id)
    WHERE state = 'pending';

-- A posted, immutable movement: one debit, one credit, one amount (I1 by structure).
CREATE TABLE transfers (
    id                   bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id          bigint      NOT NULL,
    debit_account_id     bigint      NOT NULL,
    credit_account_id    bigint      NOT NULL,
    minutes              bigint      NOT NULL,
    kind                 text        NOT NULL,
    pending_transfer_id  bigint,
    reverses_transfer_id bigint,
    memo                 text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transfers_pkey PRIMARY KEY (id),
    CONSTRAINT transfers_timebank_id_id_key UNIQUE (timebank_id, id),
    CONSTRAINT transfers_debit_fkey FOREIGN KEY (timebank_id, debit_account_id)
        REFERENCES accounts (timebank_id, id),
    CONSTRAINT transfers_credit_fkey FOREIGN KEY (timebank_id, credit_account_id)
        REFERENCES accounts (timebank_id, id),
    CONSTRAINT transfers_pending_transfer_fkey FOREIGN KEY (timebank_id, pending_transfer_id)
        REFERENCES pending_transfers (timebank_id, id),
    CONSTRAINT transfers_reverses_transfer_fkey FOREIGN KEY (timebank_id, reverses_transfer_id)
        REFERENCES transfers (timebank_id, id),
    -- I6: a reservation is posted at most once; a transfer is reversed at most once.
    CONSTRAINT transfers_pending_transfer_id_key UNIQUE (pending_transfer_id),
    CONSTRAINT transfers_reverses_transfer_id_key UNIQUE (reverses_transfer_id),
    CONSTRAINT transfers_minutes_positive CHECK (minutes > 0),
    CONSTRAINT transfers_distinct_accounts CHECK (debit_account_id <> credit_account_id),
    CONSTRAINT transfers_kind_valid CHECK (kind IN ('exchange', 'reversal', 'grant', 'adjustment')),
    CONSTRAINT transfers_reversal_link CHECK ((kind = 'reversal') = (reverses_transfer_id IS NOT NULL)),
    CONSTRAINT transfers_reversal_not_itself CHECK (reverses_transfer_id <> id),
    CONSTRAINT transfers_reversal_not_pending CHECK (kind <> 'reversal' OR pending_transfer_id IS NULL)
);

-- One leg of a transfer on one account (I3: balance_after and a gapless account_version).
CREATE TABLE postings (
    id              bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id     bigint      NOT NULL,
    transfer_id     bigint      NOT NULL,
    account_id      bigint      NOT NULL,
    minutes         bigint      NOT NULL,
    balance_after   bigint      NOT NULL,
    account_version bigint      NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT postings_pkey PRIMARY KEY (id),
    CONSTRAINT postings_transfer_fkey FOREIGN KEY (timebank_id, transfer_id)
        REFERENCES transfers (timebank_id, id),
    CONSTRAINT postings_account_fkey FOREIGN KEY (timebank_id, account_id)
        REFERENCES accounts (timebank_id, id),
    CONSTRAINT postings_account_id_account_version_key UNIQUE (account_id, account_version),
    CONSTRAINT postings_transfer_id_account_id_key UNIQUE (transfer_id, account_id),
    CONSTRAINT postings_minutes_not_zero CHECK (minutes <> 0),
    CONSTRAINT postings_account_version_positive CHECK (account_version > 0)
);

-- I8: one key per (timebank, author); the body's hash decides replay or refusal.
CREATE TABLE idempotency_keys (
    timebank_id  bigint      NOT NULL,
    author       text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    result       jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (timebank_id, author, key),
    CONSTRAINT idempotency_keys_timebank_fkey FOREIGN KEY (timebank_id) REFERENCES timebanks (id),
    CONSTRAINT idempotency_keys_key_length CHECK (length(key) BETWEEN 1 AND 255),
    CONSTRAINT idempotency_keys_hash_length CHECK (length(request_hash) = 32)
);
