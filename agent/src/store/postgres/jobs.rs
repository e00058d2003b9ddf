//! `PostgresStore`: the durable job queue. Workers act across families, so
//! every call here goes through a `SECURITY DEFINER` function of the schema
//! owner (`0005_runtime_role.sql`) that returns only a job's ids and counters;
//! the runtime role itself can see no other family's rows.

use super::*;

fn job_from_row(r: &PgRow) -> StoreResult<Job> {
    let kind: String = r.try_get("kind").map_err(map_err)?;
    Ok(Job {
        id: r.try_get("id").map_err(map_err)?,
        family_id: r.try_get("family_id").map_err(map_err)?,
        kind: JobKind::parse(&kind).ok_or_else(|| StoreError::Conflict(format!("unknown job kind {kind}")))?,
        entry_id: r.try_get("entry_id").map_err(map_err)?,
        entry_version: r.try_get("entry_version").map_err(map_err)?,
        attempts: r.try_get("attempts").map_err(map_err)?,
        max_attempts: r.try_get("max_attempts").map_err(map_err)?,
        transient_failures: r.try_get("transient_failures").map_err(map_err)?,
    })
}

fn counts_from_rows(rows: &[PgRow]) -> StoreResult<JobCounts> {
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

#[async_trait]
impl JobQueue for PostgresStore {
    async fn enqueue_reindex(&self, tag: &str) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT dadly_enqueue_reindex($1, $2)").bind(tag).bind(MAX_JOB_ATTEMPTS).fetch_one(&self.pool).await.map_err(map_err)?;
        Ok(n.max(0) as u64)
    }
    async fn defer_job(&self, id: Uuid, run_at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("SELECT dadly_defer_job($1, $2)").bind(id).bind(run_at).execute(&self.pool).await.map_err(map_err).map(|_| ())
    }
    async fn claim_jobs(&self, now: DateTime<Utc>, lease: chrono::Duration, lane: JobLane, limit: usize) -> StoreResult<Vec<Job>> {
        let lease = sqlx::postgres::types::PgInterval::try_from(lease).map_err(StoreError::Backend)?;
        let rows = sqlx::query("SELECT * FROM dadly_claim_jobs($1, $2, $3, $4)")
            .bind(now)
            .bind(lease)
            .bind(lane.as_str())
            .bind(limit.clamp(1, i32::MAX as usize) as i32)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(job_from_row).collect()
    }
    async fn bury_abandoned_jobs(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT dadly_bury_abandoned_jobs($1)").bind(now).fetch_one(&self.pool).await.map_err(map_err)?;
        Ok(n.max(0) as u64)
    }
    async fn extend_lease(&self, id: Uuid, locked_until: DateTime<Utc>) -> StoreResult<bool> {
        sqlx::query_scalar("SELECT dadly_extend_lease($1, $2)").bind(id).bind(locked_until).fetch_one(&self.pool).await.map_err(map_err)
    }
    async fn retry_job_later(&self, id: Uuid, error: &str, run_at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("SELECT dadly_retry_job_later($1, $2, $3)").bind(id).bind(error).bind(run_at).execute(&self.pool).await.map_err(map_err).map(|_| ())
    }
    async fn complete_job(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("SELECT dadly_complete_job($1)").bind(id).execute(&self.pool).await.map_err(map_err).map(|_| ())
    }
    async fn complete_jobs(&self, ids: &[Uuid]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query("SELECT dadly_complete_jobs($1)").bind(ids).execute(&self.pool).await.map_err(map_err).map(|_| ())
    }
    async fn fail_job(&self, id: Uuid, error: &str, retry_at: Option<DateTime<Utc>>) -> StoreResult<()> {
        sqlx::query("SELECT dadly_fail_job($1, $2, $3)").bind(id).bind(error).bind(retry_at).execute(&self.pool).await.map_err(map_err).map(|_| ())
    }
    async fn job_counts(&self, family_id: Option<FamilyId>) -> StoreResult<JobCounts> {
        let rows = match family_id {
            Some(f) => {
                let mut tx = self.family_tx(f).await?;
                let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM jobs WHERE family_id = $1 GROUP BY status")
                    .bind(f)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                rows
            }
            None => sqlx::query("SELECT status, n FROM dadly_job_counts()").fetch_all(&self.pool).await.map_err(map_err)?,
        };
        counts_from_rows(&rows)
    }
    async fn prune(&self, before: DateTime<Utc>) -> StoreResult<Vec<(String, u64)>> {
        let rows = sqlx::query("SELECT what, n FROM dadly_prune($1)").bind(before).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("what").map_err(map_err)?, r.try_get::<i64, _>("n").map_err(map_err)?.max(0) as u64)))
            .collect()
    }
    async fn queue_depth(&self) -> StoreResult<QueueDepth> {
        let rows = sqlx::query("SELECT status, n, oldest FROM dadly_queue_depth()").fetch_all(&self.pool).await.map_err(map_err)?;
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
}
