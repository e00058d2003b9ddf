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
