//! Job workers: claim a due job from the durable queue in the `Store`, run it,
//! then mark it done or reschedule it with exponential backoff. Any number of
//! workers (in any number of instances) may drain one queue.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::agent::Agent;
use crate::store::Job;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Concurrent workers in this instance.
    pub concurrency: usize,
    /// How often an idle worker looks for due jobs (other instances' jobs, retries).
    pub poll: Duration,
    /// How long a claimed job is ours before another worker may take it over.
    pub lease: Duration,
    /// First retry delay; doubles each attempt up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 2,
            poll: Duration::from_millis(500),
            lease: Duration::from_secs(300),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(600),
        }
    }
}

/// The delay before retry `attempt` (1-based): base·2^(attempt-1), capped, ±20% jitter.
pub fn backoff(settings: &WorkerSettings, attempt: i64) -> Duration {
    let exp = settings.backoff_base.saturating_mul(1u32 << (attempt.clamp(1, 20) - 1) as u32);
    let capped = exp.min(settings.backoff_max);
    let jitter = rand::rng().random_range(0.8..1.2);
    capped.mul_f64(jitter)
}

/// Starts the workers; they stop when `shutdown` turns true (after the job in hand).
pub fn spawn_workers(agent: Arc<Agent>, settings: WorkerSettings, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    (0..settings.concurrency.max(1))
        .map(|_| {
            let (agent, settings, mut shutdown) = (agent.clone(), settings.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    if *shutdown.borrow() {
                        break;
                    }
                    let worked = run_one(&agent, &settings).await;
                    if !worked {
                        tokio::select! {
                            _ = agent.wake.notified() => {}
                            _ = tokio::time::sleep(settings.poll) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                }
            })
        })
        .collect()
}

/// Claims and runs one job; false when none was due (or the store failed).
pub async fn run_one(agent: &Agent, settings: &WorkerSettings) -> bool {
    let lease = chrono::Duration::from_std(settings.lease).unwrap_or(chrono::Duration::minutes(5));
    let job = match agent.b.store.claim_job(Utc::now(), lease).await {
        Ok(Some(job)) => job,
        Ok(None) => return false,
        Err(e) => {
            tracing::warn!(error = %e, "could not claim a job");
            return false;
        }
    };
    finish(agent, settings, &job, agent.run_job(&job).await).await;
    true
}

async fn finish(agent: &Agent, settings: &WorkerSettings, job: &Job, result: Result<(), crate::pipeline::JobError>) {
    let kind = job.kind.as_str();
    let store = &agent.b.store;
    let recorded = match result {
        Ok(()) => {
            agent.b.metrics.inc("dadly_jobs_total", &[("kind", kind), ("outcome", "done")]);
            tracing::info!(job.id = %job.id, job.kind = kind, entry.id = %job.entry_id, job.attempt = job.attempts, "job done");
            store.complete_job(job.id).await
        }
        Err(crate::pipeline::JobError::Waiting(why)) => {
            agent.b.metrics.inc("dadly_jobs_total", &[("kind", kind), ("outcome", "waiting")]);
            tracing::info!(job.id = %job.id, job.kind = kind, entry.id = %job.entry_id, reason = %why, "job waits");
            store.defer_job(job.id, crate::pipeline::wait_until()).await
        }
        Err(e) if job.attempts >= job.max_attempts => {
            agent.b.metrics.inc("dadly_jobs_total", &[("kind", kind), ("outcome", "failed")]);
            tracing::error!(job.id = %job.id, job.kind = kind, entry.id = %job.entry_id, error = %e, "job failed for good");
            store.fail_job(job.id, &e.to_string(), None).await
        }
        Err(e) => {
            let delay = backoff(settings, job.attempts);
            agent.b.metrics.inc("dadly_jobs_total", &[("kind", kind), ("outcome", "retry")]);
            tracing::warn!(job.id = %job.id, job.kind = kind, entry.id = %job.entry_id, error = %e, job.retry_in_ms = delay.as_millis() as u64, "job will retry");
            let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            store.fail_job(job.id, &e.to_string(), Some(at)).await
        }
    };
    if let Err(e) = recorded {
        // The lease runs out and another worker takes the job again; jobs are idempotent.
        tracing::warn!(job.id = %job.id, error = %e, "could not record job outcome");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = WorkerSettings { backoff_base: Duration::from_secs(2), backoff_max: Duration::from_secs(60), ..Default::default() };
        let d1 = backoff(&s, 1).as_secs_f64();
        let d3 = backoff(&s, 3).as_secs_f64();
        let d10 = backoff(&s, 10).as_secs_f64();
        assert!((1.6..=2.4).contains(&d1), "{d1}");
        assert!((6.4..=9.6).contains(&d3), "{d3}");
        assert!((48.0..=72.0).contains(&d10), "{d10}");
    }
}
