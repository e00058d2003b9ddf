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
use crate::pipeline::{JobError, Retry};
use crate::store::{Job, JobKind, JobLane};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Concurrent workers in this instance.
    pub concurrency: usize,
    /// How often an idle worker looks for due jobs (other instances' jobs, retries).
    pub poll: Duration,
    /// How long a claimed job is ours without a heartbeat. Workers renew it
    /// every third of it while the job runs, so a dead instance's jobs are
    /// taken over within one lease.
    pub lease: Duration,
    /// The longest one attempt may run before it is stopped and counted as failed.
    pub job_timeout: Duration,
    /// First retry delay; doubles each attempt up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Workers that only embed, each taking up to `embed_batch` jobs at once
    /// (one embeddings call, one write per family), so an entry becomes
    /// searchable without waiting behind enrichment or transcription.
    pub embed_workers: usize,
    pub embed_batch: usize,
    /// Enrichment jobs a general worker takes at once: when the job it
    /// claims is an enrichment, it claims up to this many more-1 and runs
    /// them as one batch (one read and one write per family).
    pub enrich_batch: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 2,
            poll: Duration::from_millis(500),
            lease: Duration::from_secs(15),
            job_timeout: Duration::from_secs(300),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(600),
            embed_workers: 1,
            embed_batch: 32,
            enrich_batch: 16,
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
/// `concurrency` workers take every job but embedding; `embed_workers` take
/// embedding jobs in batches.
pub fn spawn_workers(agent: Arc<Agent>, settings: WorkerSettings, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let lanes = std::iter::repeat_n(JobLane::Other, settings.concurrency.max(1)).chain(std::iter::repeat_n(JobLane::Embed, settings.embed_workers.max(1)));
    lanes
        .map(|lane| {
            let (agent, settings, mut shutdown) = (agent.clone(), settings.clone(), shutdown.clone());
            tokio::spawn(async move {
                let mut burial = Burial::default();
                loop {
                    if *shutdown.borrow() {
                        break;
                    }
                    burial.maybe(&agent, &settings).await;
                    let worked = match lane {
                        JobLane::Embed => run_batch(&agent, &settings).await,
                        _ => run_one(&agent, &settings, lane).await,
                    };
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

/// Dead-lettering of jobs abandoned on every attempt, at most every third of
/// a lease per worker (a lease cannot run out faster), not on every claim:
/// on SQLite each look is a write.
#[derive(Default)]
struct Burial {
    last: Option<tokio::time::Instant>,
}

impl Burial {
    async fn maybe(&mut self, agent: &Agent, settings: &WorkerSettings) {
        if self.last.is_some_and(|t| t.elapsed() < settings.lease / 3) {
            return;
        }
        self.last = Some(tokio::time::Instant::now());
        match agent.b.store.bury_abandoned_jobs(Utc::now()).await {
            Ok(0) => {}
            Ok(n) => {
                agent.b.metrics.add("dadly_jobs_total", &[("kind", "any"), ("outcome", "dead_letter")], n as f64);
                tracing::error!(jobs = n, "jobs abandoned by their workers on every attempt were marked failed");
            }
            Err(e) => tracing::warn!(error = %e, "could not look for abandoned jobs"),
        }
    }
}

/// How often housekeeping runs, and how old what it deletes must be.
#[derive(Debug, Clone)]
pub struct Housekeeping {
    pub every: Duration,
    /// Processed update ids, finished jobs, chat turns and idempotency keys older than this go.
    pub keep: chrono::Duration,
    /// Local trace files older than this go.
    pub keep_traces: chrono::Duration,
    /// Raw audio of transcribed voice notes older than this goes (`None`: kept).
    pub keep_audio: Option<chrono::Duration>,
}

impl Default for Housekeeping {
    fn default() -> Self {
        Self { every: Duration::from_secs(24 * 3600), keep: chrono::Duration::days(30), keep_traces: chrono::Duration::days(30), keep_audio: None }
    }
}

/// Runs housekeeping shortly after start and then every `every`, until
/// `shutdown`. Every instance may run it: the deletes are idempotent.
pub fn spawn_housekeeping(agent: Arc<Agent>, settings: Housekeeping, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut next = tokio::time::Instant::now() + Duration::from_secs(5).min(settings.every);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
            housekeep(&agent, &settings).await;
            next = tokio::time::Instant::now() + settings.every;
        }
    })
}

/// Sends due daily prompts every `every` until `shutdown` (each instance may: a
/// parent's day is claimed before their prompt goes).
pub fn spawn_prompts(agent: Arc<Agent>, every: Duration, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
            agent.send_daily_prompts(Utc::now()).await;
        }
    })
}

/// One round of housekeeping; what it deleted is logged and counted.
pub async fn housekeep(agent: &Agent, settings: &Housekeeping) {
    let now = Utc::now();
    match agent.b.store.prune(now - settings.keep).await {
        Ok(counts) => {
            for (what, n) in &counts {
                agent.b.metrics.add("dadly_pruned_total", &[("what", what)], *n as f64);
            }
            tracing::info!(pruned = ?counts, "housekeeping done");
        }
        Err(e) => tracing::warn!(error = %e, "housekeeping failed; next round will try again"),
    }
    let files = agent.b.tracer.sink().prune_before((now - settings.keep_traces).date_naive()).await;
    agent.b.metrics.add("dadly_pruned_total", &[("what", "trace_files")], files as f64);
    if let Some(keep) = settings.keep_audio {
        match agent.b.store.expired_audio(now - keep).await {
            Ok(expired) => {
                for (family_id, media_id, key) in expired {
                    if let Err(e) = agent.b.blobs.delete(family_id, &key).await {
                        tracing::warn!(error = %e, "could not delete expired audio; next round will try again");
                        continue;
                    }
                    if let Err(e) = agent.b.store.forget_media_blob(family_id, media_id).await {
                        tracing::warn!(error = %e, "could not record deleted audio");
                    }
                    agent.b.metrics.inc("dadly_pruned_total", &[("what", "audio")]);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not look for expired audio"),
        }
    }
    agent.age_notices(now.date_naive()).await;
}

/// Claims and runs one job of `lane`; false when none was due (or the store failed).
/// An enrichment job brings up to `enrich_batch - 1` more waiting ones with
/// it, run as one batch.
///
/// The job runs in its own task under a time limit while this worker renews
/// its lease: a panic or a hang is one failed attempt, never a dead worker.
pub async fn run_one(agent: &Arc<Agent>, settings: &WorkerSettings, lane: JobLane) -> bool {
    let lease = chrono::Duration::from_std(settings.lease).unwrap_or(chrono::Duration::seconds(15));
    let job = match agent.b.store.claim_jobs(Utc::now(), lease, lane, 1).await {
        Ok(jobs) => match jobs.into_iter().next() {
            Some(job) => job,
            None => return false,
        },
        Err(e) => {
            tracing::warn!(error = %e, "could not claim a job");
            return false;
        }
    };
    if job.kind == JobKind::Enrich && settings.enrich_batch > 1 {
        let mut jobs = vec![job];
        match agent.b.store.claim_jobs(Utc::now(), lease, JobLane::Enrich, settings.enrich_batch - 1).await {
            Ok(more) => jobs.extend(more),
            Err(e) => tracing::warn!(error = %e, "could not claim more enrichment jobs; enriching one"),
        }
        run_claimed_batch(agent, settings, jobs).await;
        return true;
    }
    let result = run_isolated(agent, settings, &job).await;
    finish(agent, settings, &job, result.as_ref().map(|_| ())).await;
    true
}

/// Claims up to `embed_batch` embedding jobs and runs them as one batch.
/// False when none was due.
pub async fn run_batch(agent: &Arc<Agent>, settings: &WorkerSettings) -> bool {
    let lease = chrono::Duration::from_std(settings.lease).unwrap_or(chrono::Duration::seconds(15));
    let jobs = match agent.b.store.claim_jobs(Utc::now(), lease, JobLane::Embed, settings.embed_batch.max(1)).await {
        Ok(jobs) if jobs.is_empty() => return false,
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::warn!(error = %e, "could not claim embedding jobs");
            return false;
        }
    };
    run_claimed_batch(agent, settings, jobs).await;
    true
}

/// Runs claimed jobs of one batched kind: those on their first attempt as one
/// batch, and beside it each retried job as a batch of its own. Jobs in a
/// batch share its writes, so one row a write refuses fails all of them; on
/// their next attempt each runs alone, and only that row's job keeps failing.
async fn run_claimed_batch(agent: &Arc<Agent>, settings: &WorkerSettings, jobs: Vec<Job>) {
    let (first, retried): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.attempts <= 1);
    let mut batches: Vec<Vec<Job>> = retried.into_iter().map(|j| vec![j]).collect();
    if !first.is_empty() {
        batches.insert(0, first);
    }
    futures_util::future::join_all(batches.into_iter().map(|batch| run_one_batch(agent, settings, batch))).await;
}

/// Runs claimed jobs as one batch, in its own task under the time limit while
/// the worker renews every lease; the ones that succeed are completed in one write.
async fn run_one_batch(agent: &Arc<Agent>, settings: &WorkerSettings, jobs: Vec<Job>) {
    let kind = jobs.first().map(|j| j.kind.as_str()).unwrap_or("none");
    agent.b.metrics.inc("dadly_job_batches_total", &[("kind", kind)]);
    agent.b.metrics.add("dadly_job_batch_jobs_total", &[("kind", kind)], jobs.len() as f64);
    let outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let work = {
        let (agent, jobs, outcomes) = (agent.clone(), jobs.clone(), outcomes.clone());
        async move {
            let done = agent.run_batch(&jobs).await;
            *outcomes.lock().unwrap_or_else(|p| p.into_inner()) = done;
            Ok(())
        }
    };
    let every = (settings.lease / 3).max(Duration::from_millis(50));
    let whole = guarded(work, settings.job_timeout, every, || async {
        let until = Utc::now() + chrono::Duration::from_std(settings.lease).unwrap_or_default();
        for job in &jobs {
            if let Err(e) = agent.b.store.extend_lease(job.id, until).await {
                tracing::warn!(job.id = %job.id, error = %e, "could not renew a job's lease");
            }
        }
    })
    .await;
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|p| p.into_inner()));
    match whole {
        // A panic or a hang stops the whole batch: one failed attempt for each job.
        Err(e) => {
            for job in &jobs {
                finish(agent, settings, job, Err(&e)).await;
            }
        }
        Ok(()) => {
            let mut done = Vec::new();
            for (job, outcome) in jobs.iter().zip(outcomes) {
                match outcome {
                    Ok(what) => {
                        agent.b.metrics.inc("dadly_jobs_total", &[("kind", job.kind.as_str()), ("outcome", "done")]);
                        tracing::info!(job.id = %job.id, job.kind = job.kind.as_str(), entry.id = %job.entry_id, job.attempt = job.attempts, outcome = what, "job done");
                        done.push(job.id);
                    }
                    Err(e) => finish(agent, settings, job, Err(&e)).await,
                }
            }
            if let Err(e) = agent.b.store.complete_jobs(&done).await {
                // The leases run out and the jobs are taken again; they are idempotent.
                tracing::warn!(error = %e, jobs = done.len(), "could not record finished jobs");
            }
        }
    }
}

/// Runs the job in its own task with a time limit, heartbeating its lease.
async fn run_isolated(agent: &Arc<Agent>, settings: &WorkerSettings, job: &Job) -> Result<(), JobError> {
    let work = {
        let (agent, job) = (agent.clone(), job.clone());
        async move { agent.run_job(&job).await }
    };
    let every = (settings.lease / 3).max(Duration::from_millis(50));
    guarded(work, settings.job_timeout, every, || async {
        let until = Utc::now() + chrono::Duration::from_std(settings.lease).unwrap_or_default();
        match agent.b.store.extend_lease(job.id, until).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(job.id = %job.id, "lost the lease of a running job"),
            Err(e) => tracing::warn!(job.id = %job.id, error = %e, "could not renew a job's lease"),
        }
    })
    .await
}

/// Runs `work` in its own task: a panic becomes `Panicked`, running past
/// `timeout` aborts it as `TimedOut`, and `heartbeat` runs every `every` meanwhile.
pub(crate) async fn guarded<F, H, HF>(work: F, timeout: Duration, every: Duration, mut heartbeat: H) -> Result<(), JobError>
where
    F: Future<Output = Result<(), JobError>> + Send + 'static,
    H: FnMut() -> HF,
    HF: Future<Output = ()>,
{
    let task = tokio::spawn(work);
    let abort = task.abort_handle();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(task, deadline);
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            joined = &mut task => {
                return match joined {
                    Ok(result) => result,
                    Err(e) if e.is_panic() => {
                        let payload = e.into_panic();
                        let what = payload
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown panic".into());
                        Err(JobError::Panicked(what))
                    }
                    Err(_) => Err(JobError::Panicked("the job's task was cancelled".into())),
                };
            }
            _ = &mut deadline => {
                abort.abort();
                return Err(JobError::TimedOut(timeout));
            }
            _ = beat.tick() => heartbeat().await,
        }
    }
}

async fn finish(agent: &Agent, settings: &WorkerSettings, job: &Job, result: Result<(), &JobError>) {
    let kind = job.kind.as_str();
    let store = &agent.b.store;
    let outcome = |o: &str| agent.b.metrics.inc("dadly_jobs_total", &[("kind", kind), ("outcome", o)]);
    let recorded = match result {
        Ok(()) => {
            outcome("done");
            tracing::info!(job.id = %job.id, job.kind = kind, entry.id = %job.entry_id, job.attempt = job.attempts, "job done");
            store.complete_job(job.id).await
        }
        Err(JobError::Waiting(why)) => {
            outcome("waiting");
            tracing::info!(job.id = %job.id, job.kind = kind, entry.id = %job.entry_id, reason = %why, "job waits");
            store.defer_job(job.id, crate::pipeline::wait_until()).await
        }
        Err(e) if e.retry() == Retry::Transient => {
            // Not the job's fault: back off on how long the outage has lasted, spend no attempt.
            let delay = backoff(settings, job.transient_failures + 1);
            outcome("transient");
            tracing::warn!(job.id = %job.id, job.kind = kind, entry.id = %job.entry_id, error = %e, job.retry_in_ms = delay.as_millis() as u64, "job waits out an outage");
            store.retry_job_later(job.id, &e.to_string(), Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default()).await
        }
        Err(e) if e.retry() == Retry::Permanent || job.attempts >= job.max_attempts => {
            outcome("failed");
            tracing::error!(job.id = %job.id, job.kind = kind, entry.id = %job.entry_id, error = %e, job.attempt = job.attempts, "job failed for good");
            store.fail_job(job.id, &e.to_string(), None).await
        }
        Err(e) => {
            let delay = backoff(settings, job.attempts);
            outcome("retry");
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

    #[tokio::test]
    async fn a_panicking_job_is_a_failed_attempt_not_a_dead_worker() {
        let result = guarded(async { panic!("odd input") }, Duration::from_secs(5), Duration::from_secs(1), || async {}).await;
        assert!(matches!(&result, Err(JobError::Panicked(m)) if m == "odd input"), "{result:?}");
        assert_eq!(result.unwrap_err().retry(), Retry::Counted);
        // The worker's own task goes on: the same call works again.
        assert!(guarded(async { Ok(()) }, Duration::from_secs(5), Duration::from_secs(1), || async {}).await.is_ok());
    }

    #[tokio::test]
    async fn a_hanging_job_is_stopped_at_its_time_limit_and_heartbeats_meanwhile() {
        let beats = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (finished_tx, mut finished) = tokio::sync::oneshot::channel::<()>();
        let work = async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            let _ = finished_tx.send(());
            Ok(())
        };
        let counter = beats.clone();
        let result = guarded(work, Duration::from_millis(300), Duration::from_millis(40), || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async {}
        })
        .await;
        assert!(matches!(result, Err(JobError::TimedOut(_))), "{result:?}");
        assert!(beats.load(std::sync::atomic::Ordering::SeqCst) >= 2, "the lease was renewed while it ran");
        // The hung task was aborted, not left running.
        tokio::task::yield_now().await;
        assert!(matches!(finished.try_recv(), Err(tokio::sync::oneshot::error::TryRecvError::Closed)));
    }

    #[test]
    fn errors_are_classified_by_whether_retrying_can_help() {
        use crate::models::ModelError;
        assert_eq!(JobError::Model(ModelError::Unavailable("503".into())).retry(), Retry::Transient);
        assert_eq!(JobError::Model(ModelError::RateLimited).retry(), Retry::Transient);
        assert_eq!(JobError::Model(ModelError::Rejected("400 context too long".into())).retry(), Retry::Permanent);
        assert_eq!(JobError::Model(ModelError::BadResponse("not JSON".into())).retry(), Retry::Counted);
        assert_eq!(JobError::TimedOut(Duration::from_secs(1)).retry(), Retry::Counted);
    }

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
