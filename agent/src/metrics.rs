//! Counters in Prometheus' text format: entries, questions, jobs, model calls
//! and tokens. Kept in memory per instance; a scraper sums instances.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::models::Usage;

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(String, String), f64>>,
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
}
