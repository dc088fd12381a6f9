-- Joining a timebank takes the person's own consent. An invitation no longer points at a user
-- found (or made) by its email: it carries the address it is meant for and the roles it grants,
-- and names the user who accepted it only once someone has. Role changes are recorded.

-- The invitation: for an address, granting roles, accepted once by whoever holds its token.
ALTER TABLE invitations
    ADD COLUMN email text,
    ADD COLUMN roles text[] NOT NULL DEFAULT '{}',
    -- How the token reaches the person: handed over by whoever invited (shown once in the
    -- answer), or, once the service sends mail, emailed to ``email`` and never shown.
    ADD COLUMN delivery text NOT NULL DEFAULT 'by_hand';
ALTER TABLE invitations RENAME COLUMN user_id TO accepted_by;
ALTER TABLE invitations ALTER COLUMN accepted_by DROP NOT NULL;
ALTER TABLE invitations DROP CONSTRAINT invitations_user_fkey;

-- Earlier invitations pointed at a user made for them: their address and the roles that user
-- held there move onto the invitation.
UPDATE invitations i SET
    email = u.email,
    roles = coalesce(ARRAY(SELECT r.role FROM timebank_roles r
                           WHERE r.timebank_id = i.timebank_id AND r.user_id = i.accepted_by
                             AND (i.participant_id IS NULL OR r.role <> 'funder')
                           ORDER BY r.role), '{}')
FROM users u WHERE u.id = i.accepted_by;

-- Participants linked to an existing account by its address alone (no invitation of theirs
-- accepted by that account) lose the link and its roles: joining takes the person's consent.
-- A spent invitation keeps the address and roles, so a coordinator can send a fresh one.
CREATE TEMPORARY TABLE linked_without_consent ON COMMIT DROP AS
    SELECT p.timebank_id, p.id AS participant_id, p.user_id, u.email
    FROM participants p JOIN users u ON u.id = p.user_id
    WHERE u.password_hash IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM invitations i
                      WHERE i.timebank_id = p.timebank_id AND i.participant_id = p.id
                        AND i.accepted_by = p.user_id AND i.accepted_at IS NOT NULL);
INSERT INTO invitations (timebank_id, participant_id, email, roles, token_hash, expires_at)
    SELECT l.timebank_id, l.participant_id, l.email,
           ARRAY(SELECT r.role FROM timebank_roles r
                 WHERE r.timebank_id = l.timebank_id AND r.user_id = l.user_id
                   AND r.role <> 'funder' ORDER BY r.role),
           sha256(convert_to(gen_random_uuid()::text, 'UTF8')), now()
    FROM linked_without_consent l;
DELETE FROM timebank_roles r USING linked_without_consent l
    WHERE r.timebank_id = l.timebank_id AND r.user_id = l.user_id;
UPDATE participants p SET user_id = NULL
    FROM linked_without_consent l WHERE p.id = l.participant_id;

-- Users made for an invitation and never signed up (no password, not an admin) become what
-- they were: open invitations. Their participants wait for someone to accept.
CREATE TEMPORARY TABLE never_signed_up ON COMMIT DROP AS
    SELECT id FROM users WHERE password_hash IS NULL AND NOT is_admin;
UPDATE participants SET user_id = NULL WHERE user_id IN (SELECT id FROM never_signed_up);
DELETE FROM timebank_roles WHERE user_id IN (SELECT id FROM never_signed_up);
UPDATE invitations SET accepted_by = NULL WHERE accepted_at IS NULL;
DELETE FROM users WHERE id IN (SELECT id FROM never_signed_up);

ALTER TABLE invitations
    ALTER COLUMN email SET NOT NULL,
    ADD CONSTRAINT invitations_accepted_by_fkey FOREIGN KEY (accepted_by)
        REFERENCES users (id) ON DELETE SET NULL,
    ADD CONSTRAINT invitations_email_format
        CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    ADD CONSTRAINT invitations_roles_valid
        CHECK (roles <@ ARRAY['member', 'coordinator', 'funder']::text[]),
    -- The member role is the participant's; a funder sees aggregates and never exchanges.
    ADD CONSTRAINT invitations_member_has_participant
        CHECK (participant_id IS NOT NULL OR NOT ('member' = ANY (roles))),
    ADD CONSTRAINT invitations_funder_has_no_participant
        CHECK (participant_id IS NULL OR NOT ('funder' = ANY (roles))),
    ADD CONSTRAINT invitations_staff_have_roles
        CHECK (participant_id IS NOT NULL OR cardinality(roles) > 0),
    ADD CONSTRAINT invitations_accepted_by_only_when_accepted
        CHECK (accepted_by IS NULL OR accepted_at IS NOT NULL),
    ADD CONSTRAINT invitations_delivery_valid CHECK (delivery IN ('by_hand', 'email'));
CREATE INDEX invitations_participant_idx ON invitations (timebank_id, participant_id);
CREATE INDEX invitations_email_idx ON invitations (timebank_id, lower(email));

-- Who changed whose roles, in which timebank, from what to what, when. Append-only; erasing a
-- user only blanks the references to them.
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

CREATE FUNCTION role_changes_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Only the blanking of an erased user's references gets through.
    IF TG_OP = 'UPDATE'
       AND (NEW.user_id IS NULL OR NEW.user_id = OLD.user_id)
       AND (NEW.changed_by IS NULL OR NEW.changed_by = OLD.changed_by)
       AND (NEW.id, NEW.timebank_id, NEW.participant_id, NEW.invitation_id, NEW.from_roles,
            NEW.to_roles, NEW.changed_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.timebank_id, OLD.participant_id, OLD.invitation_id, OLD.from_roles,
            OLD.to_roles, OLD.changed_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on % refused: the record of role changes is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'TBIN0';
END $$;

CREATE TRIGGER role_changes_append_only BEFORE UPDATE OR DELETE ON role_changes
    FOR EACH ROW EXECUTE FUNCTION role_changes_refuse_change();
CREATE TRIGGER role_changes_no_truncate BEFORE TRUNCATE ON role_changes
    FOR EACH STATEMENT EXECUTE FUNCTION role_changes_refuse_change();

-- Names people type: no control or bidi-override characters (the service also refuses names
-- with nothing visible, and stores them in NFC).
ALTER TABLE participants ADD CONSTRAINT participants_display_name_printable
    CHECK (display_name !~ '[\x01-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]')
    NOT VALID;
ALTER TABLE timebanks ADD CONSTRAINT timebanks_name_printable
    CHECK (name !~ '[\x01-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]') NOT VALID;
ALTER TABLE categories ADD CONSTRAINT categories_name_printable
    CHECK (name !~ '[\x01-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]') NOT VALID;
ALTER TABLE participants ADD CONSTRAINT participants_joined_on_believable
    CHECK (joined_on >= DATE '1900-01-01') NOT VALID;
