//! Counters and latency histograms in Prometheus' text format: entries,
//! questions, jobs, model calls and tokens; HTTP and model-call latencies.
//! Kept in memory per instance; a scraper sums instances.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::models::Usage;

/// Upper bounds (seconds) of the latency buckets: 1 ms to 60 s.
/// (2 s is there for indexing freshness, whose target is "searchable within 2 s".)
pub const BUCKETS: [f64; 15] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 15.0, 60.0];

#[derive(Default, Clone)]
struct Histogram {
    /// Observations at or below each bound (not cumulative here; cumulated when rendered).
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(String, String), f64>>,
    histograms: Mutex<BTreeMap<(String, String), Histogram>>,
}

fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ")))
        .collect::<Vec<_>>()
        .join(",")
}

impl Metrics {
    pub fn add(&self, name: &str, pairs: &[(&str, &str)], value: f64) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *counters.entry((name.to_string(), labels(pairs))).or_default() += value;
    }

    pub fn inc(&self, name: &str, pairs: &[(&str, &str)]) {
        self.add(name, pairs, 1.0);
    }

    /// Counts one model call and the tokens it reported.
    pub fn model_call(&self, capability: &str, model: &str, outcome: &str, usage: Option<Usage>) {
        self.inc("dadly_model_calls_total", &[("capability", capability), ("model", model), ("outcome", outcome)]);
        if let Some(u) = usage {
            self.add("dadly_model_tokens_total", &[("model", model), ("direction", "input")], u.input_tokens as f64);
            self.add("dadly_model_tokens_total", &[("model", model), ("direction", "output")], u.output_tokens as f64);
        }
    }

    /// Records one duration in a histogram.
    pub fn observe(&self, name: &str, pairs: &[(&str, &str)], elapsed: std::time::Duration) {
        let secs = elapsed.as_secs_f64();
        let mut histograms = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        let h = histograms.entry((name.to_string(), labels(pairs))).or_default();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            h.counts[i] += 1;
        }
        h.count += 1;
        h.sum += secs;
    }

    /// How many durations a histogram holds.
    pub fn observed(&self, name: &str, pairs: &[(&str, &str)]) -> u64 {
        let histograms = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        histograms.get(&(name.to_string(), labels(pairs))).map(|h| h.count).unwrap_or(0)
    }

    pub fn get(&self, name: &str, pairs: &[(&str, &str)]) -> f64 {
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        counters.get(&(name.to_string(), labels(pairs))).copied().unwrap_or(0.0)
    }

    /// Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let mut last = "";
        for ((name, labels), value) in counters.iter() {
            if name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {value}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
        drop(counters);
        let histograms = self.histograms.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = "";
        for ((name, labels), h) in histograms.iter() {
            if name != last {
                let _ = writeln!(out, "# TYPE {name} histogram");
                last = name;
            }
            let sep = if labels.is_empty() { "" } else { "," };
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                cumulative += n;
                let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
            let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
            let _ = writeln!(out, "{name}_sum{braces} {}", h.sum);
            let _ = writeln!(out, "{name}_count{braces} {}", h.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_prometheus_text_format() {
        let m = Metrics::default();
        m.inc("dadly_entries_recorded_total", &[("source", "web")]);
        m.inc("dadly_entries_recorded_total", &[("source", "web")]);
        m.model_call("chat", "gpt", "ok", Some(Usage { input_tokens: 10, output_tokens: 3, total_tokens: 13 }));
        let text = m.render();
        assert!(text.contains("# TYPE dadly_entries_recorded_total counter\ndadly_entries_recorded_total{source=\"web\"} 2\n"));
        assert!(text.contains("dadly_model_tokens_total{model=\"gpt\",direction=\"input\"} 10"));
        assert_eq!(m.get("dadly_model_calls_total", &[("capability", "chat"), ("model", "gpt"), ("outcome", "ok")]), 1.0);
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let m = Metrics::default();
        let route = [("method", "GET"), ("route", "/v1/entries")];
        m.observe("dadly_http_request_duration_seconds", &route, std::time::Duration::from_millis(3));
        m.observe("dadly_http_request_duration_seconds", &route, std::time::Duration::from_millis(40));
        m.observe("dadly_http_request_duration_seconds", &route, std::time::Duration::from_secs(100));
        let text = m.render();
        assert!(text.contains("# TYPE dadly_http_request_duration_seconds histogram"), "{text}");
        assert!(text.contains("dadly_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/entries\",le=\"0.001\"} 0"));
        assert!(text.contains("dadly_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/entries\",le=\"0.005\"} 1"));
        assert!(text.contains("dadly_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/entries\",le=\"0.05\"} 2"));
        assert!(text.contains("dadly_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/entries\",le=\"60\"} 2"));
        assert!(text.contains("dadly_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/entries\",le=\"+Inf\"} 3"));
        assert!(text.contains("dadly_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/entries\"} 3"));
        assert_eq!(m.observed("dadly_http_request_duration_seconds", &route), 3);
    }
}
