-- Sign-in without lockouts and without a record of who tried: counters keyed by keyed hashes,
-- pruned as they age; API tokens that always expire; one-time password resets.

-- The old log kept every email and client address tried, forever, and grew with every request.
DROP TABLE login_attempts;

-- The key of the keyed hashes below (HMAC-SHA256): one row, made here, never shown. Without
-- it a stolen copy of the counters cannot be matched against a list of emails or addresses.
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

-- Every token expires: tokens made before expiry was required get the default 90 days.
UPDATE api_tokens SET expires_at = now() + interval '90 days' WHERE expires_at IS NULL;
ALTER TABLE api_tokens ALTER COLUMN expires_at SET NOT NULL;

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
