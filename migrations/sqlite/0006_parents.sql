-- Families with several parents: the first is the owner (manages children,
-- parents and erasure); others join by a one-time invite as parents.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'owner';

CREATE TABLE invites (
    code_hash    TEXT PRIMARY KEY,
    family_id    TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    created_by   TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    redeemed_at  INTEGER,
    redeemed_by  TEXT
);
