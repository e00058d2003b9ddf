-- Housekeeping also deletes capsule drafts nobody confirmed, a day after they were written.
CREATE OR REPLACE FUNCTION dadly_prune(before timestamptz) RETURNS TABLE (what text, n bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE k bigint;
BEGIN
    DELETE FROM processed_updates WHERE created_at < before;
    GET DIAGNOSTICS k = ROW_COUNT; what := 'processed_updates'; n := k; RETURN NEXT;
    DELETE FROM jobs WHERE status = 'done' AND updated_at < before;
    GET DIAGNOSTICS k = ROW_COUNT; what := 'jobs'; n := k; RETURN NEXT;
    DELETE FROM chat_turns WHERE created_at < before;
    GET DIAGNOSTICS k = ROW_COUNT; what := 'chat_turns'; n := k; RETURN NEXT;
    DELETE FROM idempotency_keys WHERE created_at < before;
    GET DIAGNOSTICS k = ROW_COUNT; what := 'idempotency_keys'; n := k; RETURN NEXT;
    DELETE FROM time_capsules WHERE NOT confirmed AND created_at < now() - interval '1 day';
    GET DIAGNOSTICS k = ROW_COUNT; what := 'capsule_drafts'; n := k; RETURN NEXT;
END $$;
CREATE POLICY time_capsules_prune_find ON time_capsules FOR SELECT USING (dadly_is_worker());
CREATE POLICY time_capsules_prune ON time_capsules FOR DELETE USING (dadly_is_worker());
REVOKE ALL ON FUNCTION dadly_prune(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dadly_prune(timestamptz) TO dadly_runtime;
