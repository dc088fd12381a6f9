-- The ledger: accounts, reservations, transfers, postings, idempotency keys, and the record of
-- limit changes. The invariants I1-I8 are held by the constraints here and by the trigger
-- functions in schema/sql/functions/.

-- An account belongs to one participant, or is a system account of its timebank (the community
-- fund that issues welcome hours). System accounts have no limits; participant accounts always
-- do. An account a reversal took outside its limits carries that reversal's id
-- (flagged_by_reversal_id) while it stays outside them; see accounts_flagged_not_further_out.
CREATE TABLE accounts (
    id                     bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id            bigint      NOT NULL,
    participant_id         bigint,
    system_role            text,
    balance                bigint      NOT NULL DEFAULT 0,
    pending_in             bigint      NOT NULL DEFAULT 0,
    pending_out            bigint      NOT NULL DEFAULT 0,
    floor                  bigint,
    ceiling                bigint,
    version                bigint      NOT NULL DEFAULT 0,
    created_at             timestamptz NOT NULL DEFAULT now(),
    flagged_by_reversal_id bigint,
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
    -- I5: pending reservations count against the limits, unless a reversal flagged the account.
    CONSTRAINT accounts_within_floor
        CHECK (floor IS NULL OR flagged_by_reversal_id IS NOT NULL OR balance - pending_out >= floor),
    CONSTRAINT accounts_within_ceiling
        CHECK (ceiling IS NULL OR flagged_by_reversal_id IS NOT NULL OR balance + pending_in <= ceiling),
    CONSTRAINT accounts_flagged_only_outside
        CHECK (flagged_by_reversal_id IS NULL OR coalesce(
            balance - pending_out < floor OR balance + pending_in > ceiling, false))
);
CREATE INDEX accounts_flagged_idx ON accounts (timebank_id) WHERE flagged_by_reversal_id IS NOT NULL;

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

-- Deferred: a reversal moves the account before its transfer row is written.
ALTER TABLE accounts ADD CONSTRAINT accounts_flagged_by_reversal_fkey
    FOREIGN KEY (timebank_id, flagged_by_reversal_id) REFERENCES transfers (timebank_id, id)
    DEFERRABLE INITIALLY DEFERRED;

-- One leg of a transfer on one account (I3: balance_after and a gapless account_version).
-- A posting's transfer and account are checked by postings_check_leg, which reads both rows
-- anyway, rather than by foreign keys that would each run a query and lock a row: the
-- transfer's own foreign keys hold its accounts to its timebank, transfers are never updated
-- or deleted (I7) and accounts with postings are never deleted.
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
-- Idempotency keys of requests that create a timebank are looked up without a timebank.
CREATE INDEX idempotency_keys_author_key_idx ON idempotency_keys (author, key);

-- One account's limits, changed by a coordinator (ledger_set_limits), on the record: who,
-- when, from, to and why. Append-only; erasure only forgets who made a change and the words of
-- its reason, never its figures.
CREATE TABLE account_limit_changes (
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id        bigint      NOT NULL,
    account_id         bigint      NOT NULL,
    changed_by_user_id bigint,
    changed_at         timestamptz NOT NULL DEFAULT now(),
    floor_before       bigint      NOT NULL,
    ceiling_before     bigint      NOT NULL,
    floor_after        bigint      NOT NULL,
    ceiling_after      bigint      NOT NULL,
    reason             text,  -- null once erased: personal words never outlive a request to erase
    CONSTRAINT account_limit_changes_pkey PRIMARY KEY (id),
    CONSTRAINT account_limit_changes_account_fkey FOREIGN KEY (timebank_id, account_id)
        REFERENCES accounts (timebank_id, id),
    CONSTRAINT account_limit_changes_changed_by_fkey FOREIGN KEY (changed_by_user_id)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT account_limit_changes_limits_around_zero CHECK (floor_after <= 0 AND ceiling_after >= 0),
    CONSTRAINT account_limit_changes_reason_length
        CHECK (reason IS NULL OR length(btrim(reason)) BETWEEN 1 AND 500)
);
CREATE INDEX account_limit_changes_account_idx ON account_limit_changes (account_id, id);
