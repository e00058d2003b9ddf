-- The three statements every recorded message makes outside its entry's
-- transaction, each as one round trip. A family-scoped query used to be four
-- (BEGIN, the row-level security setting, the query, COMMIT): under a burst
-- of recorded notes, sending and receiving those messages was the largest
-- cost left on both sides of the connection.
--
-- Each function sets the setting row-level security reads, runs its one
-- query as the caller (SECURITY INVOKER: the policies apply as to any query
-- of the runtime role), and puts the setting back as it found it, so it
-- changes nothing for whatever else runs in the same transaction. The runtime
-- role could set the same setting itself; these grant it nothing new.

-- The user a token names: the one lookup made before the family is known.
CREATE FUNCTION dadly_user(uid uuid) RETURNS SETOF users
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE prev text := current_setting('app.user_id', true);
BEGIN
    PERFORM set_config('app.user_id', uid::text, true);
    RETURN QUERY SELECT * FROM users u WHERE u.id = uid;
    PERFORM set_config('app.user_id', coalesce(prev, ''), true);
END $$;

-- A family's children, oldest record first.
CREATE FUNCTION dadly_members(fid uuid) RETURNS SETOF members
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE prev text := current_setting('app.family_id', true);
BEGIN
    PERFORM set_config('app.family_id', fid::text, true);
    RETURN QUERY SELECT * FROM members m WHERE m.family_id = fid ORDER BY m.created_at, m.id;
    PERFORM set_config('app.family_id', coalesce(prev, ''), true);
END $$;

-- A chat message and its reply (or any turns), in order. Returns how many were written.
CREATE FUNCTION dadly_add_chat_turns(fid uuid, uid uuid, ids uuid[], chats text[], roles text[], contents text[], times timestamptz[]) RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    prev text := current_setting('app.family_id', true);
    written bigint;
BEGIN
    PERFORM set_config('app.family_id', fid::text, true);
    INSERT INTO chat_turns (id, family_id, user_id, chat_id, role, content, created_at)
        SELECT t.id, fid, uid, t.chat_id, t.role, t.content, t.created_at
        FROM unnest(ids, chats, roles, contents, times) AS t(id, chat_id, role, content, created_at);
    GET DIAGNOSTICS written = ROW_COUNT;
    PERFORM set_config('app.family_id', coalesce(prev, ''), true);
    RETURN written;
END $$;

REVOKE ALL ON FUNCTION dadly_user(uuid), dadly_members(uuid),
    dadly_add_chat_turns(uuid, uuid, uuid[], text[], text[], text[], timestamptz[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dadly_user(uuid), dadly_members(uuid),
    dadly_add_chat_turns(uuid, uuid, uuid[], text[], text[], text[], timestamptz[]) TO dadly_runtime;
