-- People, roles and sign-in, kept apart from the ledger so that a person can be erased without
-- touching a balance; the timebank's exchange policy; exchanges and their decision history.

-- Personal data lives here and only here (email, password hash).
CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY,
    email         text        NOT NULL,
    display_name  text        NOT NULL DEFAULT '',
    password_hash text,
    is_admin      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_format CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254)
);
-- Unique case-insensitively: "Ada@Example.org" and "ada@example.org" are one person.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Bearer tokens for the API and the session cookie for the web pages; only a hash is stored.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    user_id      bigint      NOT NULL,
    kind         text        NOT NULL,
    name         text        NOT NULL DEFAULT '',
    token_hash   bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT api_tokens_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT api_tokens_kind_valid CHECK (kind IN ('session', 'api')),
    CONSTRAINT api_tokens_hash_length CHECK (length(token_hash) = 32),
    CONSTRAINT api_tokens_name_length CHECK (length(name) <= 100)
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- Sign-in attempts, for rate limiting per account and per client address.
CREATE TABLE login_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    email       text        NOT NULL,
    client      text        NOT NULL,
    succeeded   boolean     NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT login_attempts_pkey PRIMARY KEY (id)
);
CREATE INDEX login_attempts_email_idx ON login_attempts (lower(email), attempted_at);
CREATE INDEX login_attempts_client_idx ON login_attempts (client, attempted_at);

-- A user's roles in a timebank: member (through their participant), coordinator, funder.
CREATE TABLE timebank_roles (
    timebank_id bigint      NOT NULL,
    user_id     bigint      NOT NULL,
    role        text        NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT timebank_roles_pkey PRIMARY KEY (timebank_id, user_id, role),
    CONSTRAINT timebank_roles_timebank_fkey FOREIGN KEY (timebank_id) REFERENCES timebanks (id),
    CONSTRAINT timebank_roles_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT timebank_roles_role_valid CHECK (role IN ('member', 'coordinator', 'funder'))
);
CREATE INDEX timebank_roles_user_idx ON timebank_roles (user_id);

-- The participant a user acts as in a timebank (at most one each way). Erasing the user sets
-- this to NULL: the participant and its account stay, with every balance intact.
ALTER TABLE participants
    ADD COLUMN user_id bigint,
    ADD CONSTRAINT participants_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL,
    ADD CONSTRAINT participants_timebank_id_user_id_key UNIQUE (timebank_id, user_id);

-- One-time invitations a coordinator hands over; accepting sets the password.
CREATE TABLE invitations (
    id             bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id    bigint      NOT NULL,
    participant_id bigint,
    user_id        bigint      NOT NULL,
    token_hash     bytea       NOT NULL,
    invited_by     bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    accepted_at    timestamptz,
    CONSTRAINT invitations_pkey PRIMARY KEY (id),
    CONSTRAINT invitations_timebank_fkey FOREIGN KEY (timebank_id) REFERENCES timebanks (id),
    CONSTRAINT invitations_participant_fkey FOREIGN KEY (timebank_id, participant_id)
        REFERENCES participants (timebank_id, id),
    CONSTRAINT invitations_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT invitations_invited_by_fkey FOREIGN KEY (invited_by) REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT invitations_token_hash_key UNIQUE (token_hash)
);

-- The exchange policy of a timebank.
ALTER TABLE timebanks
    ADD COLUMN confirmation_required boolean NOT NULL DEFAULT true,
    ADD COLUMN approval_mode text NOT NULL DEFAULT 'coordinator',
    ADD COLUMN review_above_minutes bigint,
    ADD COLUMN review_backdated_days integer,
    ADD COLUMN review_organisation boolean NOT NULL DEFAULT false,
    ADD COLUMN review_first_exchange boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT timebanks_approval_mode_valid
        CHECK (approval_mode IN ('coordinator', 'automatic', 'automatic_unless')),
    ADD CONSTRAINT timebanks_review_above_positive CHECK (review_above_minutes > 0),
    ADD CONSTRAINT timebanks_review_backdated_not_negative CHECK (review_backdated_days >= 0);

-- The business record of an exchange of time. Its reservation and its transfers live in the
-- ledger; the links below make "posted at most once" a unique constraint (I6).
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
        CHECK ((state = 'reversed') = (reversal_transfer_id IS NOT NULL))
);
CREATE INDEX exchanges_timebank_state_idx ON exchanges (timebank_id, state, id);
CREATE INDEX exchanges_giver_idx ON exchanges (giver_id, id);
CREATE INDEX exchanges_receiver_idx ON exchanges (receiver_id, id);
CREATE INDEX exchanges_service_date_idx ON exchanges (timebank_id, service_date);

-- Every decision taken on an exchange: who, when, on whose behalf, why. Append-only.
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

CREATE TRIGGER exchange_decisions_append_only BEFORE UPDATE OR DELETE ON exchange_decisions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- Idempotency keys of requests that create a timebank are looked up without a timebank.
CREATE INDEX idempotency_keys_author_key_idx ON idempotency_keys (author, key);
