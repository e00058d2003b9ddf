-- Families with several parents: the first is the owner (manages children,
-- parents and erasure); others join by a one-time invite as parents.
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'owner';

CREATE TABLE invites (
    code_hash    text PRIMARY KEY,
    family_id    uuid NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    created_by   uuid NOT NULL,
    expires_at   timestamptz NOT NULL,
    redeemed_at  timestamptz,
    redeemed_by  uuid
);
-- An invite is redeemed before the family is known: the lookup names its code in a setting.
ALTER TABLE invites ENABLE ROW LEVEL SECURITY;
ALTER TABLE invites FORCE ROW LEVEL SECURITY;
CREATE POLICY invites_own ON invites
    USING (family_id = dadly_family() OR code_hash = NULLIF(current_setting('app.invite_code', true), ''))
    WITH CHECK (family_id = dadly_family());
