-- Channels (Telegram): linking, at-least-once update handling, media that is
-- fetched and transcribed in the background, and message ↔ entry mapping.

ALTER TABLE entries ADD COLUMN status TEXT NOT NULL DEFAULT 'ready';
-- Groups channel messages into one entry (a Telegram album).
ALTER TABLE entries ADD COLUMN external_key TEXT;
-- Where to send news about this entry (e.g. its transcript): "telegram:<chat>:<message>".
ALTER TABLE entries ADD COLUMN reply_to TEXT;
CREATE UNIQUE INDEX entries_external_key ON entries(family_id, external_key);

ALTER TABLE media ADD COLUMN source_ref TEXT;
ALTER TABLE media ADD COLUMN kind TEXT NOT NULL DEFAULT 'photo';

CREATE TABLE link_codes (
    code_hash   TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    created_at  INTEGER NOT NULL
);

CREATE TABLE telegram_links (
    telegram_user_id  INTEGER PRIMARY KEY,
    family_id         TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    language          TEXT,
    created_at        INTEGER NOT NULL
);

CREATE TABLE processed_updates (
    update_key  TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE channel_messages (
    chat_key    TEXT NOT NULL,
    message_id  INTEGER NOT NULL,
    family_id   TEXT NOT NULL,
    entry_id    TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    PRIMARY KEY (chat_key, message_id)
);
