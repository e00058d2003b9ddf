-- Daily prompts: a parent may ask for one question a day at a local time.
ALTER TABLE users ADD COLUMN prompt_time TEXT;
ALTER TABLE users ADD COLUMN prompt_last_on TEXT;
ALTER TABLE families ADD COLUMN utc_offset TEXT;
CREATE TABLE prompt_log (
    id          TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    question    TEXT NOT NULL,
    member_id   TEXT,
    sent_on     TEXT NOT NULL,
    chat_key    TEXT NOT NULL,
    message_id  INTEGER NOT NULL,
    entry_id    TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX prompt_log_message ON prompt_log(family_id, chat_key, message_id);
