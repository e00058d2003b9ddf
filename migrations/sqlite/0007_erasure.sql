-- That an erasure happened (who, when, what kind, how many of each), never
-- what was erased. Kept after a family's own erasure: no foreign key.
CREATE TABLE erasures (
    id         TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    counts     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- The owner is told once when a child turns 14 that the child may ask for erasure.
ALTER TABLE members ADD COLUMN age_notice_at INTEGER;

-- Export files kept for a download link (the Telegram bot's /export): they
-- hold copies of entries, so erasure and deletion remove them too.
CREATE TABLE export_files (
    family_id  TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    blob_key   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (family_id, blob_key)
);
