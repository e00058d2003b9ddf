//! `PostgresStore`: the durable job queue: claim, finish, retry, defer.

use super::*;

#[async_trait]
impl JobQueue for PostgresStore {
    async fn enqueue_reindex(&self, tag: &str) -> StoreResult<u64> {
        let mut tx = self.worker_tx().await?;
        let done = sqlx::query(
            "INSERT INTO jobs (id, family_id, kind, entry_id, entry_version, dedupe_key, max_attempts, run_at, created_at, updated_at) \
             SELECT gen_random_uuid(), family_id, 'embed', entry_id, MAX(entry_version), 'reindex:' || $1 || ':' || entry_id, $2, now(), now(), now() \
             FROM jobs WHERE kind = 'embed' GROUP BY family_id, entry_id ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(tag)
        .bind(MAX_JOB_ATTEMPTS)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected())
    }
    async fn defer_job(&self, id: Uuid, run_at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.worker_tx().await?;
        sqlx::query("UPDATE jobs SET status = 'queued', attempts = GREATEST(attempts - 1, 0), run_at = $2, locked_until = NULL, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(run_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn claim_job(&self, now: DateTime<Utc>, lease: chrono::Duration) -> StoreResult<Option<Job>> {
        // Due jobs first (an index range on (status, run_at)); only when none is
        // due, a running job whose lease ran out. SKIP LOCKED hands each to one worker.
        let mut row = None;
        for due in [
            "SELECT id FROM jobs WHERE status = 'queued' AND run_at <= $1 ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
            "SELECT id FROM jobs WHERE status = 'running' AND locked_until < $1 AND attempts < max_attempts ORDER BY locked_until, id LIMIT 1 FOR UPDATE SKIP LOCKED",
        ] {
            let mut tx = self.worker_tx().await?;
            let sql = format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = $2, updated_at = $1 \
                 WHERE id = ({due}) RETURNING id, family_id, kind, entry_id, entry_version, attempts, max_attempts, transient_failures"
            );
            row = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(now + lease).fetch_optional(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            if row.is_some() {
                break;
            }
        }
        let Some(r) = row else { return Ok(None) };
        let kind: String = r.try_get("kind").map_err(map_err)?;
        Ok(Some(Job {
            id: r.try_get("id").map_err(map_err)?,
            family_id: r.try_get("family_id").map_err(map_err)?,
            kind: JobKind::parse(&kind).ok_or_else(|| StoreError::Conflict(format!("unknown job kind {kind}")))?,
            entry_id: r.try_get("entry_id").map_err(map_err)?,
            entry_version: r.try_get("entry_version").map_err(map_err)?,
            attempts: r.try_get("attempts").map_err(map_err)?,
            max_attempts: r.try_get("max_attempts").map_err(map_err)?,
            transient_failures: r.try_get("transient_failures").map_err(map_err)?,
        }))
    }
    async fn bury_abandoned_jobs(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.worker_tx().await?;
        let done = sqlx::query(
            "UPDATE jobs SET status = 'failed', locked_until = NULL, updated_at = $1,              last_error = 'abandoned: its worker stopped during each of ' || attempts || ' attempts'              WHERE status = 'running' AND locked_until < $1 AND attempts >= max_attempts",
        )
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected())
    }
    async fn extend_lease(&self, id: Uuid, locked_until: DateTime<Utc>) -> StoreResult<bool> {
        let mut tx = self.worker_tx().await?;
        let done = sqlx::query("UPDATE jobs SET locked_until = $2 WHERE id = $1 AND status = 'running'")
            .bind(id)
            .bind(locked_until)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
    async fn retry_job_later(&self, id: Uuid, error: &str, run_at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.worker_tx().await?;
        sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = GREATEST(attempts - 1, 0), transient_failures = transient_failures + 1,              run_at = $3, locked_until = NULL, last_error = $2, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .bind(run_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn complete_job(&self, id: Uuid) -> StoreResult<()> {
        let mut tx = self.worker_tx().await?;
        sqlx::query("UPDATE jobs SET status = 'done', locked_until = NULL, last_error = NULL, updated_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn fail_job(&self, id: Uuid, error: &str, retry_at: Option<DateTime<Utc>>) -> StoreResult<()> {
        let mut tx = self.worker_tx().await?;
        sqlx::query(
            "UPDATE jobs SET status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'queued' END, \
             run_at = COALESCE($3, run_at), locked_until = NULL, last_error = $2, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .bind(retry_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
    async fn queue_depth(&self) -> StoreResult<QueueDepth> {
        let mut tx = self.worker_tx().await?;
        let rows = sqlx::query("SELECT status, COUNT(*) AS n, MIN(run_at) AS oldest FROM jobs WHERE status IN ('queued', 'running', 'failed') GROUP BY status")
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let mut depth = QueueDepth::default();
        for r in rows {
            let status: String = r.try_get("status").map_err(map_err)?;
            let n: i64 = r.try_get("n").map_err(map_err)?;
            match status.as_str() {
                "queued" => {
                    depth.queued = n;
                    depth.oldest_due = r.try_get("oldest").map_err(map_err)?;
                }
                "running" => depth.running = n,
                _ => depth.failed = n,
            }
        }
        Ok(depth)
    }
    async fn job_counts(&self, family_id: Option<FamilyId>) -> StoreResult<JobCounts> {
        let mut tx = match family_id {
            Some(f) => self.family_tx(f).await?,
            None => self.worker_tx().await?,
        };
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM jobs WHERE ($1::uuid IS NULL OR family_id = $1) GROUP BY status")
            .bind(family_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
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
