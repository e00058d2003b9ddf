-- 0020's dadly_insert_entry (kept for instances of the previous release
-- during a rolling upgrade) becomes a call of 0021's function without an
-- update key, so the entry's conditional insert has one body to maintain.
CREATE OR REPLACE FUNCTION dadly_insert_entry(
    fid uuid, eid uuid, author uuid, src text, body text, occurred timestamptz, now_ timestamptz,
    st text, ext_key text, reply text, kids uuid[], attempts_max bigint, job_ids uuid[], job_kinds text[], job_keys text[])
RETURNS TABLE (n_entries bigint, n_members bigint, n_jobs bigint)
LANGUAGE sql SET search_path = public, pg_temp AS $$
    SELECT c.n_entries, c.n_members, c.n_jobs
    FROM dadly_insert_entry_claimed(fid, eid, author, src, body, occurred, now_, st, ext_key, reply, kids, attempts_max, job_ids, job_kinds, job_keys, NULL) AS c;
$$;
