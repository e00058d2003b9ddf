//! Write-then-ask cycles over a big family: does memory stay flat and does
//! a question after a write avoid reloading the family's vectors?
//!
//!     cargo run --release --example cycles -- [ENTRIES] [CYCLES]
//!
//! Loads ENTRIES (default 100,000) entries with their offline embeddings
//! straight into the store and index, asks once (the family is loaded), then
//! runs CYCLES (default 1,000) of: record an entry over HTTP, wait until it is
//! searchable, ask a question over HTTP. Prints the process's RSS every 100
//! cycles, the ask latency, and how many times the family was read from the store.

use std::time::{Duration, Instant};

use dadly::app::App;
use dadly::settings::Settings;
use dadly_agent::domain::NewEntry;
use dadly_agent::store::{NewMember, VectorRecord};
use serde_json::{Value, json};
use tokio::sync::watch;

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (entries, cycles) = (*args.first().unwrap_or(&100_000), *args.get(1).unwrap_or(&1_000));
    let dir = tempfile::tempdir()?;
    let data = dir.path().display().to_string();
    let vars = [("DADLY_DATA_DIR", data.as_str()), ("DADLY_BIND", "127.0.0.1:0"), ("DADLY_JOB_POLL_MS", "20"), ("JWT_SECRET", "cycles-secret-cycles"), ("DADLY_RATE_LIMIT_PER_MINUTE", "0")];
    let settings = Settings::from_lookup(&|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))?;
    let app = App::build(settings).await?;
    let store = app.agent.store().clone();
    let backends = app.agent.backends().clone();
    let family = store.create_family("Big").await?;
    let user = store.create_user(family.id, "Parent").await?;
    let minji = store.create_member(family.id, NewMember { name: "Minji".into(), aliases: vec![], birth_date: None }).await?;
    let started = Instant::now();
    let things = ["painted a dragon", "lost a tooth", "rode a bike", "sang in the rain", "built a sandcastle", "read a book", "planted beans", "saw a rainbow"];
    let mut batch = Vec::new();
    for i in 0..entries {
        let text = format!("Minji {} at place {} on day {}", things[i % things.len()], i % 997, i);
        let at = chrono::Utc::now() - chrono::Duration::minutes((entries - i) as i64);
        let entry = store.insert_entry(family.id, NewEntry { author_id: user.id, raw_text: text.clone(), member_ids: vec![minji.id], occurred_at: at, ..Default::default() }, &[]).await?;
        batch.push((entry, text));
        if batch.len() == 256 || i + 1 == entries {
            let texts: Vec<String> = batch.iter().map(|(_, t)| t.clone()).collect();
            let vectors = backends.embedder.embed(&texts, dadly_agent::models::EmbedRole::Passage).await?.vectors;
            for ((entry, _), vector) in batch.drain(..).zip(vectors) {
                let record = VectorRecord { entry_id: entry.id, entry_version: 1, model: backends.embedder.model_name().into(), vector, extra_chunks: vec![], member_ids: entry.member_ids.clone(), topics: vec![], emotions: vec![], occurred_at: entry.occurred_at, terms: vec![] };
                store.put_vector(family.id, &record).await?;
                store.mark_indexed(family.id, entry.id, 1).await?;
            }
        }
    }
    eprintln!("loaded {entries} entries in {:.1} s", started.elapsed().as_secs_f64());
    let token = app.state.auth.mint(user.id, chrono::Duration::hours(6));
    let (_stop, stopped) = watch::channel(false);
    let running = app.serve(stopped).await?;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let ask = |q: String| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            let t = Instant::now();
            let r: Value = http.post(format!("{base}/v1/chat")).bearer_auth(&token).json(&json!({ "message": format!("/ask {q}") })).send().await.unwrap().json().await.unwrap();
            (t.elapsed(), r)
        }
    };
    let (first, _) = ask("When did Minji paint a dragon?".into()).await;
    println!("first question (loads the family): {:.0} ms, RSS {:.0} MiB", first.as_secs_f64() * 1000.0, rss_mib());
    let mut latencies = Vec::new();
    println!("| cycles | RSS MiB | ask p50 ms (last 100) | ask max ms (last 100) |\n|---:|---:|---:|---:|");
    for c in 1..=cycles {
        let r: Value = http.post(format!("{base}/v1/chat")).bearer_auth(&token).json(&json!({ "message": format!("/record Minji found shell number {c} at the beach") })).send().await?.json().await?;
        let id = r["entry_id"].as_str().unwrap().to_string();
        loop {
            let v: Value = http.get(format!("{base}/v1/entries/{id}")).bearer_auth(&token).send().await?.json().await?;
            if v["indexed"] == true && !v["insights"].is_null() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (d, answer) = ask(format!("When did Minji find shell number {c}?")).await;
        assert!(answer["sources"].as_array().is_some_and(|s| !s.is_empty()), "{answer}");
        latencies.push(d);
        if c % 100 == 0 {
            let mut last: Vec<Duration> = std::mem::take(&mut latencies);
            last.sort();
            println!("| {c} | {:.0} | {:.1} | {:.1} |", rss_mib(), last[last.len() / 2].as_secs_f64() * 1000.0, last.last().unwrap().as_secs_f64() * 1000.0);
        }
    }
    let metrics = http.get(format!("{base}/metrics")).send().await?.text().await?;
    let loads = metrics.lines().find(|l| l.starts_with("dadly_index_loads_total ")).unwrap_or("dadly_index_loads_total ?");
    println!("\nfamily reads from the store over the whole run: {loads}");
    Ok(())
}
