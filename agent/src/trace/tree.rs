//! Renders runs as trace trees for `dadly traces`: newest trace first, each
//! run with its type, duration and the tokens used under it.

use std::collections::HashMap;
use std::fmt::Write;

use uuid::Uuid;

use super::Run;

fn tokens(run: &Run) -> u64 {
    run.outputs.as_ref().and_then(|o| o["usage_metadata"]["total_tokens"].as_u64()).unwrap_or(0)
}

fn duration_ms(run: &Run) -> i64 {
    run.end_time.map(|e| (e - run.start_time).num_milliseconds()).unwrap_or(0)
}

/// The `limit` most recent traces (by root start), as indented trees.
pub fn render_traces(runs: &[Run], limit: usize) -> String {
    let mut by_trace: HashMap<Uuid, Vec<&Run>> = HashMap::new();
    for run in runs {
        by_trace.entry(run.trace_id).or_default().push(run);
    }
    let mut traces: Vec<Vec<&Run>> = by_trace.into_values().collect();
    for t in &mut traces {
        // dotted_order sorts parents before children and siblings by start.
        t.sort_by(|a, b| a.dotted_order.cmp(&b.dotted_order));
    }
    traces.sort_by(|a, b| b[0].dotted_order.cmp(&a[0].dotted_order));
    let mut out = String::new();
    for trace in traces.into_iter().take(limit) {
        let total: u64 = trace.iter().map(|r| tokens(r)).sum();
        for run in &trace {
            let depth = run.dotted_order.matches('.').count();
            let indent = "  ".repeat(depth);
            let head = if depth == 0 { format!("{} ", run.start_time.format("%Y-%m-%d %H:%M:%S")) } else { String::new() };
            let toks = if depth == 0 { total } else { tokens(run) };
            let toks = if toks > 0 { format!(", {toks} tokens") } else { String::new() };
            let err = run.error.as_ref().map(|e| format!("  ERROR: {e}")).unwrap_or_default();
            let _ = writeln!(out, "{indent}{head}{} [{}] {} ms{toks}{err}", run.name, serde_json::to_value(run.run_type).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(), duration_ms(run));
        }
        let _ = writeln!(out, "  trace {}\n", trace[0].trace_id);
    }
    if out.is_empty() {
        out.push_str("no traces yet\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Usage;
    use crate::trace::{FileTraceSink, RunType, TraceSink, Tracer, read_runs};
    use serde_json::json;
    use std::sync::Arc;

    #[tokio::test]
    async fn traces_render_as_trees_with_tokens_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(FileTraceSink::start(dir.path().to_path_buf()));
        let tracer = Tracer::new(sink.clone(), "t", true);
        let first = tracer.root("record", RunType::Chain, json!({}));
        first.end(json!({}));
        let root = tracer.root("message", RunType::Chain, json!({}));
        let mut llm = root.child("answer", RunType::Llm, json!({}));
        llm.usage(Some(Usage { input_tokens: 7, output_tokens: 5, total_tokens: 12 }));
        llm.end(json!({}));
        root.child("retrieve", RunType::Retriever, json!({})).fail("index down");
        root.end(json!({}));
        sink.flush().await;
        let text = render_traces(&read_runs(dir.path()).unwrap(), 10);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("message [chain]") && lines[0].ends_with("12 tokens"), "{text}");
        assert!(lines[1].starts_with("  answer [llm]") && lines[1].ends_with("12 tokens"), "{text}");
        assert!(lines[2].starts_with("  retrieve [retriever]") && lines[2].contains("ERROR: index down"), "{text}");
        assert!(text.contains("record [chain]"));
        assert_eq!(render_traces(&read_runs(dir.path()).unwrap(), 1).matches("trace ").count(), 1);
    }
}
