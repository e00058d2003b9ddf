//! `FileTraceSink`: appends each finished run as one JSON line to
//! `<dir>/YYYY-MM-DD.jsonl` (UTC day of the run's end, so files rotate daily).
//! Writing happens on a background task, whatever has queued up in one write;
//! a full queue drops and counts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{Run, TraceSink};

const QUEUE_BOUND: usize = 10_000;
/// Most runs written in one go.
const BATCH: usize = 512;

enum Message {
    Run(Box<Run>),
    Flush(oneshot::Sender<()>),
    Forget(Vec<String>, oneshot::Sender<u64>),
}

pub struct FileTraceSink {
    dir: PathBuf,
    tx: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

impl FileTraceSink {
    /// Starts the writer task; needs a Tokio runtime.
    pub fn start(dir: PathBuf) -> Self {
        let (tx, mut rx) = mpsc::channel::<Message>(QUEUE_BOUND);
        let writer_dir = dir.clone();
        tokio::spawn(async move {
            // Whatever queued up while the last batch was written goes out in
            // one write per day file: under load that is one open and one
            // write for hundreds of runs instead of one each.
            let mut inbox = Vec::with_capacity(BATCH);
            let mut pending: Vec<Run> = Vec::new();
            while rx.recv_many(&mut inbox, BATCH).await > 0 {
                for msg in inbox.drain(..) {
                    match msg {
                        Message::Run(run) => pending.push(*run),
                        Message::Flush(done) => {
                            write_out(&writer_dir, &mut pending).await;
                            let _ = done.send(());
                        }
                        Message::Forget(needles, done) => {
                            write_out(&writer_dir, &mut pending).await;
                            let removed = match forget_in(&writer_dir, &needles).await {
                                Ok(n) => n,
                                Err(e) => {
                                    tracing::warn!(error = %e, "could not erase from trace files");
                                    0
                                }
                            };
                            let _ = done.send(removed);
                        }
                    }
                }
                write_out(&writer_dir, &mut pending).await;
            }
        });
        Self { dir, tx, dropped: Arc::new(AtomicU64::new(0)) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Rewrites every trace file without the lines holding any needle (each
/// file replaced atomically); how many lines went.
async fn forget_in(dir: &Path, needles: &[String]) -> std::io::Result<u64> {
    let needles: Vec<&String> = needles.iter().filter(|n| !n.is_empty()).collect();
    if needles.is_empty() {
        return Ok(0);
    }
    let mut removed = 0;
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else { return Ok(0) };
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let text = tokio::fs::read_to_string(&path).await?;
        let mut kept = String::with_capacity(text.len());
        let mut dropped = 0;
        for line in text.lines() {
            if needles.iter().any(|n| line.contains(n.as_str())) {
                dropped += 1;
            } else {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        if dropped > 0 {
            let tmp = path.with_extension("jsonl.tmp");
            tokio::fs::write(&tmp, kept).await?;
            tokio::fs::rename(&tmp, &path).await?;
            removed += dropped;
        }
    }
    Ok(removed)
}

/// How a text appears inside a JSON trace line (escaped, without quotes).
pub fn as_in_json(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted.trim_matches('"').to_string()
}

/// Appends the pending runs to their day files (one open and one write per
/// day) on the blocking pool, and empties `pending`.
async fn write_out(dir: &Path, pending: &mut Vec<Run>) {
    if pending.is_empty() {
        return;
    }
    let runs = std::mem::take(pending);
    let dir = dir.to_path_buf();
    let written = tokio::task::spawn_blocking(move || append(&dir, &runs)).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not write trace runs"),
        Err(e) => tracing::warn!(error = %e, "the trace writer's task failed"),
    }
}

fn append(dir: &Path, runs: &[Run]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    // Runs of one batch almost always share a day; keep their order within each.
    let mut days: Vec<(String, Vec<u8>)> = Vec::new();
    for run in runs {
        let day = run.end_time.unwrap_or(run.start_time).format("%Y-%m-%d").to_string();
        let at = match days.iter().position(|(d, _)| *d == day) {
            Some(at) => at,
            None => {
                days.push((day, Vec::new()));
                days.len() - 1
            }
        };
        let buf = &mut days[at].1;
        serde_json::to_writer(&mut *buf, run).map_err(std::io::Error::other)?;
        buf.push(b'\n');
    }
    for (day, lines) in days {
        // Opened per batch, not kept: erasure rewrites and pruning replace files under us.
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{day}.jsonl")))?;
        file.write_all(&lines)?;
    }
    Ok(())
}

#[async_trait]
impl TraceSink for FileTraceSink {
    fn backend(&self) -> &'static str {
        "file"
    }

    fn submit(&self, run: Run) {
        if self.tx.try_send(Message::Run(Box::new(run))).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(traces.dropped = n, "trace queue full; run dropped");
        }
    }

    async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    async fn prune_before(&self, day: chrono::NaiveDate) -> u64 {
        let mut removed = 0;
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else { return 0 };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let is_old = path.extension().is_some_and(|x| x == "jsonl")
                && chrono::NaiveDate::parse_from_str(stem, "%Y-%m-%d").is_ok_and(|d| d < day);
            if is_old && tokio::fs::remove_file(&path).await.is_ok() {
                removed += 1;
            }
        }
        removed
    }

    async fn forget(&self, needles: Vec<String>) -> u64 {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Forget(needles, done)).await.is_ok() {
            return wait.await.unwrap_or(0);
        }
        0
    }
}

/// Reads every run from the JSONL files in `dir`, oldest file first; lines
/// that do not parse are skipped.
pub fn read_runs(dir: &Path) -> std::io::Result<Vec<Run>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "jsonl")).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    files.sort();
    let mut runs = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(file)?.lines() {
            match serde_json::from_str(line) {
                Ok(run) => runs.push(run),
                Err(e) => tracing::warn!(error = %e, "skipping a trace line that does not parse"),
            }
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{RunType, Tracer};
    use serde_json::json;

    #[tokio::test]
    async fn runs_round_trip_through_the_jsonl_file() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(FileTraceSink::start(dir.path().to_path_buf()));
        let tracer = Tracer::new(sink.clone(), "dadly-test", true);
        let root = tracer.root("message", RunType::Chain, json!({"text": "hi"}));
        let child = root.child("route", RunType::Llm, json!({"messages": []}));
        child.end(json!({"kind": "record"}));
        root.end(json!({"reply": "ok"}));
        sink.flush().await;
        let runs = read_runs(dir.path()).unwrap();
        assert_eq!(runs.len(), 2, "{}", std::fs::read_dir(dir.path()).unwrap().map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap()).collect::<String>());
        assert_eq!(runs[0].name, "route");
        assert_eq!(runs[0].parent_run_id, Some(runs[1].id));
        assert_eq!(runs[1].inputs, json!({"text": "hi"}));
        assert!(runs[0].dotted_order.starts_with(&runs[1].dotted_order));
        assert_eq!(runs[1].session_name, "dadly-test");
    }

    #[tokio::test]
    async fn a_burst_is_written_whole_and_writing_goes_on_after_an_erasure() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(FileTraceSink::start(dir.path().to_path_buf()));
        let tracer = Tracer::new(sink.clone(), "dadly-test", true);
        for i in 0..3000 {
            tracer.root("message", RunType::Chain, json!({ "text": format!("note {i}") })).end(json!({}));
        }
        sink.flush().await;
        let runs = read_runs(dir.path()).unwrap();
        assert_eq!(runs.len(), 3000);
        assert_eq!(sink.dropped(), 0);
        for (i, run) in runs.iter().enumerate() {
            assert_eq!(run.inputs, json!({ "text": format!("note {i}") }), "runs keep their order");
        }
        // An erasure replaces the file; later runs land in the new one.
        assert_eq!(sink.forget(vec!["note 7".into()]).await, 1 + 10 + 100, "note 7, 70–79, 700–799");
        tracer.root("message", RunType::Chain, json!({ "text": "after" })).end(json!({}));
        sink.flush().await;
        let runs = read_runs(dir.path()).unwrap();
        assert_eq!(runs.len(), 3000 - 111 + 1);
        assert_eq!(runs.last().unwrap().inputs, json!({ "text": "after" }));
    }

    #[tokio::test]
    async fn privacy_switch_removes_the_parents_words() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(FileTraceSink::start(dir.path().to_path_buf()));
        let tracer = Tracer::new(sink.clone(), "dadly", false);
        let root = tracer.root("message", RunType::Chain, json!({"text": "Minji's secret diary"}));
        let child = root.child("answer", RunType::Llm, json!({"messages": [{"role": "user", "content": "Minji's secret diary"}]}));
        child.end(json!({"choices": [{"message": {"role": "assistant", "content": "Minji's secret diary"}}]}));
        root.end(json!({"reply": "Minji's secret diary"}));
        sink.flush().await;
        let text = std::fs::read_to_string(std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path()).unwrap();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("\"role\":\"user\""));
    }
}
