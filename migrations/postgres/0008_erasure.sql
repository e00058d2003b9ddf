-- That an erasure happened (who, when, what kind, how many of each), never
-- what was erased. Kept after a family's own erasure: no foreign key.
CREATE TABLE erasures (
    id         uuid PRIMARY KEY,
    family_id  uuid NOT NULL,
    actor_id   uuid NOT NULL,
    kind       text NOT NULL,
    counts     jsonb NOT NULL,
    created_at timestamptz NOT NULL
);
ALTER TABLE erasures ENABLE ROW LEVEL SECURITY;
ALTER TABLE erasures FORCE ROW LEVEL SECURITY;
CREATE POLICY erasures_own ON erasures USING (family_id = dadly_family()) WITH CHECK (family_id = dadly_family());

-- The owner is told once when a child turns 14 that the child may ask for erasure.
ALTER TABLE members ADD COLUMN age_notice_at timestamptz;

-- Retention, across families, for the daily job (ids and keys only).
CREATE FUNCTION dadly_expired_audio(before timestamptz) RETURNS TABLE (family_id uuid, media_id uuid, blob_key text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT m.family_id, m.id, m.blob_key FROM media m JOIN entries e ON e.id = m.entry_id
    WHERE m.kind = 'voice' AND m.blob_key <> '' AND e.status = 'ready' AND m.created_at < before
$$;
-- Children born on or before `born_by` (14 today or older) whose owner was not told yet.
CREATE FUNCTION dadly_children_of_age(born_by date) RETURNS TABLE (family_id uuid, member_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT family_id, id FROM members WHERE birth_date IS NOT NULL AND birth_date <= born_by AND age_notice_at IS NULL
$$;
CREATE POLICY media_retention_find ON media FOR SELECT USING (dadly_is_worker());
CREATE POLICY entries_retention_find ON entries FOR SELECT USING (dadly_is_worker());
CREATE POLICY members_retention_find ON members FOR SELECT USING (dadly_is_worker());
REVOKE ALL ON FUNCTION dadly_expired_audio(timestamptz), dadly_children_of_age(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dadly_expired_audio(timestamptz), dadly_children_of_age(date) TO dadly_runtime;

-- Export files kept for a download link (the Telegram bot's /export): they
-- hold copies of entries, so erasure and deletion remove them too.
CREATE TABLE export_files (
    family_id  uuid NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    blob_key   text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (family_id, blob_key)
);
ALTER TABLE export_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE export_files FORCE ROW LEVEL SECURITY;
CREATE POLICY export_files_own ON export_files USING (family_id = dadly_family()) WITH CHECK (family_id = dadly_family());
