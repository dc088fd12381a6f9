-- Gifts, grants from the community pot, opening balances and leaving: three new kinds of
-- transfer (gift, opening, leaving; a coordinator's grant is a grant), the records that say
-- who and why apart from the append-only ledger, and closed accounts.

-- A participant who leaves has their account closed, empty: nothing is posted or reserved on
-- it again (any posting or reservation would move its balance or what it has pending). The
-- community pot is never closed.
ALTER TABLE accounts ADD COLUMN closed_at timestamptz;
ALTER TABLE accounts ADD CONSTRAINT accounts_closed_empty
    CHECK (closed_at IS NULL OR (balance = 0 AND pending_in = 0 AND pending_out = 0));
ALTER TABLE accounts ADD CONSTRAINT accounts_closed_only_participants
    CHECK (closed_at IS NULL OR participant_id IS NOT NULL);

ALTER TABLE transfers DROP CONSTRAINT transfers_kind_valid;
ALTER TABLE transfers ADD CONSTRAINT transfers_kind_valid
    CHECK (kind IN ('exchange', 'reversal', 'grant', 'adjustment', 'gift', 'opening', 'leaving'));

-- A member's gift (to another member, or to the pot: to_participant_id null) or a
-- coordinator's grant from the pot (from_participant_id null) to a member, with its note: the
-- transfer it posted carries no words. Erasure forgets the note and who recorded it, never
-- the figures.
CREATE TABLE gifts (
    id                  bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id         bigint      NOT NULL,
    kind                text        NOT NULL,
    from_participant_id bigint,
    to_participant_id   bigint,
    minutes             bigint      NOT NULL,
    note                text,
    transfer_id         bigint      NOT NULL,
    created_by_user_id  bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT gifts_pkey PRIMARY KEY (id),
    CONSTRAINT gifts_timebank_fkey FOREIGN KEY (timebank_id) REFERENCES timebanks (id),
    CONSTRAINT gifts_from_fkey FOREIGN KEY (timebank_id, from_participant_id)
        REFERENCES participants (timebank_id, id),
    CONSTRAINT gifts_to_fkey FOREIGN KEY (timebank_id, to_participant_id)
        REFERENCES participants (timebank_id, id),
    CONSTRAINT gifts_transfer_fkey FOREIGN KEY (timebank_id, transfer_id)
        REFERENCES transfers (timebank_id, id),
    CONSTRAINT gifts_transfer_id_key UNIQUE (transfer_id),
    CONSTRAINT gifts_created_by_fkey FOREIGN KEY (created_by_user_id)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT gifts_kind_valid CHECK (kind IN ('gift', 'grant')),
    CONSTRAINT gifts_parties CHECK (CASE kind
        WHEN 'gift' THEN from_participant_id IS NOT NULL
        ELSE from_participant_id IS NULL AND to_participant_id IS NOT NULL END),
    CONSTRAINT gifts_distinct_parties CHECK (from_participant_id <> to_participant_id),
    CONSTRAINT gifts_minutes_positive CHECK (minutes > 0),
    CONSTRAINT gifts_note_length CHECK (note IS NULL OR length(btrim(note)) BETWEEN 1 AND 500)
);
CREATE INDEX gifts_timebank_idx ON gifts (timebank_id, id);

-- A participant's starting balance, against the pot, set once per account (a timebank moving
-- from another system). Zero is recorded without a transfer.
CREATE TABLE opening_balances (
    account_id     bigint      NOT NULL,
    timebank_id    bigint      NOT NULL,
    minutes        bigint      NOT NULL,
    transfer_id    bigint,
    set_by_user_id bigint,
    set_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT opening_balances_pkey PRIMARY KEY (account_id),
    CONSTRAINT opening_balances_account_fkey FOREIGN KEY (timebank_id, account_id)
        REFERENCES accounts (timebank_id, id),
    CONSTRAINT opening_balances_transfer_fkey FOREIGN KEY (timebank_id, transfer_id)
        REFERENCES transfers (timebank_id, id),
    CONSTRAINT opening_balances_transfer_id_key UNIQUE (transfer_id),
    CONSTRAINT opening_balances_set_by_fkey FOREIGN KEY (set_by_user_id)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT opening_balances_transfer_when_not_zero CHECK ((minutes = 0) = (transfer_id IS NULL))
);

-- A participant leaving: the balance their account held when it closed, where it went (a
-- member, or the pot: balance_to_participant_id null; a debt always goes to the pot) and the
-- transfer that moved it (none for a balance of zero).
CREATE TABLE departures (
    account_id                bigint      NOT NULL,
    timebank_id               bigint      NOT NULL,
    participant_id            bigint      NOT NULL,
    balance_to_participant_id bigint,
    balance_minutes           bigint      NOT NULL,
    transfer_id               bigint,
    recorded_by_user_id       bigint,
    left_at                   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT departures_pkey PRIMARY KEY (account_id),
    CONSTRAINT departures_account_fkey FOREIGN KEY (timebank_id, account_id)
        REFERENCES accounts (timebank_id, id),
    CONSTRAINT departures_participant_fkey FOREIGN KEY (timebank_id, participant_id)
        REFERENCES participants (timebank_id, id),
    CONSTRAINT departures_balance_to_fkey FOREIGN KEY (timebank_id, balance_to_participant_id)
        REFERENCES participants (timebank_id, id),
    CONSTRAINT departures_transfer_fkey FOREIGN KEY (timebank_id, transfer_id)
        REFERENCES transfers (timebank_id, id),
    CONSTRAINT departures_transfer_id_key UNIQUE (transfer_id),
    CONSTRAINT departures_recorded_by_fkey FOREIGN KEY (recorded_by_user_id)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT departures_balance_to_another CHECK (balance_to_participant_id <> participant_id),
    CONSTRAINT departures_debt_to_the_pot
        CHECK (balance_minutes >= 0 OR balance_to_participant_id IS NULL),
    CONSTRAINT departures_transfer_when_not_zero
        CHECK ((balance_minutes = 0) = (transfer_id IS NULL))
);
