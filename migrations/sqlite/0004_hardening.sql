-- Transient failures (model server down, timeouts, 429s) do not spend a job's
-- attempts; this counts them so their retries still back off.
ALTER TABLE jobs ADD COLUMN transient_failures INTEGER NOT NULL DEFAULT 0;

-- A web client that lost a response retries with the same Idempotency-Key and
-- gets the first result instead of a second entry.
CREATE TABLE idempotency_keys (
    family_id   TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER,
    body        TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (family_id, key)
);

-- `dadly token --revoke USER`: tokens issued before this instant (ms) are refused.
ALTER TABLE users ADD COLUMN tokens_valid_after INTEGER;
