//! Answer-quality benchmark: loads `eval/journal.json` (a two-year bilingual
//! family journal and questions with the entries each answer must cite) into
//! a fresh instance through the API, asks every question, and prints
//! recall@5, MRR, "nothing found" accuracy on the unanswerable questions,
//! per question type and per language — and the same for BM25 alone over the
//! same entries, the baseline to beat.
//!
//!     cargo run --release --example eval [-- eval/journal.json]
//!
//! Models come from the environment like the server's (`OPENAI_*`,
//! `DADLY_*`); with none set, the offline models. recall@5 counts the expected
//! entries among the first five sources, out of min(expected, 5).
//! `EVAL_MISSES=1` lists every question that missed, with the sources' scores.
//! `EVAL_TYPES=count,first_last` asks only the questions of those types.
//! `EVAL_QDRANT=stand-in` puts the vectors (and the lexical terms, as sparse
//! vectors) in the in-memory Qdrant gRPC stand-in the tests use.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use dadly::app::App;
use dadly::settings::Settings;
use dadly_agent::store::NewMember;
use serde_json::{Value, json};
use tokio::sync::watch;

#[derive(Default, Clone)]
struct Score {
    n: usize,
    recall: f64,
    mrr: f64,
    unanswerable: usize,
    nothing_found: usize,
}

impl Score {
    fn add(&mut self, expected: &[String], got: &[String]) {
        if expected.is_empty() {
            self.unanswerable += 1;
            if got.is_empty() {
                self.nothing_found += 1;
            }
            return;
        }
        self.n += 1;
        let top: Vec<&String> = got.iter().take(5).collect();
        let hits = expected.iter().filter(|e| top.contains(e)).count();
        self.recall += hits as f64 / expected.len().min(5) as f64;
        if let Some(rank) = got.iter().position(|g| expected.contains(g)) {
            self.mrr += 1.0 / (rank + 1) as f64;
        }
    }

    fn row(&self, name: &str) -> String {
        let r = |x: f64| if self.n == 0 { "–".to_string() } else { format!("{:.3}", x / self.n as f64) };
        let nf = if self.unanswerable == 0 { "–".to_string() } else { format!("{}/{}", self.nothing_found, self.unanswerable) };
        format!("| {name} | {} | {} | {} | {nf} |", self.n + self.unanswerable, r(self.recall), r(self.mrr))
    }
}

/// Words for BM25: lower-cased Latin words, and Hangul as character bigrams
/// (Korean has no spaces inside many compounds and particles stick to nouns).
fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let chars: Vec<char> = word.chars().collect();
        if chars.iter().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(c)) {
            if chars.len() == 1 {
                out.push(word.to_string());
            }
            out.extend(chars.windows(2).map(|w| w.iter().collect::<String>()));
        } else if word.len() > 1 {
            out.push(word.to_string());
        }
    }
    out
}

struct Bm25 {
    docs: Vec<(String, HashMap<String, f64>, f64)>,
    df: HashMap<String, f64>,
    avg: f64,
}

impl Bm25 {
    fn new(entries: &[(String, String)]) -> Self {
        let mut df = HashMap::new();
        let docs: Vec<(String, HashMap<String, f64>, f64)> = entries
            .iter()
            .map(|(id, text)| {
                let t = terms(text);
                let mut tf = HashMap::new();
                for w in &t {
                    *tf.entry(w.clone()).or_insert(0.0) += 1.0;
                }
                for w in tf.keys() {
                    *df.entry(w.clone()).or_insert(0.0) += 1.0;
                }
                (id.clone(), tf, t.len() as f64)
            })
            .collect();
        let avg = docs.iter().map(|d| d.2).sum::<f64>() / docs.len().max(1) as f64;
        Self { docs, df, avg }
    }

    fn search(&self, query: &str, k: usize) -> Vec<String> {
        let n = self.docs.len() as f64;
        let q = terms(query);
        let mut scored: Vec<(f64, &String)> = self
            .docs
            .iter()
            .map(|(id, tf, len)| {
                let s: f64 = q
                    .iter()
                    .map(|w| {
                        let f = tf.get(w).copied().unwrap_or(0.0);
                        let df = self.df.get(w).copied().unwrap_or(0.0);
                        let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                        idf * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * len / self.avg))
                    })
                    .sum();
                (s, id)
            })
            .filter(|(s, _)| *s > 0.0)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(k).map(|(_, id)| id.clone()).collect()
    }
}

fn print_table(title: &str, total: &Score, by: &BTreeMap<String, Score>) {
    println!("\n{title}\n\n| questions | n | recall@5 | MRR | nothing found (unanswerable) |\n|---|---:|---:|---:|---:|");
    println!("{}", total.row("all"));
    for (k, s) in by {
        println!("{}", s.row(k));
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "eval/journal.json".into());
    let set: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    // EVAL_TYPES=count,first_last asks only those types (a slow real chat
    // model takes seconds per question); a type the set lacks is refused
    // before anything is loaded.
    let only: Option<Vec<String>> = std::env::var("EVAL_TYPES").ok().filter(|v| !v.trim().is_empty()).map(|v| v.split(',').map(|t| t.trim().to_string()).collect());
    if let Some(types) = &only {
        let known: std::collections::BTreeSet<&str> = set["questions"].as_array().into_iter().flatten().filter_map(|q| q["type"].as_str()).collect();
        if let Some(unknown) = types.iter().find(|t| !known.contains(t.as_str())) {
            anyhow::bail!("EVAL_TYPES: no question has the type {unknown:?}; the set has {known:?}");
        }
    }
    let dir = tempfile::tempdir()?;
    let data = dir.path().display().to_string();
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    for (k, v) in [("DADLY_DATA_DIR", data.as_str()), ("DADLY_BIND", "127.0.0.1:0"), ("DADLY_JOB_POLL_MS", "20"), ("DADLY_RATE_LIMIT_PER_MINUTE", "0")] {
        vars.insert(k.into(), v.into());
    }
    vars.entry("JWT_SECRET".into()).or_insert_with(|| "eval-secret-eval-secret".into());
    vars.remove("DATABASE_URL");
    if std::env::var("EVAL_QDRANT").is_ok_and(|v| v == "stand-in") {
        let qdrant = dadly_testkit::qdrant::QdrantStandIn::start(None).await;
        vars.insert("QDRANT_URL".into(), qdrant.url.clone());
    }
    let settings = Settings::from_lookup(&move |k| vars.get(k).cloned())?;
    let app = App::build(settings).await?;
    let store = app.agent.store().clone();
    let family = store.create_family("Eval").await?;
    let user = store.create_user(family.id, "Parent").await?;
    for m in set["members"].as_array().unwrap() {
        let new = NewMember {
            name: m["name"].as_str().unwrap().into(),
            aliases: m["aliases"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect(),
            birth_date: m["birth_date"].as_str().and_then(|d| d.parse().ok()),
        };
        store.create_member(family.id, new).await?;
    }
    let token = app.state.auth.mint(user.id, chrono::Duration::hours(6));
    let (stop, stopped) = watch::channel(false);
    let running = app.serve(stopped).await?;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();

    // Load the journal through the API.
    let started = Instant::now();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut texts = Vec::new();
    for e in set["entries"].as_array().unwrap() {
        let body = json!({ "text": e["text"], "occurred_at": format!("{}T12:00:00+09:00", e["date"].as_str().unwrap()) });
        let r: Value = http.post(format!("{base}/v1/entries")).bearer_auth(&token).json(&body).send().await?.error_for_status()?.json().await?;
        ids.insert(r["entry_id"].as_str().unwrap().to_string(), e["id"].as_str().unwrap().to_string());
        texts.push((e["id"].as_str().unwrap().to_string(), e["text"].as_str().unwrap().to_string()));
    }
    loop {
        let status: Value = http.get(format!("{base}/v1/status")).bearer_auth(&token).send().await?.json().await?;
        if status["jobs"]["queued"] == 0 && status["jobs"]["running"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let models: Value = http.get(format!("{base}/v1/status")).bearer_auth(&token).send().await?.json().await?;
    eprintln!("loaded {} entries in {:.1} s; models: {}", texts.len(), started.elapsed().as_secs_f64(), models["models"]);

    // Ask every question.
    let bm25 = Bm25::new(&texts);
    let (mut ours, mut base_line) = (Score::default(), Score::default());
    let (mut ours_by, mut bm25_by): (BTreeMap<String, Score>, BTreeMap<String, Score>) = Default::default();
    let today = set["today"].as_str().unwrap();
    // EVAL_MISSES=1 lists each question whose expected entries are not all in
    // the first five sources (and each unanswerable one that got sources).
    let show_misses = std::env::var("EVAL_MISSES").is_ok_and(|v| v == "1");
    for q in set["questions"].as_array().unwrap() {
        if only.as_ref().is_some_and(|types| !types.iter().any(|t| t == q["type"].as_str().unwrap_or_default())) {
            continue;
        }
        let expected: Vec<String> = q["expect"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
        let text = q["question"].as_str().unwrap();
        let body = json!({ "message": format!("/ask {text}"), "sent_at": today, "chat_id": q["id"] });
        let r: Value = http.post(format!("{base}/v1/chat")).bearer_auth(&token).json(&body).send().await?.error_for_status()?.json().await?;
        let got: Vec<String> = r["sources"].as_array().map(|s| s.iter().filter_map(|x| ids.get(x["entry_id"].as_str().unwrap()).cloned()).collect()).unwrap_or_default();
        let keys = [format!("type: {}", q["type"].as_str().unwrap()), format!("language: {}", q["lang"].as_str().unwrap())];
        if show_misses && !expected.iter().take(5).all(|e| got.iter().take(5).any(|g| g == e)) || show_misses && expected.is_empty() && !got.is_empty() {
            let scores: Vec<String> = r["sources"].as_array().into_iter().flatten().map(|s| format!("{}:{:.3}", ids.get(s["entry_id"].as_str().unwrap_or_default()).map(String::as_str).unwrap_or("?"), s["score"].as_f64().unwrap_or_default())).collect();
            eprintln!("miss {} [{}] {text}\n  expected {expected:?}\n  got      {}", q["id"].as_str().unwrap(), q["type"].as_str().unwrap(), scores.join(" "));
        }
        ours.add(&expected, &got);
        let lexical = bm25.search(text, 10);
        base_line.add(&expected, &lexical);
        for k in &keys {
            ours_by.entry(k.clone()).or_default().add(&expected, &got);
            bm25_by.entry(k.clone()).or_default().add(&expected, &lexical);
        }
    }
    print_table(&format!("Dadly ({})", models["models"]["embeddings"]["model"].as_str().unwrap_or("?")), &ours, &ours_by);
    print_table("BM25 alone (same entries; it always returns something, so 'nothing found' is only when no word matches)", &base_line, &bm25_by);
    let _ = stop.send(true);
    let _ = running.server.await;
    Ok(())
}
