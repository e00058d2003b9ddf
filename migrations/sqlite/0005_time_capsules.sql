-- Time capsules: a message for a child, sealed until `open_at`. The message
-- is stored only encrypted (`ciphertext`, under a per-capsule data key that
-- `wrapped_key` holds encrypted by a master key kept outside the database).
-- A chat draft waits for the parent's confirmation (`confirmed = 0`).
CREATE TABLE time_capsules (
    id            TEXT PRIMARY KEY,
    family_id     TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    author_id     TEXT NOT NULL,
    member_id     TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    open_at       INTEGER NOT NULL,
    ciphertext    BLOB NOT NULL,
    wrapped_key   BLOB NOT NULL,
    key_id        TEXT NOT NULL,
    chat_id       TEXT,
    confirmed     INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    opened_at     INTEGER,
    entry_id      TEXT,
    delivered_at  INTEGER
);
CREATE INDEX time_capsules_family ON time_capsules(family_id, open_at);
