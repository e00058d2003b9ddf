-- Transient failures (model server down, timeouts, 429s) do not spend a job's
-- attempts; this counts them so their retries still back off.
ALTER TABLE jobs ADD COLUMN transient_failures bigint NOT NULL DEFAULT 0;
