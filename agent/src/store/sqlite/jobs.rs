//! `SqliteStore`: the durable job queue: claim, finish, retry, defer.

use super::*;

#[async_trait]
impl JobQueue for SqliteStore {
    async fn enqueue_reindex(&self, tag: &str) -> StoreResult<u64> {
        let now = ms(Utc::now());
        // A random version-4-shaped UUID per row (SQLite has no uuid function).
        let done = sqlx::query(
            "INSERT INTO jobs (id, family_id, kind, entry_id, entry_version, dedupe_key, max_attempts, run_at, created_at, updated_at) \
             SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' || \
                    substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))), \
                    family_id, 'embed', entry_id, MAX(entry_version), 'reindex:' || $1 || ':' || entry_id, $2, $3, $3, $3 \
             FROM jobs WHERE kind = 'embed' GROUP BY family_id, entry_id ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(tag)
        .bind(MAX_JOB_ATTEMPTS)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
    async fn defer_job(&self, id: Uuid, run_at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE jobs SET status = 'queued', attempts = MAX(attempts - 1, 0), run_at = $2, locked_until = NULL, updated_at = $3 WHERE id = $1")
            .bind(id.to_string())
            .bind(ms(run_at))
            .bind(ms(Utc::now()))
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn claim_jobs(&self, now: DateTime<Utc>, lease: chrono::Duration, lane: JobLane, limit: usize) -> StoreResult<Vec<Job>> {
        // One UPDATE … RETURNING: SQLite serialises writers, so a job goes to one worker.
        // Due jobs first (an index range on (status, run_at)); only when none is
        // due, running jobs whose lease ran out (their worker died).
        let kinds = match lane {
            JobLane::Any => "",
            JobLane::Embed => "AND kind = 'embed'",
            JobLane::Other => "AND kind <> 'embed'",
            JobLane::Enrich => "AND kind = 'enrich'",
        };
        let mut rows = Vec::new();
        for due in [
            format!("SELECT id FROM jobs WHERE status = 'queued' AND run_at <= $1 {kinds} ORDER BY run_at, id LIMIT $3"),
            format!("SELECT id FROM jobs WHERE status = 'running' AND locked_until < $1 AND attempts < max_attempts {kinds} ORDER BY locked_until, id LIMIT $3"),
        ] {
            let sql = format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = $2, updated_at = $1 \
                 WHERE id IN ({due}) RETURNING id, family_id, kind, entry_id, entry_version, attempts, max_attempts, transient_failures"
            );
            rows = sqlx::query(AssertSqlSafe(sql)).bind(ms(now)).bind(ms(now + lease)).bind(limit.max(1) as i64).fetch_all(&self.writer).await.map_err(map_err)?;
            if !rows.is_empty() {
                break;
            }
        }
        let mut jobs = Vec::with_capacity(rows.len());
        for r in rows {
            let kind: String = r.try_get("kind").map_err(map_err)?;
            jobs.push(Job {
                id: uuid(&r, "id")?,
                family_id: uuid(&r, "family_id")?,
                kind: JobKind::parse(&kind).ok_or_else(|| StoreError::Conflict(format!("unknown job kind {kind}")))?,
                entry_id: uuid(&r, "entry_id")?,
                entry_version: r.try_get("entry_version").map_err(map_err)?,
                attempts: r.try_get("attempts").map_err(map_err)?,
                max_attempts: r.try_get("max_attempts").map_err(map_err)?,
                transient_failures: r.try_get("transient_failures").map_err(map_err)?,
            });
        }
        Ok(jobs)
    }
    async fn bury_abandoned_jobs(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'failed', locked_until = NULL, updated_at = $1,              last_error = 'abandoned: its worker stopped during each of ' || attempts || ' attempts'              WHERE status = 'running' AND locked_until < $1 AND attempts >= max_attempts",
        )
        .bind(ms(now))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
    async fn extend_lease(&self, id: Uuid, locked_until: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE jobs SET locked_until = $2 WHERE id = $1 AND status = 'running'")
            .bind(id.to_string())
            .bind(ms(locked_until))
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
    async fn retry_job_later(&self, id: Uuid, error: &str, run_at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = MAX(attempts - 1, 0), transient_failures = transient_failures + 1,              run_at = $3, locked_until = NULL, last_error = $2, updated_at = $4 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(error)
        .bind(ms(run_at))
        .bind(ms(Utc::now()))
        .execute(&self.writer)
        .await
        .map_err(map_err)
        .map(|_| ())
    }
    async fn complete_job(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("UPDATE jobs SET status = 'done', locked_until = NULL, last_error = NULL, updated_at = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(ms(Utc::now()))
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn complete_jobs(&self, ids: &[Uuid]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        sqlx::query("UPDATE jobs SET status = 'done', locked_until = NULL, last_error = NULL, updated_at = $2 WHERE id IN (SELECT value FROM json_each($1))")
            .bind(to_json(&list))
            .bind(ms(Utc::now()))
            .execute(&self.writer)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
    async fn fail_job(&self, id: Uuid, error: &str, retry_at: Option<DateTime<Utc>>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE jobs SET status = CASE WHEN $3 IS NULL THEN 'failed' ELSE 'queued' END, \
             run_at = COALESCE($3, run_at), locked_until = NULL, last_error = $2, updated_at = $4 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(error)
        .bind(retry_at.map(ms))
        .bind(ms(Utc::now()))
        .execute(&self.writer)
        .await
        .map_err(map_err)
        .map(|_| ())
    }
    async fn prune(&self, before: DateTime<Utc>) -> StoreResult<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for (what, sql) in [
            ("processed_updates", "DELETE FROM processed_updates WHERE created_at < $1"),
            ("jobs", "DELETE FROM jobs WHERE status = 'done' AND updated_at < $1"),
            ("chat_turns", "DELETE FROM chat_turns WHERE created_at < $1"),
            ("idempotency_keys", "DELETE FROM idempotency_keys WHERE created_at < $1"),
        ] {
            let done = sqlx::query(sql).bind(ms(before)).execute(&self.writer).await.map_err(map_err)?;
            out.push((what.to_string(), done.rows_affected()));
        }
        // Capsule drafts nobody confirmed (usable for 30 minutes) go after a day.
        let stale = ms(Utc::now() - chrono::Duration::days(1));
        let done = sqlx::query("DELETE FROM time_capsules WHERE confirmed = 0 AND created_at < $1").bind(stale).execute(&self.writer).await.map_err(map_err)?;
        out.push(("capsule_drafts".to_string(), done.rows_affected()));
        Ok(out)
    }
    async fn queue_depth(&self) -> StoreResult<QueueDepth> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n, MIN(run_at) AS oldest FROM jobs WHERE status IN ('queued', 'running', 'failed') GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut depth = QueueDepth::default();
        for r in rows {
            let status: String = r.try_get("status").map_err(map_err)?;
            let n: i64 = r.try_get("n").map_err(map_err)?;
            match status.as_str() {
                "queued" => {
                    depth.queued = n;
                    depth.oldest_due = r.try_get::<Option<i64>, _>("oldest").map_err(map_err)?.map(at);
                }
                "running" => depth.running = n,
                _ => depth.failed = n,
            }
        }
        Ok(depth)
    }
    async fn job_counts(&self, family_id: Option<FamilyId>) -> StoreResult<JobCounts> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM jobs WHERE ($1 IS NULL OR family_id = $1) GROUP BY status")
            .bind(family_id.map(|f| f.to_string()))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut counts = JobCounts::default();
        for r in rows {
            let status: String = r.try_get("status").map_err(map_err)?;
            let n: i64 = r.try_get("n").map_err(map_err)?;
            match status.as_str() {
                "queued" => counts.queued = n,
                "running" => counts.running = n,
                "done" => counts.done = n,
                _ => counts.failed += n,
            }
        }
        Ok(counts)
    }
}
