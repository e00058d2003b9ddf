//! Load test: the real app (embedded defaults, release build) on a local port,
//! driven by concurrent HTTP clients. Records entries through web chat, waits
//! for enrichment and indexing, then asks questions; prints latency
//! percentiles and throughput for BENCHMARKS.md.
//!
//!     cargo run --release --example loadtest -- [ENTRIES] [QUESTIONS] [CONCURRENCY]
//!     LOADTEST_POSTGRES=1 cargo run --release --example loadtest -- …   # on a fresh Postgres database
//!
//!     LOADTEST_RATE=500 LOADTEST_SECONDS=20 cargo run --release --example loadtest   # freshness at a steady rate
//!
//! The steady mode records at a fixed rate (up to 200 requests in flight) and
//! reports how long entries took to become searchable, from the server's own
//! `dadly_index_lag_seconds` histogram. It talks only to 127.0.0.1 and stops by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dadly::app::App;
use dadly::settings::Settings;
use dadly_agent::store::NewMember;
use serde_json::json;
use tokio::sync::{Semaphore, watch};

const KIDS: [&str; 3] = ["Minji", "Junho", "Sora"];
const THINGS: [&str; 10] = [
    "lost a tooth at breakfast", "rode a bike without training wheels", "painted a dragon at school", "cried at the dentist",
    "built a lego castle with grandpa", "sang a song about rain", "learned to whistle", "read a whole book alone",
    "went swimming with the class", "planted sunflowers in the garden",
];

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn run(label: &str, bodies: Vec<serde_json::Value>, url: &str, token: &str, concurrency: usize) -> Vec<serde_json::Value> {
    let http = reqwest::Client::new();
    let gate = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for body in bodies {
        let (http, gate, url, token) = (http.clone(), gate.clone(), url.to_string(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let t = Instant::now();
            let r = http.post(&url).bearer_auth(&token).json(&body).send().await.expect("request");
            assert!(r.status().is_success(), "{}", r.status());
            let v: serde_json::Value = r.json().await.unwrap();
            (t.elapsed(), v)
        }));
    }
    let mut latencies = Vec::new();
    let mut replies = Vec::new();
    for t in tasks {
        let (d, v) = t.await.unwrap();
        latencies.push(d);
        replies.push(v);
    }
    let wall = started.elapsed();
    latencies.sort();
    println!(
        "| {label} | {} | {concurrency} | {:.0} req/s | {:.1} | {:.1} | {:.1} | {:.1} |",
        latencies.len(),
        latencies.len() as f64 / wall.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        latencies.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0),
    );
    replies
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // LOADTEST_LOG=1: the server's warnings and errors on stderr (why a job retried, say).
    if std::env::var("LOADTEST_LOG").is_ok_and(|v| v == "1") {
        tracing_subscriber::fmt().with_max_level(tracing::Level::WARN).with_writer(std::io::stderr).init();
    }
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (entries, questions, concurrency) = (*args.first().unwrap_or(&1000), *args.get(1).unwrap_or(&300), *args.get(2).unwrap_or(&16));
    let dir = tempfile::tempdir()?;
    let data = dir.path().display().to_string();
    let mut vars: Vec<(&str, String)> = [("DADLY_DATA_DIR", data.as_str()), ("DADLY_BIND", "127.0.0.1:0"), ("DADLY_JOB_POLL_MS", "50"), ("JWT_SECRET", "loadtest-secret-loadtest"), ("DADLY_RATE_LIMIT_PER_MINUTE", "0")]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    // LOADTEST_POSTGRES=1: the same run on a fresh Postgres database (owner and runtime roles, as in production).
    if std::env::var("LOADTEST_POSTGRES").is_ok_and(|v| v == "1") {
        let (runtime, owner) = dadly_testkit::services::postgres_database_with_owner().await.ok_or_else(|| anyhow::anyhow!("no Postgres (DADLY_TEST_POSTGRES_URL)"))?;
        vars.push(("DATABASE_URL", runtime));
        vars.push(("DADLY_DATABASE_OWNER_URL", owner));
    }
    // Any other DADLY_* setting from the environment (workers, batch sizes, pool size…), for experiments.
    let names: Vec<&'static str> = std::env::vars().map(|(k, _)| k).filter(|k| k.starts_with("DADLY_") && !k.starts_with("DADLY_TEST_")).map(|k| &*Box::leak(k.into_boxed_str())).collect();
    for name in names {
        if !vars.iter().any(|(n, _)| *n == name) {
            vars.push((name, std::env::var(name).unwrap_or_default()));
        }
    }
    let settings = Settings::from_lookup(&|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))?;
    let app = App::build(settings).await?;
    let store = app.agent.store().clone();
    let family = store.create_family("Load").await?;
    let user = store.create_user(family.id, "Parent").await?;
    for k in KIDS {
        store.create_member(family.id, NewMember { name: k.into(), aliases: vec![], birth_date: None }).await?;
    }
    let token = app.state.auth.mint(user.id, chrono::Duration::hours(1));
    let (_stop, stopped) = watch::channel(false);
    let running = app.serve(stopped).await?;
    let url = format!("http://{}/v1/chat", running.addr);
    let rate: Option<f64> = std::env::var("LOADTEST_RATE").ok().and_then(|v| v.parse().ok());
    if let Some(rate) = rate {
        let seconds: f64 = std::env::var("LOADTEST_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20.0);
        return steady(&url, &token, rate, seconds, &format!("http://{}/metrics", running.addr)).await;
    }
    println!("| phase | requests | concurrency | throughput | p50 ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|---|");

    let records: Vec<_> = (0..entries)
        .map(|i| json!({ "message": format!("{} {} (note {i}).", KIDS[i % 3], THINGS[i % THINGS.len()]) }))
        .collect();
    run("record (POST /v1/chat)", records, &url, &token, concurrency).await;

    let settle = Instant::now();
    loop {
        let c = store.job_counts(Some(family.id)).await?;
        if c.queued == 0 && c.running == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("\nenrich + embed + index of {entries} entries (2 workers, offline models): {:.2} s ({:.0} entries/s)\n", settle.elapsed().as_secs_f64(), entries as f64 / settle.elapsed().as_secs_f64());

    println!("| phase | requests | concurrency | throughput | p50 ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|---|");
    let asks: Vec<_> = (0..questions).map(|i| json!({ "message": format!("When did {} {}?", KIDS[i % 3], THINGS[(i * 7) % THINGS.len()].split(' ').take(3).collect::<Vec<_>>().join(" ")) })).collect();
    let replies = run(&format!("ask over {entries} entries"), asks, &url, &token, concurrency).await;
    let cited = replies.iter().filter(|r| r["sources"].as_array().is_some_and(|s| !s.is_empty())).count();
    println!("\nanswers with citations: {cited}/{questions}");
    Ok(())
}

/// Records at `rate` entries/s for `seconds` (at most 200 in flight), then
/// reads how long each took to become searchable from `/metrics`.
async fn steady(url: &str, token: &str, rate: f64, seconds: f64, metrics: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let gate = Arc::new(Semaphore::new(200));
    let total = (rate * seconds) as usize;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let permit = gate.clone().acquire_owned().await?;
        let (http, url, token) = (http.clone(), url.to_string(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let t = Instant::now();
            let body = json!({ "message": format!("{} {} (note {i}).", KIDS[i % 3], THINGS[i % THINGS.len()]) });
            let r = http.post(&url).bearer_auth(&token).json(&body).send().await.expect("request");
            assert!(r.status().is_success(), "{}", r.status());
            t.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for t in tasks {
        latencies.push(t.await?);
    }
    let wall = started.elapsed();
    latencies.sort();
    println!("| phase | requests | in flight ≤ | throughput | p50 ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| record at {rate:.0}/s for {seconds:.0} s | {total} | 200 | {:.0} req/s | {:.1} | {:.1} | {:.1} | {:.1} |",
        total as f64 / wall.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        latencies.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0),
    );
    // Wait until every entry is searchable, then read the server's histogram.
    let read = || async { http.get(metrics).send().await?.text().await };
    let settle = Instant::now();
    loop {
        let text = read().await?;
        let count = text.lines().find(|l| l.starts_with("dadly_index_lag_seconds_count")).and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse::<f64>().ok()).unwrap_or(0.0);
        if count as usize >= total || settle.elapsed() > Duration::from_secs(300) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = read().await?;
    let value = |prefix: &str| text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.split_whitespace().last()).and_then(|n| n.parse::<f64>().ok()).unwrap_or(0.0);
    let count = value("dadly_index_lag_seconds_count");
    println!("\nindexed after the run: {:.1} s; entries searchable within (from `dadly_index_lag_seconds`):\n", settle.elapsed().as_secs_f64());
    println!("| ≤ s | entries | share |");
    println!("|---|---|---|");
    for le in ["0.1", "0.25", "0.5", "1", "2", "2.5", "5", "15", "60", "+Inf"] {
        let n = value(&format!("dadly_index_lag_seconds_bucket{{le=\"{le}\"}}"));
        println!("| {le} | {n:.0} | {:.1}% |", 100.0 * n / count.max(1.0));
    }
    // Enrichment (summary, topics, children) is not needed to be found; how long it lagged behind.
    let enriched = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("dadly_jobs_total{") && l.contains("kind=\"enrich\"") && l.contains("outcome=\"done\""))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    loop {
        if enriched(&read().await?) as usize >= total || settle.elapsed() > Duration::from_secs(300) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("\nenriched after the run: {:.1} s", settle.elapsed().as_secs_f64());
    let text = read().await?;
    let value = |prefix: &str| text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.split_whitespace().last()).and_then(|n| n.parse::<f64>().ok()).unwrap_or(0.0);
    // Attempts that did not succeed at once (a retry costs an entry seconds of freshness).
    for line in text.lines().filter(|l| l.starts_with("dadly_jobs_total{") && !l.contains("outcome=\"done\"")) {
        println!("{line}");
    }
    for kind in ["embed", "enrich"] {
        let batches = value(&format!("dadly_job_batches_total{{kind=\"{kind}\"}}"));
        let jobs = value(&format!("dadly_job_batch_jobs_total{{kind=\"{kind}\"}}"));
        println!("{kind} batches: {batches:.0}, {:.1} jobs per batch on average", jobs / batches.max(1.0));
    }
    Ok(())
}
