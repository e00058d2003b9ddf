-- Transient failures (model server down, timeouts, 429s) do not spend a job's
-- attempts; this counts them so their retries still back off.
ALTER TABLE jobs ADD COLUMN transient_failures bigint NOT NULL DEFAULT 0;

-- A web client that lost a response retries with the same Idempotency-Key and
-- gets the first result instead of a second entry.
CREATE TABLE idempotency_keys (
    family_id   uuid NOT NULL REFERENCES families(id) ON DELETE CASCADE,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    status      bigint,
    body        text,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (family_id, key)
);
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_own ON idempotency_keys USING (family_id = dadly_family()) WITH CHECK (family_id = dadly_family());

-- `dadly token --revoke USER`: tokens issued before this instant are refused.
ALTER TABLE users ADD COLUMN tokens_valid_after timestamptz;

-- A long entry is embedded in pieces: `vector` holds them one after another,
-- each `chunk_dims` long (NULL: one vector, as before).
ALTER TABLE entry_vectors ADD COLUMN chunk_dims integer;
