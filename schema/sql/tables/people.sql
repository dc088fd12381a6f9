-- Timebanks and their exchange policy, the participants and categories of each, and who holds
-- which role there. Minutes are integers everywhere; every tenant row carries timebank_id, and
-- every reference between tenant rows goes through (timebank_id, id) so that a row can never
-- point into another timebank.

CREATE TABLE timebanks (
    id                      bigint GENERATED ALWAYS AS IDENTITY,
    slug                    text        NOT NULL,
    name                    text        NOT NULL,
    default_floor_minutes   bigint      NOT NULL DEFAULT -600,
    default_ceiling_minutes bigint      NOT NULL DEFAULT 6000,
    max_exchange_minutes    bigint      NOT NULL DEFAULT 720,
    welcome_grant_minutes   bigint      NOT NULL DEFAULT 0,
    created_at              timestamptz NOT NULL DEFAULT now(),
    -- The exchange policy.
    confirmation_required   boolean     NOT NULL DEFAULT true,
    approval_mode           text        NOT NULL DEFAULT 'coordinator',
    review_above_minutes    bigint,
    review_backdated_days   integer,
    review_organisation     boolean     NOT NULL DEFAULT false,
    review_first_exchange   boolean     NOT NULL DEFAULT false,
    -- How many participants were ever enrolled: the next one's ordinal (participants_number).
    participants_enrolled   integer     NOT NULL DEFAULT 0,
    CONSTRAINT timebanks_pkey PRIMARY KEY (id),
    CONSTRAINT timebanks_slug_key UNIQUE (slug),
    CONSTRAINT timebanks_slug_format CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$'),
    CONSTRAINT timebanks_name_present CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT timebanks_default_floor_not_positive CHECK (default_floor_minutes <= 0),
    CONSTRAINT timebanks_default_ceiling_not_negative CHECK (default_ceiling_minutes >= 0),
    CONSTRAINT timebanks_max_exchange_positive CHECK (max_exchange_minutes > 0),
    CONSTRAINT timebanks_welcome_grant_within_ceiling
        CHECK (welcome_grant_minutes BETWEEN 0 AND default_ceiling_minutes),
    CONSTRAINT timebanks_approval_mode_valid
        CHECK (approval_mode IN ('coordinator', 'automatic', 'automatic_unless')),
    CONSTRAINT timebanks_review_above_positive CHECK (review_above_minutes > 0),
    CONSTRAINT timebanks_review_backdated_not_negative CHECK (review_backdated_days >= 0)
);

-- A member, professional or organisation of one timebank. Each has an ordinal in its timebank
-- (0, 1, 2, ...; set by participants_number), its bit in the reports' bitmaps. Erasing the
-- user it acts for sets user_id to NULL: the participant and its account stay, with every
-- balance intact.
CREATE TABLE participants (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id  bigint      NOT NULL,
    kind         text        NOT NULL,
    display_name text        NOT NULL,
    joined_on    date        NOT NULL DEFAULT current_date,
    created_at   timestamptz NOT NULL DEFAULT now(),
    user_id      bigint,
    ordinal      integer     NOT NULL,
    CONSTRAINT participants_pkey PRIMARY KEY (id),
    CONSTRAINT participants_timebank_fkey FOREIGN KEY (timebank_id) REFERENCES timebanks (id),
    CONSTRAINT participants_timebank_id_id_key UNIQUE (timebank_id, id),
    CONSTRAINT participants_kind_valid CHECK (kind IN ('member', 'professional', 'organisation')),
    CONSTRAINT participants_display_name_present CHECK (length(btrim(display_name)) BETWEEN 1 AND 200),
    -- The participant a user acts as in a timebank (at most one each way).
    CONSTRAINT participants_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT participants_timebank_id_user_id_key UNIQUE (timebank_id, user_id),
    CONSTRAINT participants_timebank_id_ordinal_key UNIQUE (timebank_id, ordinal)
);
CREATE INDEX participants_timebank_joined_idx ON participants (timebank_id, joined_on)
    INCLUDE (kind, created_at);

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

-- Names people type: no control or bidi-override characters (the service also refuses names
-- with nothing visible, and stores them in NFC). NOT VALID, as on the databases these checks
-- were added to with rows already in them, so that every database has one schema.
ALTER TABLE participants ADD CONSTRAINT participants_display_name_printable
    CHECK (display_name !~ '[\x01-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]')
    NOT VALID;
ALTER TABLE timebanks ADD CONSTRAINT timebanks_name_printable
    CHECK (name !~ '[\x01-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]') NOT VALID;
ALTER TABLE categories ADD CONSTRAINT categories_name_printable
    CHECK (name !~ '[\x01-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]') NOT VALID;
ALTER TABLE participants ADD CONSTRAINT participants_joined_on_believable
    CHECK (joined_on >= DATE '1900-01-01') NOT VALID;

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

-- Joining a timebank takes the person's own consent: an invitation carries the address it is
-- meant for and the roles it grants, is accepted once by whoever holds its token, and names
-- the user who accepted it only once someone has.
CREATE TABLE invitations (
    id             bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id    bigint      NOT NULL,
    participant_id bigint,
    accepted_by    bigint,
    token_hash     bytea       NOT NULL,
    invited_by     bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    accepted_at    timestamptz,
    email          text        NOT NULL,
    roles          text[]      NOT NULL DEFAULT '{}',
    -- How the token reaches the person: handed over by whoever invited (shown once in the
    -- answer), or, once the service sends mail, emailed to ``email`` and never shown.
    delivery       text        NOT NULL DEFAULT 'by_hand',
    CONSTRAINT invitations_pkey PRIMARY KEY (id),
    CONSTRAINT invitations_timebank_fkey FOREIGN KEY (timebank_id) REFERENCES timebanks (id),
    CONSTRAINT invitations_participant_fkey FOREIGN KEY (timebank_id, participant_id)
        REFERENCES participants (timebank_id, id),
    CONSTRAINT invitations_invited_by_fkey FOREIGN KEY (invited_by) REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT invitations_token_hash_key UNIQUE (token_hash),
    CONSTRAINT invitations_accepted_by_fkey FOREIGN KEY (accepted_by)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT invitations_email_format
        CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    CONSTRAINT invitations_roles_valid
        CHECK (roles <@ ARRAY['member', 'coordinator', 'funder']::text[]),
    -- The member role is the participant's; a funder sees aggregates and never exchanges.
    CONSTRAINT invitations_member_has_participant
        CHECK (participant_id IS NOT NULL OR NOT ('member' = ANY (roles))),
    CONSTRAINT invitations_funder_has_no_participant
        CHECK (participant_id IS NULL OR NOT ('funder' = ANY (roles))),
    CONSTRAINT invitations_staff_have_roles
        CHECK (participant_id IS NOT NULL OR cardinality(roles) > 0),
    CONSTRAINT invitations_accepted_by_only_when_accepted
        CHECK (accepted_by IS NULL OR accepted_at IS NOT NULL),
    CONSTRAINT invitations_delivery_valid CHECK (delivery IN ('by_hand', 'email'))
);
CREATE INDEX invitations_participant_idx ON invitations (timebank_id, participant_id);
CREATE INDEX invitations_email_idx ON invitations (timebank_id, lower(email));

-- Who changed whose roles, in which timebank, from what to what, when. Append-only
-- (role_changes_refuse_change); erasing a user only blanks the references to them.
CREATE TABLE role_changes (
    id             bigint GENERATED ALWAYS AS IDENTITY,
    timebank_id    bigint      NOT NULL,
    user_id        bigint,
    participant_id bigint,
    changed_by     bigint,
    invitation_id  bigint,
    from_roles     text[]      NOT NULL,
    to_roles       text[]      NOT NULL,
    changed_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT role_changes_pkey PRIMARY KEY (id),
    CONSTRAINT role_changes_timebank_fkey FOREIGN KEY (timebank_id) REFERENCES timebanks (id),
    CONSTRAINT role_changes_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT role_changes_participant_fkey FOREIGN KEY (timebank_id, participant_id)
        REFERENCES participants (timebank_id, id),
    CONSTRAINT role_changes_changed_by_fkey FOREIGN KEY (changed_by)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT role_changes_invitation_fkey FOREIGN KEY (invitation_id) REFERENCES invitations (id),
    CONSTRAINT role_changes_from_roles_valid
        CHECK (from_roles <@ ARRAY['member', 'coordinator', 'funder']::text[]),
    CONSTRAINT role_changes_to_roles_valid
        CHECK (to_roles <@ ARRAY['member', 'coordinator', 'funder']::text[])
);
CREATE INDEX role_changes_timebank_idx ON role_changes (timebank_id, id);
CREATE INDEX role_changes_user_idx ON role_changes (user_id);
