-- Two roles (see README, "Postgres roles"):
--   the owner, who runs these migrations and owns every table and function;
--   the runtime role the service logs in as: a member of `dadly_runtime`,
--   neither superuser nor BYPASSRLS, owning nothing — so it cannot switch
--   row-level security off, drop a policy or replace a function.
--
-- Until now any session could `SET app.role = 'worker'` and read every
-- family's jobs. Cross-family work (claiming jobs, counting the queue,
-- housekeeping) now happens only inside the SECURITY DEFINER functions below,
-- owned by the owner: within them `current_user` is the owner while
-- `session_user` is still the runtime role, which nothing a session can SET
-- imitates. They return only what a worker needs (a job's ids and counters).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dadly_runtime') THEN
        CREATE ROLE dadly_runtime NOLOGIN;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION dadly_is_worker() RETURNS boolean LANGUAGE sql STABLE AS
$$ SELECT current_user <> session_user
          AND current_user = (SELECT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.oid = 'jobs'::regclass) $$;

-- The job's ids and counters, and nothing of what the family wrote.
CREATE TYPE dadly_job AS (
    id uuid, family_id uuid, kind text, entry_id uuid, entry_version bigint,
    attempts bigint, max_attempts bigint, transient_failures bigint
);

CREATE FUNCTION dadly_claim_job(now_ timestamptz, lease interval) RETURNS SETOF dadly_job
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE picked uuid;
BEGIN
    -- Due jobs first (an index range on (status, run_at)); only when none is
    -- due, a running job whose lease ran out with attempts left.
    SELECT id INTO picked FROM jobs WHERE status = 'queued' AND run_at <= now_
        ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF picked IS NULL THEN
        SELECT id INTO picked FROM jobs WHERE status = 'running' AND locked_until < now_ AND attempts < max_attempts
            ORDER BY locked_until, id LIMIT 1 FOR UPDATE SKIP LOCKED;
    END IF;
    IF picked IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = now_ + lease, updated_at = now_
        WHERE id = picked
        RETURNING id, family_id, kind, entry_id, entry_version, attempts, max_attempts, transient_failures;
END $$;

CREATE FUNCTION dadly_bury_abandoned_jobs(now_ timestamptz) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH buried AS (
        UPDATE jobs SET status = 'failed', locked_until = NULL, updated_at = now_,
            last_error = 'abandoned: its worker stopped during each of ' || attempts || ' attempts'
        WHERE status = 'running' AND locked_until < now_ AND attempts >= max_attempts
        RETURNING 1)
    SELECT count(*) FROM buried
$$;

CREATE FUNCTION dadly_extend_lease(job uuid, until timestamptz) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH renewed AS (UPDATE jobs SET locked_until = until WHERE id = job AND status = 'running' RETURNING 1)
    SELECT count(*) = 1 FROM renewed
$$;

CREATE FUNCTION dadly_complete_job(job uuid) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE jobs SET status = 'done', locked_until = NULL, last_error = NULL, updated_at = now() WHERE id = job
$$;

CREATE FUNCTION dadly_fail_job(job uuid, error text, retry_at timestamptz) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE jobs SET status = CASE WHEN retry_at IS NULL THEN 'failed' ELSE 'queued' END,
        run_at = COALESCE(retry_at, run_at), locked_until = NULL, last_error = error, updated_at = now()
    WHERE id = job
$$;

CREATE FUNCTION dadly_defer_job(job uuid, run_at_ timestamptz) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE jobs SET status = 'queued', attempts = GREATEST(attempts - 1, 0), run_at = run_at_, locked_until = NULL, updated_at = now()
    WHERE id = job
$$;

CREATE FUNCTION dadly_retry_job_later(job uuid, error text, run_at_ timestamptz) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE jobs SET status = 'queued', attempts = GREATEST(attempts - 1, 0), transient_failures = transient_failures + 1,
        run_at = run_at_, locked_until = NULL, last_error = error, updated_at = now()
    WHERE id = job
$$;

CREATE FUNCTION dadly_enqueue_reindex(tag text, max_attempts_ bigint) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH queued AS (
        INSERT INTO jobs (id, family_id, kind, entry_id, entry_version, dedupe_key, max_attempts, run_at, created_at, updated_at)
        SELECT gen_random_uuid(), family_id, 'embed', entry_id, MAX(entry_version), 'reindex:' || tag || ':' || entry_id, max_attempts_, now(), now(), now()
        FROM jobs WHERE kind = 'embed' GROUP BY family_id, entry_id
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING 1)
    SELECT count(*) FROM queued
$$;

-- Counts by state over every family (no row of any family is returned).
CREATE FUNCTION dadly_job_counts() RETURNS TABLE (status text, n bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT status, count(*) FROM jobs GROUP BY status
$$;

CREATE FUNCTION dadly_queue_depth() RETURNS TABLE (status text, n bigint, oldest timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT status, count(*), min(run_at) FROM jobs WHERE status IN ('queued', 'running', 'failed') GROUP BY status
$$;

-- Housekeeping: what is kept only for a while, in every family. Returns counts.
CREATE FUNCTION dadly_prune(before timestamptz) RETURNS TABLE (what text, n bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE k bigint;
BEGIN
    -- Row-level security binds the owner too (FORCE); the `_prune` policies
    -- below let these deletes through, and only inside this function.
    DELETE FROM processed_updates WHERE created_at < before;
    GET DIAGNOSTICS k = ROW_COUNT; what := 'processed_updates'; n := k; RETURN NEXT;
    DELETE FROM jobs WHERE status = 'done' AND updated_at < before;
    GET DIAGNOSTICS k = ROW_COUNT; what := 'jobs'; n := k; RETURN NEXT;
    DELETE FROM chat_turns WHERE created_at < before;
    GET DIAGNOSTICS k = ROW_COUNT; what := 'chat_turns'; n := k; RETURN NEXT;
    DELETE FROM idempotency_keys WHERE created_at < before;
    GET DIAGNOSTICS k = ROW_COUNT; what := 'idempotency_keys'; n := k; RETURN NEXT;
END $$;

-- Housekeeping may find and delete (nothing else) in these tables, and only
-- from inside dadly_prune, which runs as the owner (dadly_is_worker() is false
-- elsewhere). A DELETE with a WHERE needs the rows visible, hence both.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['processed_updates', 'chat_turns', 'idempotency_keys']
    LOOP
        EXECUTE format('CREATE POLICY %I ON %I FOR SELECT USING (dadly_is_worker())', t || '_prune_find', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR DELETE USING (dadly_is_worker())', t || '_prune', t);
    END LOOP;
END $$;

-- What the runtime role may do: read and write rows (policies decide which),
-- call the worker functions, check which migrations ran. Nothing else.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO dadly_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO dadly_runtime;
REVOKE INSERT, UPDATE, DELETE ON _sqlx_migrations FROM dadly_runtime;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO dadly_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO dadly_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO dadly_runtime;
