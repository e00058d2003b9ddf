-- A new entry's row, its member links and its jobs as one function, so a
-- recorded note without an update key or media is one round trip instead of
-- four (BEGIN, the row-level security setting, the statement, COMMIT); see
-- 0019. The entry is written only when its author and every child named are
-- of the family, so a refusal leaves nothing behind without a rollback.
-- Called inside a transaction (with an update key to claim, or media), it
-- puts the setting back as it found it.
CREATE FUNCTION dadly_insert_entry(
    fid uuid, eid uuid, author uuid, src text, body text, occurred timestamptz, now_ timestamptz,
    st text, ext_key text, reply text, kids uuid[], attempts_max bigint, job_ids uuid[], job_kinds text[], job_keys text[])
RETURNS TABLE (n_entries bigint, n_members bigint, n_jobs bigint)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE prev text := current_setting('app.family_id', true);
BEGIN
    PERFORM set_config('app.family_id', fid::text, true);
    RETURN QUERY
    WITH e AS (
        INSERT INTO entries (id, family_id, author_id, source, raw_text, occurred_at, created_at, updated_at, version, status, external_key, reply_to)
        SELECT eid, u.family_id, u.id, src, body, occurred, now_, now_, 1, st, ext_key, reply FROM users u
        WHERE u.id = author AND u.family_id = fid
          AND (SELECT count(*) FROM members x WHERE x.family_id = fid AND x.id = ANY(kids)) = coalesce(cardinality(kids), 0)
        RETURNING id, family_id),
    m AS (
        INSERT INTO entry_members (entry_id, member_id, family_id)
        SELECT e.id, x.id, x.family_id FROM e JOIN members x ON x.family_id = e.family_id AND x.id = ANY(kids)
        ON CONFLICT DO NOTHING RETURNING 1),
    j AS (
        INSERT INTO jobs (id, family_id, kind, entry_id, entry_version, dedupe_key, max_attempts, run_at, created_at, updated_at)
        SELECT k.id, e.family_id, k.kind, e.id, 1, k.key, attempts_max, now_, now_, now_ FROM e, unnest(job_ids, job_kinds, job_keys) AS k(id, kind, key)
        ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1)
    SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM m), (SELECT count(*) FROM j);
    PERFORM set_config('app.family_id', coalesce(prev, ''), true);
END $$;

REVOKE ALL ON FUNCTION dadly_insert_entry(uuid, uuid, uuid, text, text, timestamptz, timestamptz, text, text, text, uuid[], bigint, uuid[], text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dadly_insert_entry(uuid, uuid, uuid, text, text, timestamptz, timestamptz, text, text, text, uuid[], bigint, uuid[], text[], text[]) TO dadly_runtime;
