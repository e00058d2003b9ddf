//! The flows: record, enrich/embed (jobs), answer, and chat routing. Each
//! model call is a traced `llm` or `embedding` run and a counted metric.

mod answer;
mod chat;
mod enrich;
mod entries;
mod record;

pub use answer::Answer;
pub use enrich::JobError;
pub use entries::{EntryPatch, ListQuery};
pub use record::RecordInput;

use serde_json::{Value, json};

use crate::agent::Agent;
use crate::models::{ChatCompletion, ChatRequest, Embeddings, ModelError};
use crate::trace::{RunType, Span};

impl Agent {
    /// One chat-model call as an `llm` run with messages in, completion out, usage.
    pub(crate) async fn call_chat(&self, parent: &Span, name: &str, request: &ChatRequest) -> Result<ChatCompletion, ModelError> {
        let chat = &self.b.chat;
        let mut span = parent.child(name, RunType::Llm, json!({ "messages": request.messages }));
        span.metadata("ls_provider", json!(chat.provider()));
        span.metadata("ls_model_name", json!(chat.model_name()));
        span.metadata("ls_model_type", json!("chat"));
        span.metadata("ls_temperature", json!(request.temperature));
        if let Some(schema) = &request.schema {
            span.metadata("response_format", json!(schema.name));
        }
        match chat.complete(request).await {
            Ok(done) => {
                self.b.metrics.model_call("chat", &done.model, "ok", done.usage);
                span.usage(done.usage);
                span.metadata("ls_model_name", json!(done.model));
                span.end(json!({
                    "choices": [{ "index": 0, "message": { "role": "assistant", "content": done.content }, "finish_reason": "stop" }],
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
    pub(crate) async fn call_embed(&self, parent: &Span, texts: Vec<String>) -> Result<Embeddings, ModelError> {
        let embedder = &self.b.embedder;
        let mut span = parent.child("embed", RunType::Embedding, json!({ "input": texts }));
        span.metadata("ls_provider", json!(embedder.provider()));
        span.metadata("ls_model_name", json!(embedder.model_name()));
        span.metadata("dimensions", json!(embedder.dimensions()));
        match embedder.embed(&texts).await {
            Ok(done) => {
                self.b.metrics.model_call("embeddings", &done.model, "ok", done.usage);
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
