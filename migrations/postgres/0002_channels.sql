-- Channels (Telegram): linking, at-least-once update handling, media that is
-- fetched and transcribed in the background, and message ↔ entry mapping.

ALTER TABLE entries ADD COLUMN status text NOT NULL DEFAULT 'ready';
ALTER TABLE entries ADD COLUMN external_key text;
ALTER TABLE entries ADD COLUMN reply_to text;
CREATE UNIQUE INDEX entries_external_key ON entries(family_id, external_key);

ALTER TABLE media ADD COLUMN source_ref text;
ALTER TABLE media ADD COLUMN kind text NOT NULL DEFAULT 'photo';

CREATE TABLE link_codes (
    code_hash   text PRIMARY KEY,
    family_id   uuid NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL
);

CREATE TABLE telegram_links (
    telegram_user_id  bigint PRIMARY KEY,
    family_id         uuid NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    user_id           uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    language          text,
    created_at        timestamptz NOT NULL
);

CREATE TABLE processed_updates (
    update_key  text PRIMARY KEY,
    family_id   uuid NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE channel_messages (
    chat_key    text NOT NULL,
    message_id  bigint NOT NULL,
    family_id   uuid NOT NULL,
    entry_id    uuid NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    kind        text NOT NULL,
    PRIMARY KEY (chat_key, message_id)
);

-- A link code is redeemed, and a Telegram user resolved, before the family is
-- known: those two lookups name their key in a setting, like token lookups.
ALTER TABLE link_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE link_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY link_codes_own ON link_codes
    USING (family_id = dadly_family() OR code_hash = NULLIF(current_setting('app.link_code', true), ''))
    WITH CHECK (family_id = dadly_family());

ALTER TABLE telegram_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE telegram_links FORCE ROW LEVEL SECURITY;
CREATE POLICY telegram_links_own ON telegram_links
    USING (family_id = dadly_family() OR telegram_user_id = NULLIF(current_setting('app.telegram_user_id', true), '')::bigint)
    WITH CHECK (family_id = dadly_family());

ALTER TABLE processed_updates ENABLE ROW LEVEL SECURITY;
ALTER TABLE processed_updates FORCE ROW LEVEL SECURITY;
CREATE POLICY processed_updates_own ON processed_updates USING (family_id = dadly_family()) WITH CHECK (family_id = dadly_family());

ALTER TABLE channel_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE channel_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY channel_messages_own ON channel_messages USING (family_id = dadly_family()) WITH CHECK (family_id = dadly_family());
