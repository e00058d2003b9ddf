-- Workers claim and complete jobs in batches, and embedding has its own lane
-- ('embed' jobs only, or everything else), so an entry becomes searchable
-- without waiting behind enrichment. Same rules as dadly_claim_job: due jobs
-- first, oldest first; only when none is due, jobs whose lease ran out.
CREATE FUNCTION dadly_claim_jobs(now_ timestamptz, lease interval, lane text, lim integer) RETURNS SETOF dadly_job
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN QUERY WITH picked AS (
        SELECT id FROM jobs WHERE status = 'queued' AND run_at <= now_
            AND (lane = 'any' OR (lane = 'embed') = (kind = 'embed'))
            ORDER BY run_at, id LIMIT lim FOR UPDATE SKIP LOCKED)
    UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, locked_until = now_ + lease, updated_at = now_
        FROM picked WHERE j.id = picked.id
        RETURNING j.id, j.family_id, j.kind, j.entry_id, j.entry_version, j.attempts, j.max_attempts, j.transient_failures;
    IF FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY WITH picked AS (
        SELECT id FROM jobs WHERE status = 'running' AND locked_until < now_ AND attempts < max_attempts
            AND (lane = 'any' OR (lane = 'embed') = (kind = 'embed'))
            ORDER BY locked_until, id LIMIT lim FOR UPDATE SKIP LOCKED)
    UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, locked_until = now_ + lease, updated_at = now_
        FROM picked WHERE j.id = picked.id
        RETURNING j.id, j.family_id, j.kind, j.entry_id, j.entry_version, j.attempts, j.max_attempts, j.transient_failures;
END $$;

CREATE FUNCTION dadly_complete_jobs(ids uuid[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE jobs SET status = 'done', locked_until = NULL, last_error = NULL, updated_at = now() WHERE id = ANY(ids)
$$;

REVOKE ALL ON FUNCTION dadly_claim_jobs(timestamptz, interval, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION dadly_complete_jobs(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dadly_claim_jobs(timestamptz, interval, text, integer) TO dadly_runtime;
GRANT EXECUTE ON FUNCTION dadly_complete_jobs(uuid[]) TO dadly_runtime;
