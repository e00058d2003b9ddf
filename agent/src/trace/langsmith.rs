//! `LangSmithSink`: sends finished runs to LangSmith's batch ingestion API
//! (`POST {endpoint}/runs/batch` with `{"post": [...], "patch": []}` and an
//! `x-api-key` header). Never on the request path: runs wait in a bounded
//! in-memory queue, go out in batches, are retried with backoff on 429/5xx and
//! network errors, and are dropped (and counted) when the queue is full.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::{Run, TraceSink};
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct LangSmithSettings {
    pub endpoint: String,
    pub api_key: String,
    /// Runs waiting to be sent before new ones are dropped.
    pub queue_bound: usize,
    pub batch_size: usize,
    /// How long a partial batch waits for more runs.
    pub batch_interval: Duration,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub timeout: Duration,
}

impl std::fmt::Debug for LangSmithSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LangSmithSettings")
            .field("endpoint", &self.endpoint)
            .field("api_key", &crate::REDACTED)
            .field("queue_bound", &self.queue_bound)
            .field("batch_size", &self.batch_size)
            .field("batch_interval", &self.batch_interval)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base", &self.backoff_base)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl LangSmithSettings {
    pub fn new(endpoint: &str, api_key: &str) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            api_key: api_key.to_string(),
            queue_bound: 10_000,
            batch_size: 100,
            batch_interval: Duration::from_secs(1),
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
        }
    }
}

enum Message {
    Run(Box<Run>),
    Flush(oneshot::Sender<()>),
}

pub struct LangSmithSink {
    tx: mpsc::Sender<Message>,
    metrics: Arc<Metrics>,
}

impl LangSmithSink {
    /// Starts the sender task; needs a Tokio runtime.
    pub fn start(settings: LangSmithSettings, metrics: Arc<Metrics>) -> Self {
        let (tx, rx) = mpsc::channel(settings.queue_bound.max(1));
        let http = reqwest::Client::builder().timeout(settings.timeout).build().unwrap_or_default();
        tokio::spawn(sender(settings, http, rx, metrics.clone()));
        Self { tx, metrics }
    }
}

async fn sender(settings: LangSmithSettings, http: reqwest::Client, mut rx: mpsc::Receiver<Message>, metrics: Arc<Metrics>) {
    let mut batch: Vec<Run> = Vec::new();
    loop {
        let msg = if batch.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(settings.batch_interval, rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    send(&settings, &http, std::mem::take(&mut batch), &metrics).await;
                    continue;
                }
            }
        };
        match msg {
            Some(Message::Run(run)) => {
                batch.push(*run);
                if batch.len() >= settings.batch_size {
                    send(&settings, &http, std::mem::take(&mut batch), &metrics).await;
                }
            }
            Some(Message::Flush(done)) => {
                if !batch.is_empty() {
                    send(&settings, &http, std::mem::take(&mut batch), &metrics).await;
                }
                let _ = done.send(());
            }
            None => {
                if !batch.is_empty() {
                    send(&settings, &http, std::mem::take(&mut batch), &metrics).await;
                }
                return;
            }
        }
    }
}

/// Posts one batch, retrying 429, 5xx and network errors with backoff.
async fn send(settings: &LangSmithSettings, http: &reqwest::Client, runs: Vec<Run>, metrics: &Metrics) {
    let count = runs.len();
    let body = json!({ "post": runs, "patch": [] });
    let url = format!("{}/runs/batch", settings.endpoint);
    for attempt in 1..=settings.max_attempts {
        let result = http.post(&url).header("x-api-key", &settings.api_key).json(&body).send().await;
        let retry_after = match result {
            Ok(r) if r.status().is_success() => {
                metrics.add("dadly_traces_sent_total", &[], count as f64);
                return;
            }
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                tracing::warn!(http.status = r.status().as_u16(), traces.attempt = attempt, "LangSmith refused a batch; will retry");
                r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()).map(Duration::from_secs)
            }
            Ok(r) => {
                // Another 4xx will not get better by retrying (bad key, bad payload).
                tracing::error!(http.status = r.status().as_u16(), traces.runs = count, "LangSmith rejected a batch; dropping it");
                metrics.add("dadly_traces_dropped_total", &[("reason", "rejected")], count as f64);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, traces.attempt = attempt, "could not reach LangSmith; will retry");
                None
            }
        };
        if attempt < settings.max_attempts {
            let backoff = settings.backoff_base.saturating_mul(1 << (attempt - 1));
            tokio::time::sleep(retry_after.unwrap_or(backoff).min(Duration::from_secs(30))).await;
        }
    }
    tracing::error!(traces.runs = count, "giving up on a trace batch after retries");
    metrics.add("dadly_traces_dropped_total", &[("reason", "unreachable")], count as f64);
}

#[async_trait]
impl TraceSink for LangSmithSink {
    fn backend(&self) -> &'static str {
        "langsmith"
    }

    fn submit(&self, run: Run) {
        if self.tx.try_send(Message::Run(Box::new(run))).is_err() {
            self.metrics.inc("dadly_traces_dropped_total", &[("reason", "queue_full")]);
            tracing::warn!("trace queue full; run dropped");
        }
    }

    async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{RunType, Tracer};

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_blocking() {
        // An endpoint that accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let metrics = Arc::new(Metrics::default());
        let settings = LangSmithSettings { queue_bound: 2, batch_size: 1, ..LangSmithSettings::new(&format!("http://{addr}"), "k") };
        let sink = Arc::new(LangSmithSink::start(settings, metrics.clone()));
        let tracer = Tracer::new(sink, "p", true);
        let started = std::time::Instant::now();
        for _ in 0..10 {
            tracer.root("message", RunType::Chain, serde_json::json!({})).end(serde_json::json!({}));
            tokio::task::yield_now().await;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "submitting never waits for the network");
        let dropped = metrics.get("dadly_traces_dropped_total", &[("reason", "queue_full")]);
        assert!((7.0..=8.0).contains(&dropped), "dropped {dropped}");
    }
}
