-- How to reach a person, and who a person was in the system a timebank moved from. Personal
-- data (email, phone, postal address) lives here on the participant row, which can be edited
-- and redacted; never in the ledger's append-only rows.
ALTER TABLE participants
    ADD COLUMN email              text,
    ADD COLUMN phone              text,
    ADD COLUMN postal_address     text,
    -- How the person wants to hear from the timebank: by email, a phone call, a text, or post.
    ADD COLUMN contact_preference text NOT NULL DEFAULT 'email',
    -- The person's id in the spreadsheet or system the timebank imported them from.
    ADD COLUMN external_id        text,
    -- A coordinator deactivated the person: they no longer appear among the people exchanges
    -- can be logged with, and their user (if any) may not act in this timebank. Reactivating
    -- clears it. Unlike leaving, the account stays open and keeps its balance.
    ADD COLUMN deactivated_at     timestamptz,
    ADD CONSTRAINT participants_contact_preference_valid
        CHECK (contact_preference IN ('email', 'phone', 'text', 'post')),
    ADD CONSTRAINT participants_email_shape
        CHECK (email IS NULL OR (length(email) BETWEEN 3 AND 254 AND email ~ '^[^@\s]+@[^@\s]+$')),
    ADD CONSTRAINT participants_phone_shape
        CHECK (phone IS NULL OR phone ~ '^\+?[0-9 ()-]{3,30}$'),
    ADD CONSTRAINT participants_postal_address_size
        CHECK (postal_address IS NULL OR length(postal_address) BETWEEN 1 AND 500),
    ADD CONSTRAINT participants_postal_address_printable
        CHECK (postal_address IS NULL
               OR postal_address !~ '[\x01-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]'),
    ADD CONSTRAINT participants_external_id_shape
        CHECK (external_id IS NULL
               OR (length(btrim(external_id)) BETWEEN 1 AND 100
                   AND external_id !~ '[\x01-\x1f\x7f-\x9f]'));

-- One person per external id and per email (ignoring case) in a timebank: an import matches
-- existing people by them.
CREATE UNIQUE INDEX participants_timebank_external_id_key
    ON participants (timebank_id, external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX participants_timebank_email_key
    ON participants (timebank_id, lower(email)) WHERE email IS NOT NULL;
