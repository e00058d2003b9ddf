-- Daily prompts: a parent may ask for one question a day at a local time.
ALTER TABLE users ADD COLUMN prompt_time text;
ALTER TABLE users ADD COLUMN prompt_last_on date;
ALTER TABLE families ADD COLUMN utc_offset text;
CREATE TABLE prompt_log (
    id          uuid PRIMARY KEY,
    family_id   uuid NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    question    text NOT NULL,
    member_id   uuid,
    sent_on     date NOT NULL,
    chat_key    text NOT NULL,
    message_id  bigint NOT NULL,
    entry_id    uuid,
    created_at  timestamptz NOT NULL
);
CREATE INDEX prompt_log_message ON prompt_log(family_id, chat_key, message_id);
ALTER TABLE prompt_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE prompt_log FORCE ROW LEVEL SECURITY;
CREATE POLICY prompt_log_own ON prompt_log USING (family_id = dadly_family()) WITH CHECK (family_id = dadly_family());

-- The parents who asked for prompts and are linked to Telegram, across families (ids and times only).
CREATE FUNCTION dadly_prompt_candidates() RETURNS TABLE (family_id uuid, user_id uuid, prompt_time text, prompt_last_on date, utc_offset text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT u.family_id, u.id, u.prompt_time, u.prompt_last_on, f.utc_offset FROM users u JOIN families f ON f.id = u.family_id
    WHERE u.prompt_time IS NOT NULL AND u.role <> 'removed' AND EXISTS (SELECT 1 FROM telegram_links t WHERE t.user_id = u.id)
$$;
CREATE POLICY users_prompts_find ON users FOR SELECT USING (dadly_is_worker());
CREATE POLICY families_prompts_find ON families FOR SELECT USING (dadly_is_worker());
CREATE POLICY telegram_links_prompts_find ON telegram_links FOR SELECT USING (dadly_is_worker());
REVOKE ALL ON FUNCTION dadly_prompt_candidates() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dadly_prompt_candidates() TO dadly_runtime;
