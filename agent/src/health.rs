//! Whether the model servers answer: what the last call to each capability
//! found (passive), and a cheap probe of each for readiness (active, cached).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::agent::Agent;
use crate::models::ModelError;

/// What is known of one capability's server.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Health {
    /// `None` until a call or probe has told.
    pub reachable: Option<bool>,
    /// Since when it has been failing, and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_since: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Per capability (`chat`, `embeddings`, `transcription`).
#[derive(Default)]
pub struct ModelHealth {
    seen: Mutex<HashMap<&'static str, Health>>,
    probed: Mutex<Option<(Instant, Readiness)>>,
}

impl ModelHealth {
    /// Notes a call's outcome: only outages count as down (a refused request
    /// or a malformed answer means the server is there).
    pub fn record(&self, capability: &'static str, outcome: Result<(), &ModelError>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let h = seen.entry(capability).or_default();
        match outcome {
            Err(e @ (ModelError::Unavailable(_) | ModelError::RateLimited)) => {
                if h.reachable != Some(false) {
                    h.down_since = Some(Utc::now());
                }
                h.reachable = Some(false);
                h.last_error = Some(e.to_string());
            }
            Err(ModelError::NotConfigured(_)) => {}
            _ => {
                h.reachable = Some(true);
                h.down_since = None;
                h.last_error = None;
            }
        }
    }

    pub fn get(&self, capability: &'static str) -> Health {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).get(capability).cloned().unwrap_or_default()
    }
}

/// What `/readyz` reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Readiness {
    /// Ready to take requests: the store, the vector index and the blob store
    /// answer. A model server being down does not make the service unready
    /// (entries are still kept and wait) unless `require_models` is set.
    pub ready: bool,
    pub store: &'static str,
    pub vector_index: &'static str,
    pub blob_store: &'static str,
    /// The backends that are down, by name (`store`, `vector_index`, `blob_store`, `chat`, …).
    pub down: Vec<&'static str>,
    pub models: HashMap<&'static str, &'static str>,
    /// The capabilities whose server did not answer.
    pub degraded: Vec<&'static str>,
}

/// How long one round of probes serves readiness checks.
const PROBE_TTL: Duration = Duration::from_secs(10);

impl Agent {
    /// Pings the store and probes each model server (at most every 10 s).
    pub async fn readiness(&self, require_models: bool) -> Readiness {
        let (store, index, blobs) = tokio::join!(self.b.store.ping(), self.b.index.ping(), self.b.blobs.ping());
        let up = |ok: bool| if ok { "up" } else { "down" };
        let backends = [("store", store.is_ok()), ("vector_index", index.is_ok()), ("blob_store", blobs.is_ok())];
        let finish = |models: HashMap<&'static str, &'static str>, degraded: Vec<&'static str>| {
            let mut down: Vec<&'static str> = backends.iter().filter(|(_, ok)| !ok).map(|(n, _)| *n).collect();
            if require_models {
                down.extend(degraded.iter().copied());
            }
            Readiness { ready: down.is_empty(), store: up(backends[0].1), vector_index: up(backends[1].1), blob_store: up(backends[2].1), down, models, degraded }
        };
        if let Some((at, cached)) = &*self.health.probed.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < PROBE_TTL
        {
            return finish(cached.models.clone(), cached.degraded.clone());
        }
        let (chat, embeddings, transcription) = tokio::join!(self.b.chat.probe(), self.b.embedder.probe(), self.b.transcriber.probe());
        let mut models = HashMap::new();
        let mut degraded = Vec::new();
        for (name, result) in [("chat", chat), ("embeddings", embeddings), ("transcription", transcription)] {
            let state = match &result {
                Ok(()) => "up",
                Err(ModelError::Rejected(_)) => "refused",
                Err(_) => "down",
            };
            if result.is_err() {
                degraded.push(name);
            }
            // A probe is as good as a call for what status says.
            self.health.record(name, result.as_ref().map(|_| ()));
            models.insert(name, state);
        }
        let readiness = finish(models, degraded);
        *self.health.probed.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), readiness.clone()));
        readiness
    }
}
