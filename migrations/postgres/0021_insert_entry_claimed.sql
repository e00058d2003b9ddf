-- dadly_insert_entry (0020) with the message's update key claimed in the
-- same statement: a Telegram text note (which carries an update key) is one
-- round trip instead of four (BEGIN, the setting, the claim and the entry,
-- COMMIT). The key is claimed only when the author and every child named are
-- of the family, and the entry is written only when the key was not claimed
-- before; so a redelivered update writes nothing, and a refused note leaves
-- its key unclaimed. A NULL key claims nothing. Called inside a transaction
-- (media to write as well), it puts the setting back as it found it.
-- 0020's function stays for instances of the previous release during a
-- rolling upgrade.
CREATE FUNCTION dadly_insert_entry_claimed(
    fid uuid, eid uuid, author uuid, src text, body text, occurred timestamptz, now_ timestamptz,
    st text, ext_key text, reply text, kids uuid[], attempts_max bigint, job_ids uuid[], job_kinds text[], job_keys text[],
    update_key text)
RETURNS TABLE (n_allowed bigint, n_claimed bigint, n_entries bigint, n_members bigint, n_jobs bigint)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE prev text := current_setting('app.family_id', true);
BEGIN
    PERFORM set_config('app.family_id', fid::text, true);
    RETURN QUERY
    WITH ok AS (
        SELECT u.id, u.family_id FROM users u
        WHERE u.id = author AND u.family_id = fid
          AND (SELECT count(*) FROM members x WHERE x.family_id = fid AND x.id = ANY(kids)) = coalesce(cardinality(kids), 0)),
    c AS (
        INSERT INTO processed_updates (update_key, family_id, created_at)
        SELECT update_key, ok.family_id, now_ FROM ok WHERE update_key IS NOT NULL
        ON CONFLICT DO NOTHING RETURNING 1),
    e AS (
        INSERT INTO entries (id, family_id, author_id, source, raw_text, occurred_at, created_at, updated_at, version, status, external_key, reply_to)
        SELECT eid, ok.family_id, ok.id, src, body, occurred, now_, now_, 1, st, ext_key, reply FROM ok
        WHERE update_key IS NULL OR EXISTS (SELECT 1 FROM c)
        RETURNING id, family_id),
    m AS (
        INSERT INTO entry_members (entry_id, member_id, family_id)
        SELECT e.id, x.id, x.family_id FROM e JOIN members x ON x.family_id = e.family_id AND x.id = ANY(kids)
        ON CONFLICT DO NOTHING RETURNING 1),
    j AS (
        INSERT INTO jobs (id, family_id, kind, entry_id, entry_version, dedupe_key, max_attempts, run_at, created_at, updated_at)
        SELECT k.id, e.family_id, k.kind, e.id, 1, k.key, attempts_max, now_, now_, now_ FROM e, unnest(job_ids, job_kinds, job_keys) AS k(id, kind, key)
        ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1)
    SELECT (SELECT count(*) FROM ok), (SELECT count(*) FROM c), (SELECT count(*) FROM e), (SELECT count(*) FROM m), (SELECT count(*) FROM j);
    PERFORM set_config('app.family_id', coalesce(prev, ''), true);
END $$;

REVOKE ALL ON FUNCTION dadly_insert_entry_claimed(uuid, uuid, uuid, text, text, timestamptz, timestamptz, text, text, text, uuid[], bigint, uuid[], text[], text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dadly_insert_entry_claimed(uuid, uuid, uuid, text, text, timestamptz, timestamptz, text, text, text, uuid[], bigint, uuid[], text[], text[], text) TO dadly_runtime;
