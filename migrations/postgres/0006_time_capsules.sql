-- Time capsules: a message for a child, sealed until `open_at`. The message
-- is stored only encrypted (`ciphertext`, under a per-capsule data key that
-- `wrapped_key` holds encrypted by a master key kept outside the database).
-- A chat draft waits for the parent's confirmation (`confirmed = false`).
CREATE TABLE time_capsules (
    id            uuid PRIMARY KEY,
    family_id     uuid NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    author_id     uuid NOT NULL,
    member_id     uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    open_at       timestamptz NOT NULL,
    ciphertext    bytea NOT NULL,
    wrapped_key   bytea NOT NULL,
    key_id        text NOT NULL,
    chat_id       text,
    confirmed     boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL,
    opened_at     timestamptz,
    entry_id      uuid,
    delivered_at  timestamptz
);
CREATE INDEX time_capsules_family ON time_capsules(family_id, open_at);
ALTER TABLE time_capsules ENABLE ROW LEVEL SECURITY;
ALTER TABLE time_capsules FORCE ROW LEVEL SECURITY;
CREATE POLICY time_capsules_own ON time_capsules USING (family_id = dadly_family()) WITH CHECK (family_id = dadly_family());
