//! The embedded index's search step, in process: `cargo bench -p dadly-agent --bench search`.
//!
//! One family of N entries (1k, 10k, 100k) with 512- and 1536-dimensional
//! vectors, clustered the way real embeddings are (a few hundred topics plus
//! noise); 300 questions near the data. For each: the quantised index
//! (sign bits for large families, int8, int16 rescoring) — latency single
//! client (p50/p99), 16 at once (p99: 16 OS threads time-sliced by the
//! kernel, and 16 clients served by a worker per core as the server does),
//! recall@10 against the exact scan, and the bytes held against the raw f32
//! bytes. `BENCH_LEAN=2.5` gives every vector a shared direction like real
//! embeddings have; `BENCH_EXACT=1` also times the exact f32 scan.

use std::time::{Duration, Instant};

use chrono::DateTime;
use dadly_agent::store::VectorRecord;
use dadly_agent::vector::quantized::FamilyVectors;
use dadly_agent::vector::{SearchFilter, cosine};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
    }
}

/// `lean`: the size of a direction every vector shares (0: none). Real
/// embeddings have one: e5's unrelated pairs score about 0.78, which a
/// lean of 2.5 gives here.
fn data(n: usize, dims: usize, queries: usize, lean: f32) -> (Vec<VectorRecord>, Vec<Vec<f32>>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let common: Vec<f32> = (0..dims).map(|_| lean * rng.next()).collect();
    let topics: Vec<Vec<f32>> = (0..300).map(|_| (0..dims).map(|i| common[i] + rng.next()).collect()).collect();
    let near = |rng: &mut Rng, i: usize, noise: f32| topics[i % topics.len()].iter().map(|c| c + noise * rng.next()).collect::<Vec<f32>>();
    let records = (0..n)
        .map(|i| VectorRecord {
            entry_id: uuid::Uuid::from_u128(i as u128 + 1),
            entry_version: 1,
            model: "bench".into(),
            vector: near(&mut rng, i * 7919, 0.9),
            extra_chunks: vec![],
            member_ids: vec![],
            topics: vec![],
            emotions: vec![],
            occurred_at: DateTime::from_timestamp(1_700_000_000 + i as i64 * 3600, 0).unwrap(),
            terms: vec![],
        })
        .collect();
    let qs = (0..queries).map(|i| near(&mut rng, i * 31, 1.0)).collect();
    (records, qs)
}

fn exact(records: &[VectorRecord], q: &[f32], k: usize) -> Vec<uuid::Uuid> {
    let mut all: Vec<(f32, uuid::Uuid)> = records.iter().map(|r| (cosine(q, &r.vector), r.entry_id)).collect();
    all.select_nth_unstable_by(k, |a, b| b.0.total_cmp(&a.0));
    all.truncate(k);
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    all.into_iter().map(|(_, id)| id).collect()
}

/// 16 clients, each asking its next question when the last is answered,
/// served by one worker thread per core: how the server runs a search (on
/// its tokio runtime's workers, one per core, without preemption).
fn served(family: &FamilyVectors, queries: &[Vec<f32>], clients: usize) -> Vec<Duration> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (tx, rx) = std::sync::mpsc::channel::<(usize, std::sync::mpsc::Sender<()>)>();
    let rx = std::sync::Mutex::new(rx);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let job = rx.lock().unwrap().recv();
                    let Ok((i, done)) = job else { break };
                    std::hint::black_box(family.search(&queries[i % queries.len()], &SearchFilter::default(), 10));
                    let _ = done.send(());
                }
            });
        }
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let tx = tx.clone();
                s.spawn(move || {
                    (0..40)
                        .map(|i| {
                            let (done, answered) = std::sync::mpsc::channel();
                            let start = Instant::now();
                            tx.send((c * 40 + i, done)).unwrap();
                            answered.recv().unwrap();
                            start.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        drop(tx);
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES").ok().map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect()).unwrap_or(vec![1_000, 10_000, 100_000]);
    let lean: f32 = std::env::var("BENCH_LEAN").ok().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let exact_too = std::env::var("BENCH_EXACT").is_ok_and(|v| v == "1");
    let filter = SearchFilter::default();
    println!("| entries | dims | index | p50 ms | p99 ms | p99 ms, 16 threads | p99 ms, 16 clients on a worker per core | recall@10 | bytes / raw f32 |");
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for dims in [512, 1536] {
        for &n in &sizes {
            let (records, queries) = data(n, dims, 300, lean);
            let raw = n * dims * 4;
            let truth: Vec<Vec<uuid::Uuid>> = queries.iter().map(|q| exact(&records, q, 10)).collect();
            let family = FamilyVectors::from_records(&records);
            // Single client.
            let mut times = Vec::new();
            let mut found = 0;
            for (q, t) in queries.iter().zip(&truth) {
                let start = Instant::now();
                let hits = family.search(q, &filter, 10);
                times.push(start.elapsed());
                found += t.iter().filter(|id| hits.iter().any(|h| h.entry_id == **id)).count();
            }
            times.sort();
            // Sixteen at once, on this machine's cores.
            let family = std::sync::Arc::new(family);
            let mut all = Vec::new();
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..16)
                    .map(|t| {
                        let family = family.clone();
                        let queries = &queries;
                        s.spawn(move || {
                            (0..40).map(|i| {
                                let start = Instant::now();
                                std::hint::black_box(family.search(&queries[(t * 40 + i) % queries.len()], &SearchFilter::default(), 10));
                                start.elapsed()
                            }).collect::<Vec<_>>()
                        })
                    })
                    .collect();
                for h in handles {
                    all.extend(h.join().unwrap());
                }
            });
            all.sort();
            let mut queued = served(&family, &queries, 16);
            queued.sort();
            println!(
                "| {n} | {dims} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | {:.2} |",
                if n >= dadly_agent::vector::quantized::BINARY_MIN_ROWS { "sign bits + int8 + int16" } else { "int8 + int16" },
                percentile(&times, 0.5),
                percentile(&times, 0.99),
                percentile(&all, 0.99),
                percentile(&queued, 0.99),
                found as f64 / (truth.len() * 10) as f64,
                family.bytes() as f64 / raw as f64
            );
            // The exact f32 scan over records that the index replaced (memory: the records themselves).
            if !exact_too {
                continue;
            }
            let mut times = Vec::new();
            for q in queries.iter().take(60) {
                let start = Instant::now();
                std::hint::black_box(exact(&records, q, 10));
                times.push(start.elapsed());
            }
            times.sort();
            println!("| {n} | {dims} | exact f32 scan | {:.2} | {:.2} | – | – | 1.000 | – |", percentile(&times, 0.5), percentile(&times, 0.99));
        }
    }
}
