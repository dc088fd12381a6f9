-- Sign-in: users, their sessions and API tokens, failed sign-ins counted without a record of
-- who tried, password resets. Personal data (email, password hash) lives here and only here,
-- kept apart from the ledger so that a person can be erased without touching a balance.

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
-- Every token expires.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    user_id      bigint      NOT NULL,
    kind         text        NOT NULL,
    name         text        NOT NULL DEFAULT '',
    token_hash   bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
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

-- The key of the keyed hashes of sign_in_counters (HMAC-SHA256): one row, made here, never
-- shown. Without it a stolen copy of the counters cannot be matched against a list of emails
-- or addresses.
CREATE TABLE sign_in_key (
    id  boolean NOT NULL DEFAULT true,
    key bytea   NOT NULL,
    CONSTRAINT sign_in_key_pkey PRIMARY KEY (id),
    CONSTRAINT sign_in_key_one_row CHECK (id),
    CONSTRAINT sign_in_key_length CHECK (length(key) = 32)
);
INSERT INTO sign_in_key (key)
SELECT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');

-- Failed sign-ins counted per key: an account, a client address, or an account from one
-- client address (``timebank.auth.throttle`` says how they become delays). A row disappears
-- once ``expires_at`` passes: a day after its last failure, or 30 days after the last sign-in
-- it recorded (an address the account is known to sign in from).
CREATE TABLE sign_in_counters (
    key               bytea       NOT NULL,
    failures          integer     NOT NULL DEFAULT 0,
    last_failed_at    timestamptz,
    last_succeeded_at timestamptz,
    expires_at        timestamptz NOT NULL DEFAULT now() + interval '1 day',
    CONSTRAINT sign_in_counters_pkey PRIMARY KEY (key),
    CONSTRAINT sign_in_counters_key_length CHECK (length(key) = 32),
    CONSTRAINT sign_in_counters_failures_valid CHECK (failures >= 0)
);
CREATE INDEX sign_in_counters_expires_idx ON sign_in_counters (expires_at);

-- A password reset a site admin issued: a one-time secret (only its hash is kept) that sets a
-- new password and ends every session and token of the user.
CREATE TABLE password_resets (
    id         bigint GENERATED ALWAYS AS IDENTITY,
    user_id    bigint      NOT NULL,
    token_hash bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    CONSTRAINT password_resets_pkey PRIMARY KEY (id),
    CONSTRAINT password_resets_user_fkey FOREIGN KEY (user_id) REFERENCES users (id)
        ON DELETE CASCADE,
    CONSTRAINT password_resets_token_hash_key UNIQUE (token_hash),
    CONSTRAINT password_resets_hash_length CHECK (length(token_hash) = 32)
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);
