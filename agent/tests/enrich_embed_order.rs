//! Enrichment and embedding are separate jobs that may finish in either
//! order. Whichever comes second, the vector's payload (children, topics,
//! emotions) ends equal to the insight — on every index backend.

mod support;

use std::sync::Arc;

use dadly_agent::agent::AgentSettings;
use dadly_agent::blob::LocalBlobs;
use dadly_agent::domain::*;
use dadly_agent::metrics::Metrics;
use dadly_agent::models::OfflineModels;
use dadly_agent::pipeline::RecordInput;
use dadly_agent::store::{Job, JobKind, NewMember, Store};
use dadly_agent::trace::{FileTraceSink, Tracer};
use dadly_agent::vector::{EmbeddedIndex, QdrantIndex, VectorIndex};
use dadly_agent::{Agent, Backends};
use dadly_testkit::qdrant::QdrantStandIn;

/// Where the test reads the point's payload back from.
enum Payloads {
    Store(Arc<dyn Store>),
    Qdrant(QdrantStandIn),
}

impl Payloads {
    /// `(member_ids, topics, emotions)` of the entry's point.
    async fn of(&self, family_id: FamilyId, entry_id: EntryId) -> (Vec<String>, Vec<String>, Vec<String>) {
        match self {
            Payloads::Store(store) => {
                let records = store.load_vectors(family_id, None, None).await.unwrap();
                let r = records.into_iter().find(|r| r.entry_id == entry_id).expect("the entry's vector");
                (r.member_ids.iter().map(|m| m.to_string()).collect(), r.topics, r.emotions)
            }
            Payloads::Qdrant(q) => {
                let p = q.payload("entries_v1", &entry_id.to_string()).expect("the entry's point");
                let list = |k: &str| p[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect::<Vec<_>>();
                (list("member_ids"), list("topics"), list("emotions"))
            }
        }
    }
}

fn agent(store: Arc<dyn Store>, index: Arc<dyn VectorIndex>, dir: &std::path::Path) -> Agent {
    agent_with(store, index, dir, Arc::new(Metrics::default()))
}

fn agent_with(store: Arc<dyn Store>, index: Arc<dyn VectorIndex>, dir: &std::path::Path, metrics: Arc<Metrics>) -> Agent {
    let backends = Backends {
        store,
        index,
        blobs: Arc::new(LocalBlobs::new(dir.join("media"), b"secret".to_vec(), "http://127.0.0.1".into())),
        chat: Arc::new(OfflineModels::chat()),
        embedder: Arc::new(OfflineModels::embedder()),
        transcriber: Arc::new(OfflineModels::transcriber()),
        tracer: Tracer::new(Arc::new(FileTraceSink::start(dir.join("traces"))), "test", true),
        metrics,
        channels: Vec::new(),
        capsule_key: None,
    };
    Agent::new(backends, AgentSettings::for_embedder("offline"))
}

async fn both_orders(store: Arc<dyn Store>, index: Arc<dyn VectorIndex>, payloads: Payloads) {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(store.clone(), index, dir.path());
    let family = store.create_family("Kim").await.unwrap();
    let user = store.create_user(family.id, "Parent").await.unwrap();
    store.create_member(family.id, NewMember { name: "Minji".into(), aliases: vec![], birth_date: None }).await.unwrap();

    for order in [[JobKind::Enrich, JobKind::Embed], [JobKind::Embed, JobKind::Enrich]] {
        let entry = agent.record(&user, note("Minji laughed and laughed at the zoo today")).await.unwrap();
        for kind in order {
            let job = Job {
                id: uuid::Uuid::now_v7(),
                family_id: family.id,
                kind,
                entry_id: entry.id,
                entry_version: entry.version,
                attempts: 1,
                max_attempts: 8,
                transient_failures: 0,
            };
            agent.run_job(&job).await.unwrap_or_else(|e| panic!("{order:?}: {kind:?} failed: {e}"));
        }
        let insight = store.get_insight(family.id, entry.id).await.unwrap().expect("enriched");
        assert!(!insight.topics.is_empty() && !insight.emotions.is_empty(), "the offline model found topics and emotions: {insight:?}");
        let expected = (insight.member_ids.iter().map(|m| m.to_string()).collect::<Vec<_>>(), insight.topics.clone(), insight.emotions.clone());
        assert_eq!(payloads.of(family.id, entry.id).await, expected, "{order:?}");
    }
}

#[tokio::test]
async fn payload_equals_insight_in_either_order_on_the_embedded_index_over_sqlite() {
    let (store, _dir) = support::sqlite().await;
    both_orders(store.clone(), Arc::new(EmbeddedIndex::new(store.clone())), Payloads::Store(store)).await;
}

#[tokio::test]
async fn payload_equals_insight_in_either_order_on_the_embedded_index_over_postgres() {
    let Some(pg) = support::postgres().await else { return };
    let store: Arc<dyn Store> = pg;
    both_orders(store.clone(), Arc::new(EmbeddedIndex::new(store.clone())), Payloads::Store(store)).await;
}

#[tokio::test]
async fn payload_equals_insight_in_either_order_on_qdrant() {
    let (store, _dir) = support::sqlite().await;
    let standin = QdrantStandIn::start(None).await;
    let index = QdrantIndex::connect(&standin.url, None, "entries_v1", dadly_agent::models::OFFLINE_DIMENSIONS).await.unwrap();
    both_orders(store, Arc::new(index), Payloads::Qdrant(standin)).await;
}

/// An agent over SQLite and the Qdrant stand-in, with a family and its parent.
struct OnQdrant {
    store: Arc<dyn Store>,
    standin: QdrantStandIn,
    agent: Arc<Agent>,
    family: Family,
    user: User,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn on_qdrant() -> OnQdrant {
    let (store, db) = support::sqlite().await;
    let standin = QdrantStandIn::start(None).await;
    let index = QdrantIndex::connect(&standin.url, None, "entries_v1", dadly_agent::models::OFFLINE_DIMENSIONS).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agent = Arc::new(agent(store.clone(), Arc::new(index), dir.path()));
    let family = store.create_family("Kim").await.unwrap();
    let user = store.create_user(family.id, "Parent").await.unwrap();
    OnQdrant { store, standin, agent, family, user, _dirs: (db, dir) }
}

/// Enrichment that lands while an embedding batch writes its vectors (after
/// the batch read the insights, before its write is applied) finds no point
/// to update; the batch reads the insights again after writing and writes
/// the late one's payload, so the point still ends equal to the insight.
#[tokio::test]
async fn enrichment_landing_while_the_vectors_are_written_still_reaches_the_payload() {
    let OnQdrant { store, standin, agent, family, user, _dirs } = on_qdrant().await;
    store.create_member(family.id, NewMember { name: "Minji".into(), aliases: vec![], birth_date: None }).await.unwrap();
    let entry = agent.record(&user, note("Minji laughed and laughed at the zoo today")).await.unwrap();

    let hold = standin.hold_next_upsert();
    let embedding = tokio::spawn({
        let (agent, job) = (agent.clone(), job(JobKind::Embed, &entry));
        async move { agent.run_job(&job).await }
    });
    hold.arrived().await;
    agent.run_job(&job(JobKind::Enrich, &entry)).await.unwrap();
    assert!(standin.payload("entries_v1", &entry.id.to_string()).is_none(), "the vectors are not written yet");
    hold.release();
    embedding.await.unwrap().unwrap();

    let insight = store.get_insight(family.id, entry.id).await.unwrap().expect("enriched");
    assert!(!insight.member_ids.is_empty() && !insight.topics.is_empty(), "the offline model found Minji and topics: {insight:?}");
    let expected = (insight.member_ids.iter().map(|m| m.to_string()).collect::<Vec<_>>(), insight.topics.clone(), insight.emotions.clone());
    assert_eq!(Payloads::Qdrant(standin).of(family.id, entry.id).await, expected);
}

/// A parent's note from the web, now.
fn note(text: &str) -> RecordInput {
    RecordInput {
        text: text.into(),
        source: Source::Web,
        occurred_at: None,
        member_ids: None,
        sent_at: chrono::Utc::now().fixed_offset(),
        dedupe_key: None,
        reply_to: None,
    }
}

fn job(kind: JobKind, entry: &Entry) -> Job {
    Job { id: uuid::Uuid::now_v7(), family_id: entry.family_id, kind, entry_id: entry.id, entry_version: entry.version, attempts: 1, max_attempts: 8, transient_failures: 0 }
}

/// Two embedding jobs of one entry in a batch (its first embedding and the
/// one after its photo's description) are one parent wait; an enrichment
/// batch writes each live entry's insight once and leaves an edited one's
/// old job a no-op.
#[tokio::test]
async fn batches_count_an_entry_once_and_skip_stale_versions() {
    let (store, _dir) = support::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::default());
    let agent = agent_with(store.clone(), Arc::new(EmbeddedIndex::new(store.clone())), dir.path(), metrics.clone());
    let family = store.create_family("Kim").await.unwrap();
    let user = store.create_user(family.id, "Parent").await.unwrap();
    store.create_member(family.id, NewMember { name: "Minji".into(), aliases: vec![], birth_date: None }).await.unwrap();
    let a = agent.record(&user, note("Minji built a sandcastle at the beach")).await.unwrap();
    let b = agent.record(&user, note("민지가 이를 닦았다。🦷")).await.unwrap();

    let outcomes = agent.run_batch(&[job(JobKind::Embed, &a), job(JobKind::Embed, &a), job(JobKind::Embed, &b)]).await;
    assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
    let lag = metrics.render();
    assert!(lag.contains("dadly_index_lag_seconds_count 2\n"), "two entries, two waits:\n{lag}");

    let old = job(JobKind::Enrich, &b);
    let edited = store.update_entry(family.id, b.id, "민지가 이를 닦고 웃었다", &[], &[]).await.unwrap();
    let outcomes = agent.run_batch(&[job(JobKind::Enrich, &a), old, job(JobKind::Enrich, &edited)]).await;
    let outcomes: Vec<&str> = outcomes.iter().map(|o| *o.as_ref().unwrap()).collect();
    assert_eq!(outcomes, vec!["enriched", "stale", "enriched"]);
    assert_eq!(store.get_insight(family.id, b.id).await.unwrap().unwrap().entry_version, edited.version);
    assert!(store.get_insight(family.id, a.id).await.unwrap().is_some());
}

/// A row that a batch's write refuses fails only its own job: the jobs that
/// shared its first batch are retried each on its own and land, and it
/// alone runs out of attempts.
#[tokio::test]
async fn a_write_refusing_one_entry_does_not_hold_back_its_batch_mates() {
    let OnQdrant { store, standin, agent, family, user, _dirs } = on_qdrant().await;
    let mut entries = Vec::new();
    for text in ["We baked bread", "Minji read a book", "Junho fell asleep on the bus", "Rain all day, puzzles inside"] {
        entries.push(agent.record(&user, note(text)).await.unwrap());
    }
    // The third of the four sits between its mates in the batch.
    let refused = entries[2].id;
    standin.refuse_upserts_of(&refused.to_string());
    let settings = dadly_agent::jobs::WorkerSettings {
        backoff_base: std::time::Duration::from_millis(1),
        backoff_max: std::time::Duration::from_millis(2),
        embed_batch: 8,
        ..Default::default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let counts = store.job_counts(Some(family.id)).await.unwrap();
        // Four enrichment jobs stay queued: this test runs the embedding lane only.
        if counts.done + counts.failed == 4 || std::time::Instant::now() > deadline {
            break;
        }
        // Every retry is due by the next claim, so a claim takes all that are waiting.
        dadly_agent::jobs::run_batch(&agent, &settings).await;
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    let counts = store.job_counts(Some(family.id)).await.unwrap();
    assert_eq!((counts.done, counts.failed), (3, 1), "three embeddings landed, the refused one failed for good: {counts:?}");
    for e in entries.iter().filter(|e| e.id != refused) {
        assert!(standin.payload("entries_v1", &e.id.to_string()).is_some(), "{} is indexed", e.raw_text);
    }
    assert!(standin.payload("entries_v1", &refused.to_string()).is_none());
}
