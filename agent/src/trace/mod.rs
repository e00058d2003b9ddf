//! Traces in LangSmith's run format. A `Tracer` opens a root run per message
//! or job; `Span`s open child runs; a finished run goes to a `TraceSink`
//! (a JSONL file, or LangSmith's ingestion API) off the request path.

mod file;
mod langsmith;
mod run;
mod tree;

pub use file::{FileTraceSink, as_in_json, read_runs};
pub use langsmith::{LangSmithSettings, LangSmithSink};
pub use run::{Run, RunType, dotted_segment};
pub use tree::render_traces;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::models::Usage;

/// Where finished runs go. `submit` must never block or fail the caller.
#[async_trait]
pub trait TraceSink: Send + Sync + 'static {
    fn backend(&self) -> &'static str;
    fn submit(&self, run: Run);
    /// Waits until every submitted run is written or sent (or given up on).
    async fn flush(&self);
    /// Deletes every stored run that contains any of `needles` (erasure);
    /// how many. A sink that keeps nothing itself (LangSmith) has nothing to forget here.
    async fn forget(&self, needles: Vec<String>) -> u64 {
        let _ = needles;
        0
    }
    /// Deletes what it keeps of days before `day` (retention); how many files.
    async fn prune_before(&self, day: chrono::NaiveDate) -> u64 {
        let _ = day;
        0
    }
}

/// Opens runs. Cheap to clone.
#[derive(Clone)]
pub struct Tracer {
    sink: Arc<dyn TraceSink>,
    project: Arc<str>,
    /// When false, what a parent wrote is replaced by its length and hash.
    content: bool,
}

impl Tracer {
    pub fn new(sink: Arc<dyn TraceSink>, project: &str, content: bool) -> Self {
        Self { sink, project: project.into(), content }
    }

    pub fn sink(&self) -> &Arc<dyn TraceSink> {
        &self.sink
    }

    /// Starts a new trace.
    pub fn root(&self, name: &str, run_type: RunType, inputs: Value) -> Span {
        let start = now();
        let id = Uuid::now_v7();
        let inputs = self.redact(inputs);
        let run = Run::new(id, id, None, dotted_segment(start, id), name, run_type, inputs, start, &self.project);
        Span { tracer: self.clone(), run: Some(run) }
    }

    fn redact(&self, value: Value) -> Value {
        if self.content { value } else { redact(value, None) }
    }
}

/// Now, to the microsecond: LangSmith's `dotted_order` carries microseconds,
/// and a run's `start_time` must match its segment exactly.
fn now() -> chrono::DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// Keys whose string values describe structure, not what a parent wrote.
const STRUCTURAL_KEYS: &[&str] = &["role", "kind", "type", "model", "name", "finish_reason", "language", "source", "id", "entry_id", "occurred_at"];

/// Replaces every string that could hold a parent's words by its length and hash.
pub fn redact(value: Value, key: Option<&str>) -> Value {
    match value {
        Value::String(s) if key.is_some_and(|k| STRUCTURAL_KEYS.contains(&k)) || Uuid::parse_str(&s).is_ok() => Value::String(s),
        Value::String(s) => Value::String(format!("[redacted len={} sha256={}]", s.chars().count(), &crate::blob::sha256_hex(s.as_bytes())[..16])),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| redact(v, key)).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| { let v = redact(v, Some(&k)); (k, v) }).collect()),
        other => other,
    }
}

/// An open run. Ending it (or dropping it) submits it once.
pub struct Span {
    tracer: Tracer,
    run: Option<Run>,
}

impl Span {
    /// Opens a child run under this one.
    pub fn child(&self, name: &str, run_type: RunType, inputs: Value) -> Span {
        let parent = self.run.as_ref().expect("an open span has its run");
        let start = now().max(parent.start_time);
        let id = Uuid::now_v7();
        let dotted = format!("{}.{}", parent.dotted_order, dotted_segment(start, id));
        let inputs = self.tracer.redact(inputs);
        let run = Run::new(id, parent.trace_id, Some(parent.id), dotted, name, run_type, inputs, start, &self.tracer.project);
        Span { tracer: self.tracer.clone(), run: Some(run) }
    }

    pub fn id(&self) -> Uuid {
        self.run.as_ref().map(|r| r.id).unwrap_or_default()
    }

    pub fn trace_id(&self) -> Uuid {
        self.run.as_ref().map(|r| r.trace_id).unwrap_or_default()
    }

    /// Adds `extra.metadata[key]`.
    pub fn metadata(&mut self, key: &str, value: Value) {
        if let Some(run) = self.run.as_mut() {
            run.extra["metadata"][key] = value;
        }
    }

    pub fn tag(&mut self, tag: &str) {
        if let Some(run) = self.run.as_mut() {
            run.tags.push(tag.to_string());
        }
    }

    /// Records the model's token usage (LangSmith reads `outputs.usage_metadata`).
    pub fn usage(&mut self, usage: Option<Usage>) {
        if let (Some(run), Some(u)) = (self.run.as_mut(), usage) {
            run.usage = Some(json!({
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "total_tokens": u.total_tokens,
            }));
        }
    }

    pub fn end(mut self, outputs: Value) {
        self.finish(Some(outputs), None);
    }

    pub fn fail(mut self, error: &str) {
        self.finish(None, Some(error.to_string()));
    }

    fn finish(&mut self, outputs: Option<Value>, error: Option<String>) {
        let Some(mut run) = self.run.take() else { return };
        run.end_time = Some(now().max(run.start_time));
        let mut outputs = outputs.map(|o| self.tracer.redact(o));
        if let Some(usage) = run.usage.take() {
            let out = outputs.get_or_insert_with(|| json!({}));
            if let Value::Object(map) = out {
                map.insert("usage_metadata".into(), usage);
            }
        }
        run.outputs = outputs;
        run.error = error;
        self.tracer.sink.submit(run);
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if self.run.is_some() {
            self.finish(None, Some("run ended without a result (cancelled or panicked)".into()));
        }
    }
}
