//! One LangSmith run, serialised exactly as LangSmith's ingestion API takes it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunType {
    Chain,
    Llm,
    Retriever,
    Tool,
    Embedding,
    Prompt,
    Parser,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Run {
    pub id: Uuid,
    pub name: String,
    pub run_type: RunType,
    pub inputs: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Value>,
    pub start_time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub extra: Value,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<Uuid>,
    pub trace_id: Uuid,
    pub dotted_order: String,
    pub session_name: String,
    /// Held until the run ends, then moved into `outputs.usage_metadata`.
    #[serde(skip)]
    pub usage: Option<Value>,
}

impl Run {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: Uuid,
        trace_id: Uuid,
        parent_run_id: Option<Uuid>,
        dotted_order: String,
        name: &str,
        run_type: RunType,
        inputs: Value,
        start_time: DateTime<Utc>,
        project: &str,
    ) -> Self {
        Self {
            id,
            name: name.to_string(),
            run_type,
            inputs,
            outputs: None,
            start_time,
            end_time: None,
            error: None,
            extra: json!({ "metadata": {} }),
            tags: Vec::new(),
            parent_run_id,
            trace_id,
            dotted_order,
            session_name: project.to_string(),
            usage: None,
        }
    }
}

/// One `dotted_order` segment: start time as `%Y%m%dT%H%M%S%fZ` (microseconds)
/// followed directly by the run id.
pub fn dotted_segment(start: DateTime<Utc>, id: Uuid) -> String {
    format!("{}{}", start.format("%Y%m%dT%H%M%S%6fZ"), id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_segment_is_microsecond_timestamp_then_id() {
        let t = DateTime::parse_from_rfc3339("2026-11-26T19:30:05.123456Z").unwrap().with_timezone(&Utc);
        let id = Uuid::parse_str("01937a4e-0000-7000-8000-000000000001").unwrap();
        assert_eq!(dotted_segment(t, id), "20261126T193005123456Z01937a4e-0000-7000-8000-000000000001");
    }
}
