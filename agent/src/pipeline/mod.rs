//! The flows: record, enrich/embed (jobs), answer, and chat routing. Each
//! model call is a traced `llm` or `embedding` run and a counted metric.

pub(crate) mod answer;
mod chat;
pub(crate) mod enrich;
mod channels;
mod entries;
pub mod archive;
pub mod erasure;
pub mod family;
pub mod prompts;
mod media;
mod record;
mod uploads;

pub use answer::Answer;
pub use enrich::{JobError, Retry};
pub(crate) use media::wait_until;
pub use channels::{LinkCode, MediaMessage, MediaOutcome};
pub use entries::{EntryPatch, ListQuery};
pub use record::RecordInput;
pub use uploads::UploadedFile;

use serde_json::{Value, json};

use crate::agent::Agent;
use crate::domain::FamilyId;
use crate::models::{ChatCompletion, ChatRequest, EmbedRole, Embeddings, ModelError, Usage};
use crate::trace::{RunType, Span};

impl Agent {
    /// One chat-model call as an `llm` run with messages in, completion out, usage.
    pub(crate) async fn call_chat(&self, family_id: FamilyId, parent: &Span, name: &str, request: &ChatRequest) -> Result<ChatCompletion, ModelError> {
        let chat = &self.b.chat;
        let mut span = parent.child(name, RunType::Llm, json!({ "messages": request.messages }));
        span.metadata("ls_provider", json!(chat.provider()));
        span.metadata("ls_model_name", json!(chat.model_name()));
        span.metadata("ls_model_type", json!("chat"));
        // f32 → f64 would print 0.20000000298; round to what was configured.
        span.metadata("ls_temperature", json!((f64::from(request.temperature) * 1000.0).round() / 1000.0));
        if let Some(schema) = &request.schema {
            span.metadata("response_format", json!(schema.name));
        }
        let started = std::time::Instant::now();
        let result = chat.complete(request).await;
        self.b.metrics.observe("dadly_model_call_duration_seconds", &[("capability", "chat"), ("model", chat.model_name())], started.elapsed());
        self.health.record("chat", result.as_ref().map(|_| ()));
        match result {
            Ok(done) => {
                self.count_usage(family_id, "chat", &done.model, done.usage).await;
                span.usage(done.usage);
                span.metadata("ls_model_name", json!(done.model));
                if done.truncated {
                    // Cut at the task's output bound: JSON that does not parse falls back; an answer is marked.
                    self.b.metrics.inc("dadly_model_truncated_total", &[("task", name)]);
                    tracing::warn!(task = name, model = %done.model, "the model's reply was cut at its output bound");
                }
                let finish_reason = if done.truncated { "length" } else { "stop" };
                span.end(json!({
                    "choices": [{ "index": 0, "message": { "role": "assistant", "content": done.content }, "finish_reason": finish_reason }],
                }));
                Ok(done)
            }
            Err(e) => {
                self.b.metrics.model_call("chat", chat.model_name(), error_label(&e), None);
                span.fail(&e.to_string());
                Err(e)
            }
        }
    }

    /// One embedding call as an `embedding` run.
    pub(crate) async fn call_embed(&self, family_id: FamilyId, parent: &Span, texts: Vec<String>, role: EmbedRole) -> Result<Embeddings, ModelError> {
        let weights = vec![(family_id, 1)];
        self.call_embed_shared(&weights, parent, texts, role).await
    }

    /// One embeddings call for several families' texts; the usage is counted
    /// to each family in proportion to its `weights` (characters sent).
    pub(crate) async fn call_embed_shared(&self, weights: &[(FamilyId, usize)], parent: &Span, texts: Vec<String>, role: EmbedRole) -> Result<Embeddings, ModelError> {
        let embedder = &self.b.embedder;
        let mut span = parent.child("embed", RunType::Embedding, json!({ "input": texts }));
        span.metadata("ls_provider", json!(embedder.provider()));
        span.metadata("ls_model_name", json!(embedder.model_name()));
        span.metadata("dimensions", json!(embedder.dimensions()));
        let started = std::time::Instant::now();
        span.metadata("input_type", json!(role.input_type()));
        let result = embedder.embed(&texts, role).await;
        self.b.metrics.observe("dadly_model_call_duration_seconds", &[("capability", "embeddings"), ("model", embedder.model_name())], started.elapsed());
        self.health.record("embeddings", result.as_ref().map(|_| ()));
        match result {
            Ok(done) => {
                let total: usize = weights.iter().map(|(_, w)| *w).sum::<usize>().max(1);
                let mut families: Vec<(FamilyId, usize)> = Vec::new();
                for (f, w) in weights {
                    match families.iter_mut().find(|(g, _)| g == f) {
                        Some((_, sum)) => *sum += w,
                        None => families.push((*f, *w)),
                    }
                }
                if let [(only, _)] = families[..] {
                    self.count_usage(only, "embeddings", &done.model, done.usage).await;
                } else {
                    // One call in the metrics; each family's spend gets its share.
                    self.b.metrics.model_call("embeddings", &done.model, "ok", done.usage);
                    let today = chrono::Utc::now().date_naive();
                    for (f, w) in families {
                        let share = |n: u64| (n as f64 * w as f64 / total as f64).round() as u64;
                        let u = done.usage.map(|u| Usage { input_tokens: share(u.input_tokens), output_tokens: share(u.output_tokens), total_tokens: share(u.total_tokens) }).unwrap_or_default();
                        let cost = self.settings.prices.cost(&done.model, &u);
                        if cost > 0.0 {
                            self.b.metrics.add("dadly_model_cost_usd_total", &[("model", &done.model)], cost);
                        }
                        if let Err(e) = self.b.store.add_usage(f, today, &done.model, "embeddings", u.input_tokens, u.output_tokens, cost).await {
                            tracing::warn!(error = %e, "could not record model usage");
                        }
                    }
                }
                span.usage(done.usage);
                span.end(json!({ "count": done.vectors.len(), "dimensions": done.vectors.first().map(Vec::len) }));
                Ok(done)
            }
            Err(e) => {
                self.b.metrics.model_call("embeddings", embedder.model_name(), error_label(&e), None);
                span.fail(&e.to_string());
                Err(e)
            }
        }
    }
}

impl Agent {
    /// Counts a successful call in metrics and in the family's spend.
    async fn count_usage(&self, family_id: FamilyId, capability: &str, model: &str, usage: Option<Usage>) {
        let cost = usage.map(|u| self.settings.prices.cost(model, &u)).unwrap_or(0.0);
        self.b.metrics.model_call(capability, model, "ok", usage);
        if cost > 0.0 {
            self.b.metrics.add("dadly_model_cost_usd_total", &[("model", model)], cost);
        }
        let u = usage.unwrap_or_default();
        let today = chrono::Utc::now().date_naive();
        if let Err(e) = self.b.store.add_usage(family_id, today, model, capability, u.input_tokens, u.output_tokens, cost).await {
            tracing::warn!(error = %e, "could not record model usage");
        }
    }
}

fn error_label(e: &ModelError) -> &'static str {
    match e {
        ModelError::Unavailable(_) => "unavailable",
        ModelError::RateLimited => "rate_limited",
        ModelError::BadResponse(_) => "bad_response",
        ModelError::Rejected(_) => "rejected",
        ModelError::NotConfigured(_) => "not_configured",
    }
}

/// Parses a model's JSON output, tolerating a fenced code block around it.
pub(crate) fn parse_json(content: &str) -> Result<Value, ModelError> {
    let trimmed = content.trim();
    let body = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|s| s.strip_suffix("```"))
        .unwrap_or(trimmed);
    serde_json::from_str(body.trim()).map_err(|e| ModelError::BadResponse(format!("not JSON: {e}")))
}
