//! Logs: human-readable by default; with `DADLY_LOG_FORMAT=json`, one JSON
//! object a line in the shape Google Cloud Logging reads — `severity`,
//! `message`, `time`, `logging.googleapis.com/sourceLocation` and, for a
//! request that came with `X-Cloud-Trace-Context` or `traceparent`,
//! `logging.googleapis.com/trace` (as `projects/<GOOGLE_CLOUD_PROJECT>/traces/<id>`
//! when the project is known) — plus the event's own fields and its spans'.

use std::fmt;

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The JSON event format for Google Cloud Logging.
pub struct GcpJson {
    pub project: Option<String>,
}

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_string(), json!(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), json!(value));
    }
}

fn severity(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

impl<S, N> FormatEvent<S, N> for GcpJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let mut out = Map::new();
        out.insert("severity".into(), json!(severity(meta.level())));
        out.insert("message".into(), fields.0.remove("message").unwrap_or(json!("")));
        out.insert("time".into(), json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
        out.insert("target".into(), json!(meta.target()));
        if let (Some(file), Some(line)) = (meta.file(), meta.line()) {
            out.insert("logging.googleapis.com/sourceLocation".into(), json!({ "file": file, "line": line.to_string() }));
        }
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                let text = ext.get::<FormattedFields<N>>().map(|f| f.to_string()).unwrap_or_default();
                if let Some(id) = text.split_whitespace().find_map(|kv| kv.strip_prefix("trace_id=")).map(|v| v.trim_matches('"')).filter(|v| !v.is_empty()) {
                    let trace = match &self.project {
                        Some(p) => format!("projects/{p}/traces/{id}"),
                        None => id.to_string(),
                    };
                    out.insert("logging.googleapis.com/trace".into(), json!(trace));
                }
                spans.push(json!({ "name": span.name(), "fields": text }));
            }
        }
        if !spans.is_empty() {
            out.insert("spans".into(), json!(spans));
        }
        for (k, v) in fields.0 {
            out.entry(k).or_insert(v);
        }
        writeln!(writer, "{}", Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_severity_message_source_and_the_requests_trace() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).event_format(GcpJson { project: Some("family-prod".into()) }).with_writer(move || writer.clone()).finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", method = "POST", trace_id = "4bf92f3577b34da6a3ce929d0e0e4736");
            let _in = span.enter();
            tracing::warn!(entry.id = "e1", attempts = 3, "could not deliver");
            tracing::error!("store down");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["severity"], "WARNING");
        assert_eq!(lines[0]["message"], "could not deliver");
        assert_eq!(lines[0]["entry.id"], "e1");
        assert_eq!(lines[0]["attempts"], 3);
        assert_eq!(lines[0]["logging.googleapis.com/trace"], "projects/family-prod/traces/4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(lines[0]["logging.googleapis.com/sourceLocation"]["file"].as_str().unwrap().ends_with("logs.rs"));
        assert_eq!(lines[1]["severity"], "ERROR");
        assert!(lines[1]["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn trace_ids_come_from_either_header() {
        use dadly_api::trace_id;
        assert_eq!(trace_id(Some("4BF92F3577B34DA6A3CE929D0E0E4736/1;o=1"), None).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(trace_id(None, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(trace_id(Some("nope"), Some("garbage")), None);
    }
}
