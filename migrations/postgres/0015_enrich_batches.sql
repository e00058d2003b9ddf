-- Enrichment is run in batches too: a general worker that claimed an
-- 'enrich' job claims more of them (lane 'enrich'). Lanes: 'any', 'embed'
-- (embed jobs only), 'other' (all but embed), 'enrich' (enrich jobs only).
CREATE OR REPLACE FUNCTION dadly_claim_jobs(now_ timestamptz, lease interval, lane text, lim integer) RETURNS SETOF dadly_job
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF lane NOT IN ('any', 'embed', 'other', 'enrich') THEN
        RAISE EXCEPTION 'unknown job lane %', lane USING ERRCODE = '22023';
    END IF;
    RETURN QUERY WITH picked AS (
        SELECT id FROM jobs WHERE status = 'queued' AND run_at <= now_
            AND CASE lane WHEN 'any' THEN true WHEN 'embed' THEN kind = 'embed' WHEN 'enrich' THEN kind = 'enrich' ELSE kind <> 'embed' END
            ORDER BY run_at, id LIMIT lim FOR UPDATE SKIP LOCKED)
    UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, locked_until = now_ + lease, updated_at = now_
        FROM picked WHERE j.id = picked.id
        RETURNING j.id, j.family_id, j.kind, j.entry_id, j.entry_version, j.attempts, j.max_attempts, j.transient_failures;
    IF FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY WITH picked AS (
        SELECT id FROM jobs WHERE status = 'running' AND locked_until < now_ AND attempts < max_attempts
            AND CASE lane WHEN 'any' THEN true WHEN 'embed' THEN kind = 'embed' WHEN 'enrich' THEN kind = 'enrich' ELSE kind <> 'embed' END
            ORDER BY locked_until, id LIMIT lim FOR UPDATE SKIP LOCKED)
    UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, locked_until = now_ + lease, updated_at = now_
        FROM picked WHERE j.id = picked.id
        RETURNING j.id, j.family_id, j.kind, j.entry_id, j.entry_version, j.attempts, j.max_attempts, j.transient_failures;
END $$;
