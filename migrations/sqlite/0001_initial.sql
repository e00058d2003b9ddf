-- Dadly's schema for SQLite. Ids are UUID text; instants are Unix milliseconds
-- (INTEGER) so they sort and compare exactly; lists are JSON arrays.

CREATE TABLE families (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX users_family ON users(family_id);

CREATE TABLE members (
    id          TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    aliases     TEXT NOT NULL DEFAULT '[]',
    birth_date  TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (family_id, name)
);

CREATE TABLE entries (
    id           TEXT PRIMARY KEY,
    family_id    TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    author_id    TEXT NOT NULL REFERENCES users(id),
    source       TEXT NOT NULL,
    raw_text     TEXT NOT NULL,
    occurred_at  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,
    -- The version whose vector is in the index (whichever backend that is).
    indexed_version INTEGER
);
CREATE INDEX entries_family_occurred ON entries(family_id, occurred_at DESC, id);

CREATE TABLE entry_members (
    entry_id   TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    member_id  TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    family_id  TEXT NOT NULL,
    PRIMARY KEY (entry_id, member_id)
);
CREATE INDEX entry_members_member ON entry_members(family_id, member_id);

CREATE TABLE entry_versions (
    entry_id     TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    family_id    TEXT NOT NULL,
    version      INTEGER NOT NULL,
    raw_text     TEXT NOT NULL,
    replaced_at  INTEGER NOT NULL,
    PRIMARY KEY (entry_id, version)
);

CREATE TABLE entry_insights (
    entry_id        TEXT PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
    family_id       TEXT NOT NULL,
    entry_version   INTEGER NOT NULL,
    summary         TEXT NOT NULL,
    topics          TEXT NOT NULL DEFAULT '[]',
    emotions        TEXT NOT NULL DEFAULT '[]',
    member_ids      TEXT NOT NULL DEFAULT '[]',
    model           TEXT NOT NULL,
    prompt_name     TEXT NOT NULL,
    prompt_version  TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX entry_insights_family ON entry_insights(family_id);

-- The embedded vector index: one vector per entry, with the payload it filters on.
CREATE TABLE entry_vectors (
    entry_id       TEXT PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
    family_id      TEXT NOT NULL,
    entry_version  INTEGER NOT NULL,
    model          TEXT NOT NULL,
    dims           INTEGER NOT NULL,
    vector         BLOB NOT NULL,
    member_ids     TEXT NOT NULL DEFAULT '[]',
    topics         TEXT NOT NULL DEFAULT '[]',
    emotions       TEXT NOT NULL DEFAULT '[]',
    occurred_at    INTEGER NOT NULL
);
CREATE INDEX entry_vectors_family ON entry_vectors(family_id, occurred_at);

CREATE TABLE media (
    id            TEXT PRIMARY KEY,
    family_id     TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    entry_id      TEXT REFERENCES entries(id) ON DELETE SET NULL,
    blob_key      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX media_entry ON media(family_id, entry_id);

CREATE TABLE chat_turns (
    id          TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    role        TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX chat_turns_chat ON chat_turns(family_id, chat_id, created_at);

-- Durable job queue. `dedupe_key` makes enqueueing idempotent.
CREATE TABLE jobs (
    id             TEXT PRIMARY KEY,
    family_id      TEXT NOT NULL,
    kind           TEXT NOT NULL,
    entry_id       TEXT NOT NULL,
    entry_version  INTEGER NOT NULL,
    dedupe_key     TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL DEFAULT 'queued',
    attempts       INTEGER NOT NULL DEFAULT 0,
    max_attempts   INTEGER NOT NULL,
    run_at         INTEGER NOT NULL,
    locked_until   INTEGER,
    last_error     TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs(status, run_at);

-- Model spend per family and day, so it is visible without LangSmith.
CREATE TABLE model_usage (
    family_id      TEXT NOT NULL,
    day            TEXT NOT NULL,
    model          TEXT NOT NULL,
    capability     TEXT NOT NULL,
    calls          INTEGER NOT NULL DEFAULT 0,
    input_tokens   INTEGER NOT NULL DEFAULT 0,
    output_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_usd       REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (family_id, day, model, capability)
);
