//! The `VectorIndex` contract, run against every backend: the embedded index
//! over SQLite and over Postgres, Qdrant through the gRPC stand-in, and a real
//! Qdrant whenever `QDRANT_URL` is set.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use dadly_agent::domain::*;
use dadly_agent::store::*;
use dadly_agent::vector::*;
use dadly_testkit::qdrant::QdrantStandIn;

const DIMS: usize = 4;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

struct World {
    family: Family,
    kids: Vec<Member>,
    entries: Vec<Entry>,
}

/// Entries exist in the store (the embedded index keeps vectors beside them).
async fn world(store: &dyn Store, name: &str) -> World {
    let family = store.create_family(name).await.unwrap();
    let user = store.create_user(family.id, "p").await.unwrap();
    let mut kids = Vec::new();
    for k in ["A", "B"] {
        kids.push(store.create_member(family.id, NewMember { name: k.into(), aliases: vec![], birth_date: None }).await.unwrap());
    }
    let mut entries = Vec::new();
    for (i, at) in ["2026-10-01T10:00:00Z", "2026-10-15T10:00:00Z", "2026-11-01T10:00:00Z"].iter().enumerate() {
        let new = NewEntry { author_id: user.id, raw_text: format!("e{i}"), member_ids: vec![kids[i % 2].id], occurred_at: t(at), ..Default::default() };
        entries.push(store.insert_entry(family.id, new, &[]).await.unwrap());
    }
    World { family, kids, entries }
}

fn record(e: &Entry, vector: [f32; DIMS]) -> VectorRecord {
    VectorRecord { entry_id: e.id, entry_version: e.version, model: "m".into(), vector: vector.to_vec(), extra_chunks: vec![], member_ids: e.member_ids.clone(), topics: vec![], emotions: vec![], occurred_at: e.occurred_at, terms: vec![] }
}

fn ids(hits: &[Hit]) -> Vec<EntryId> {
    hits.iter().map(|h| h.entry_id).collect()
}

async fn contract(store: Arc<dyn Store>, index: Arc<dyn VectorIndex>) {
    let w = world(store.as_ref(), "Kim").await;
    let other = world(store.as_ref(), "Lee").await;
    let fid = w.family.id;
    index.upsert(fid, record(&w.entries[0], [1.0, 0.0, 0.0, 0.0])).await.unwrap();
    index.upsert(fid, record(&w.entries[1], [0.7, 0.7, 0.0, 0.0])).await.unwrap();
    index.upsert(fid, record(&w.entries[2], [0.0, 0.0, 1.0, 0.0])).await.unwrap();
    // The same direction in another family: must never come back for Kim.
    index.upsert(other.family.id, record(&other.entries[0], [1.0, 0.0, 0.0, 0.0])).await.unwrap();

    let q = [1.0, 0.1, 0.0, 0.0];
    let hits = index.search(fid, &q, &SearchFilter::default(), 10).await.unwrap();
    assert_eq!(ids(&hits), vec![w.entries[0].id, w.entries[1].id, w.entries[2].id], "ranked by cosine, own family only");
    assert!(hits[0].score > 0.99 && hits[0].score <= 1.0001, "cosine similarity: {}", hits[0].score);
    assert!(hits[2].score.abs() < 1e-4);
    assert_eq!(index.search(fid, &q, &SearchFilter::default(), 1).await.unwrap().len(), 1, "limit");
    let lee = index.search(other.family.id, &q, &SearchFilter::default(), 10).await.unwrap();
    assert_eq!(ids(&lee), vec![other.entries[0].id]);

    let only_b = SearchFilter { member_ids: vec![w.kids[1].id], ..Default::default() };
    assert_eq!(ids(&index.search(fid, &q, &only_b, 10).await.unwrap()), vec![w.entries[1].id]);
    let either = SearchFilter { member_ids: vec![w.kids[0].id, w.kids[1].id], ..Default::default() };
    assert_eq!(index.search(fid, &q, &either, 10).await.unwrap().len(), 3);
    let october = SearchFilter { from: Some(t("2026-10-01T00:00:00Z")), to: Some(t("2026-11-01T00:00:00Z")), ..Default::default() };
    assert_eq!(ids(&index.search(fid, &q, &october, 10).await.unwrap()), vec![w.entries[0].id, w.entries[1].id], "from inclusive, to exclusive");

    // Upserts are idempotent and replace the vector.
    index.upsert(fid, record(&w.entries[2], [1.0, 0.0, 0.0, 0.0])).await.unwrap();
    index.upsert(fid, record(&w.entries[2], [1.0, 0.0, 0.0, 0.0])).await.unwrap();
    let hits = index.search(fid, &q, &SearchFilter::default(), 10).await.unwrap();
    assert_eq!(hits.len(), 3);
    assert!(ids(&hits)[..2].contains(&w.entries[2].id));

    // Payload updates change what filters see, without re-embedding.
    index.set_payload(fid, w.entries[0].id, &[w.kids[1].id], &["school".into()], &["joy".into()]).await.unwrap();
    let now_b = ids(&index.search(fid, &q, &only_b, 10).await.unwrap());
    assert!(now_b.contains(&w.entries[0].id) && now_b.contains(&w.entries[1].id), "{now_b:?}");
    // Another family cannot touch Kim's points.
    index.set_payload(other.family.id, w.entries[1].id, &[], &[], &[]).await.unwrap();
    index.delete(other.family.id, w.entries[1].id).await.unwrap();
    assert_eq!(index.search(fid, &q, &only_b, 10).await.unwrap().len(), 2, "Lee's delete did not remove Kim's point");
    index.set_payload(fid, EntryId::now_v7(), &[], &[], &[]).await.unwrap();

    index.delete(fid, w.entries[0].id).await.unwrap();
    index.delete(fid, w.entries[0].id).await.unwrap();
    let left = ids(&index.search(fid, &q, &SearchFilter::default(), 10).await.unwrap());
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&w.entries[0].id));

    // A long entry has a vector per piece: it is found by any piece, once,
    // scored by its best; its payload and deletion cover every piece.
    let mut long = record(&w.entries[0], [0.0, 0.0, 0.0, 1.0]);
    long.extra_chunks = vec![vec![0.0, 1.0, 0.0, 0.0], vec![0.0, 0.9, 0.1, 0.0]];
    index.upsert(fid, long).await.unwrap();
    let by_second_piece = index.search(fid, &[0.0, 1.0, 0.0, 0.0], &SearchFilter::default(), 10).await.unwrap();
    assert_eq!(by_second_piece.iter().filter(|h| h.entry_id == w.entries[0].id).count(), 1, "one hit per entry: {by_second_piece:?}");
    assert_eq!(by_second_piece[0].entry_id, w.entries[0].id);
    assert!(by_second_piece[0].score > 0.99);
    assert_eq!(index.search(fid, &[0.0, 1.0, 0.0, 0.0], &SearchFilter::default(), 1).await.unwrap().len(), 1, "the limit counts entries");
    index.set_payload(fid, w.entries[0].id, &[w.kids[1].id], &[], &[]).await.unwrap();
    let only_b_long = ids(&index.search(fid, &[0.0, 1.0, 0.0, 0.0], &only_b, 10).await.unwrap());
    assert_eq!(only_b_long.first(), Some(&w.entries[0].id), "every piece got the payload: {only_b_long:?}");
    // Re-indexed shorter (an edit): the old pieces are gone.
    index.upsert(fid, record(&w.entries[0], [0.0, 0.0, 0.0, 1.0])).await.unwrap();
    let after_edit = index.search(fid, &[0.0, 1.0, 0.0, 0.0], &SearchFilter::default(), 10).await.unwrap();
    let score = after_edit.iter().find(|h| h.entry_id == w.entries[0].id).map(|h| h.score).unwrap_or(0.0);
    assert!(score.abs() < 1e-4, "no stale piece scores for it: {after_edit:?}");
    index.delete(fid, w.entries[0].id).await.unwrap();
    let gone = index.search(fid, &[0.0, 1.0, 0.0, 0.0], &SearchFilter::default(), 10).await.unwrap();
    assert!(!ids(&gone).contains(&w.entries[0].id), "every piece deleted: {gone:?}");

    // An entry about no child in particular ("built a blanket fort") is about
    // the whole family: a filter on any child admits it, one on another child's
    // entries still does not admit theirs.
    index.set_payload(fid, w.entries[2].id, &[], &[], &[]).await.unwrap();
    let only_a = SearchFilter { member_ids: vec![w.kids[0].id], ..Default::default() };
    assert_eq!(ids(&index.search(fid, &q, &only_a, 10).await.unwrap()), vec![w.entries[2].id]);
    let mut about_b = ids(&index.search(fid, &q, &only_b, 10).await.unwrap());
    about_b.sort();
    let mut expected = vec![w.entries[1].id, w.entries[2].id];
    expected.sort();
    assert_eq!(about_b, expected);
}

/// The embedded index keeps a family's vectors in memory: every way a vector
/// changes in the Store, from this process or another, must show in the next search.
async fn embedded_cache_follows_the_store(store: Arc<dyn Store>) {
    let index = EmbeddedIndex::new(store.clone());
    let w = world(store.as_ref(), "Kim").await;
    let fid = w.family.id;
    let q = [1.0, 0.0, 0.0, 0.0];
    index.upsert(fid, record(&w.entries[0], [1.0, 0.0, 0.0, 0.0])).await.unwrap();
    assert_eq!(ids(&index.search(fid, &q, &SearchFilter::default(), 10).await.unwrap()), vec![w.entries[0].id]);
    // Written behind the index's back (as another instance would).
    store.put_vector(fid, &record(&w.entries[1], [0.9, 0.1, 0.0, 0.0])).await.unwrap();
    assert_eq!(index.search(fid, &q, &SearchFilter::default(), 10).await.unwrap().len(), 2);
    // The entry is deleted: its vector goes by cascade.
    store.delete_entry(fid, w.entries[0].id).await.unwrap();
    assert_eq!(ids(&index.search(fid, &q, &SearchFilter::default(), 10).await.unwrap()), vec![w.entries[1].id]);
    // Payload changes show in filters.
    let only_a = SearchFilter { member_ids: vec![w.kids[0].id], ..Default::default() };
    assert!(index.search(fid, &q, &only_a, 10).await.unwrap().is_empty());
    store.set_vector_payload(fid, w.entries[1].id, &[w.kids[0].id], &[], &[]).await.unwrap();
    assert_eq!(index.search(fid, &q, &only_a, 10).await.unwrap().len(), 1);

    // Its own writes update the copy in place: write-then-ask reads nothing again.
    let loads = index.loads();
    index.upsert(fid, record(&w.entries[2], [0.8, 0.2, 0.0, 0.0])).await.unwrap();
    assert_eq!(index.search(fid, &q, &SearchFilter::default(), 10).await.unwrap().len(), 2);
    index.set_payload(fid, w.entries[2].id, &[w.kids[0].id], &[], &[]).await.unwrap();
    assert_eq!(index.search(fid, &q, &only_a, 10).await.unwrap().len(), 2);
    index.delete(fid, w.entries[1].id).await.unwrap();
    assert_eq!(ids(&index.search(fid, &q, &SearchFilter::default(), 10).await.unwrap()), vec![w.entries[2].id]);
    assert_eq!(index.loads(), loads, "no reload after its own writes");
    // Two workers writing at once (an embedding and an enrichment) still update in place.
    let index = Arc::new(index);
    let writes: Vec<_> = (0..8)
        .map(|i| {
            let (index, e, kid) = (index.clone(), w.entries[i % 3].clone(), w.kids[i % 2].id);
            tokio::spawn(async move {
                if i % 2 == 0 {
                    index.upsert(fid, record(&e, [0.7, 0.3, 0.0, 0.0])).await.unwrap();
                } else {
                    index.set_payload(fid, e.id, &[kid], &[], &[]).await.unwrap();
                }
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap();
    }
    // (Entry 0 was deleted above, so its writes change nothing; 1 and 2 have vectors.)
    assert_eq!(index.search(fid, &q, &SearchFilter::default(), 10).await.unwrap().len(), 2);
    assert_eq!(index.loads(), loads, "concurrent writes of this process need no reload either");

    // Many first questions at once load the family once.
    let cold = Arc::new(EmbeddedIndex::new(store.clone()));
    let asks: Vec<_> = (0..8).map(|_| {
        let cold = cold.clone();
        tokio::spawn(async move { cold.search(fid, &q, &SearchFilter::default(), 10).await.unwrap().len() })
    }).collect();
    for ask in asks {
        assert_eq!(ask.await.unwrap(), 2);
    }
    assert_eq!(cold.loads(), 1, "single-flight");

    // The copies are bounded in bytes: a second family pushes the least recently used out.
    let other = world(store.as_ref(), "Lee").await;
    index.upsert(other.family.id, record(&other.entries[0], [0.0, 1.0, 0.0, 0.0])).await.unwrap();
    let tight = EmbeddedIndex::with_cache_bytes(store.clone(), 1);
    tight.search(fid, &q, &SearchFilter::default(), 10).await.unwrap();
    let one = tight.cache_bytes().unwrap();
    assert!(one > 0);
    tight.search(other.family.id, &q, &SearchFilter::default(), 10).await.unwrap();
    assert!(tight.cache_bytes().unwrap() <= one.max(1) * 2, "only the family in use stays");
    let before = tight.loads();
    tight.search(fid, &q, &SearchFilter::default(), 10).await.unwrap();
    assert_eq!(tight.loads(), before + 1, "the evicted family is read again");
}

#[tokio::test]
async fn embedded_cache_follows_sqlite() {
    let (store, _dir) = support::sqlite().await;
    embedded_cache_follows_the_store(store).await;
}

#[tokio::test]
async fn embedded_cache_follows_postgres() {
    let Some(store) = support::postgres().await else { return };
    embedded_cache_follows_the_store(store).await;
}

#[tokio::test]
async fn embedded_index_over_sqlite() {
    let (store, _dir) = support::sqlite().await;
    contract(store.clone(), Arc::new(EmbeddedIndex::new(store))).await;
}

#[tokio::test]
async fn embedded_index_over_postgres() {
    let Some(store) = support::postgres().await else { return };
    let store: Arc<dyn Store> = store;
    contract(store.clone(), Arc::new(EmbeddedIndex::new(store))).await;
}

#[tokio::test]
async fn qdrant_index_over_the_grpc_stand_in() {
    let qdrant = QdrantStandIn::start(Some("secret-key")).await;
    let (store, _dir) = support::sqlite().await;
    let index = QdrantIndex::connect(&qdrant.url, Some("secret-key"), "entries_v1", DIMS).await.unwrap();
    contract(store, Arc::new(index)).await;
    let indexes = qdrant.indexes("entries_v1");
    for field in ["owner_id", "member_ids", "topics", "emotions", "occurred_at"] {
        assert!(indexes.contains_key(field), "payload index on {field}: {indexes:?}");
    }
    // Isolation is the server's filter, not only the client's re-check: every
    // point read or write the contract made carried a `must owner_id`.
    let calls = qdrant.calls();
    for method in ["search", "set_payload", "delete"] {
        assert!(calls.iter().any(|c| c.method == method), "the contract exercises {method}: {calls:?}");
    }
    let unconfined: Vec<_> = calls.iter().filter(|c| c.must_owner.is_none()).collect();
    assert!(unconfined.is_empty(), "calls without a must owner_id condition: {unconfined:?}");
}

#[tokio::test]
async fn qdrant_index_against_a_real_server_when_configured() {
    let Ok(url) = std::env::var("QDRANT_URL") else {
        // Past the harness's capture, so the skip is visible; no Qdrant server can run here, so CI skips too.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: QDRANT_URL not set; the gRPC stand-in test covers the protocol");
        return;
    };
    let key = std::env::var("QDRANT_API_KEY").ok();
    let collection = format!("dadly_test_{}", uuid::Uuid::new_v4().simple());
    let (store, _dir) = support::sqlite().await;
    let index = QdrantIndex::connect(&url, key.as_deref(), &collection, DIMS).await.unwrap();
    contract(store, Arc::new(index)).await;
}

#[tokio::test]
async fn an_existing_collection_of_another_size_is_a_clear_error() {
    let qdrant = QdrantStandIn::start(None).await;
    QdrantIndex::connect(&qdrant.url, None, "entries_v1", 3072).await.unwrap();
    QdrantIndex::connect(&qdrant.url, None, "entries_v1", 3072).await.expect("reconnecting to the same size is fine");
    let err = QdrantIndex::connect(&qdrant.url, None, "entries_v1", 1536).await.err().expect("a size mismatch");
    assert!(matches!(err, IndexError::Dimensions { expected: 3072, got: 1536 }), "{err:?}");
}

#[tokio::test]
async fn a_wrong_api_key_is_refused() {
    let qdrant = QdrantStandIn::start(Some("right")).await;
    let err = QdrantIndex::connect(&qdrant.url, Some("wrong"), "entries_v1", 4).await.err().expect("refused");
    assert!(matches!(err, IndexError::Unavailable(_)), "{err:?}");
}

/// Qdrant keeps an entry's lexical terms as the sparse vector `terms` (IDF
/// applied by the server) and answers the lexical side of hybrid retrieval
/// through the Query API: by the family, the filter, rarer terms first, with
/// the question's terms each entry holds, and following upserts and deletes.
#[tokio::test]
async fn qdrant_keeps_the_lexical_terms_as_sparse_vectors() {
    sparse_contract(QdrantStandIn::start(None).await).await;
}

/// The same against a server that sends sparse vectors back in the older
/// fields (Qdrant before 1.16; `docker-compose.yml` runs 1.15).
#[tokio::test]
async fn qdrant_before_1_16_answers_the_lexical_side_too() {
    let qdrant = QdrantStandIn::start(None).await;
    qdrant.answer_like_1_15();
    sparse_contract(qdrant).await;
}

async fn sparse_contract(qdrant: QdrantStandIn) {
    let (store, _dir) = support::sqlite().await;
    let index = QdrantIndex::connect(&qdrant.url, None, "entries_v1", DIMS).await.unwrap();
    assert_eq!(index.lexical_backend(), "qdrant");
    assert_eq!(qdrant.sparse_vectors("entries_v1").get("terms"), Some(&1), "a `terms` sparse vector with the IDF modifier");
    let k = world(store.as_ref(), "K").await;
    let l = world(store.as_ref(), "L").await;
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let with_terms = |e: &Entry, v: [f32; DIMS], t: &[&str]| VectorRecord { terms: words(t), ..record(e, v) };
    let mut long = with_terms(&k.entries[2], [0.0, 0.0, 1.0, 0.0], &["park", "swim", "minji"]);
    long.extra_chunks = vec![vec![0.0, 1.0, 0.0, 0.0]];
    index
        .upsert_many(k.family.id, vec![with_terms(&k.entries[0], [1.0, 0.0, 0.0, 0.0], &["bike", "wheel", "junho"]), with_terms(&k.entries[1], [0.0, 1.0, 0.0, 0.0], &["bike", "park", "minji"]), long])
        .await
        .unwrap();
    index.upsert(l.family.id, with_terms(&l.entries[0], [1.0, 0.0, 0.0, 0.0], &["bike", "wheel", "sora"])).await.unwrap();
    // Only an entry's first point carries its terms: one lexical hit per entry.
    assert!(qdrant.sparse_vector("entries_v1", &k.entries[0].id.to_string(), "terms").is_some());
    assert_eq!(qdrant.count("entries_v1"), 5);

    let all = SearchFilter::default();
    let search = |family: FamilyId, t: &[&str], f: &SearchFilter| {
        let (index, terms, f) = (&index, words(t), f.clone());
        async move { index.lexical_search(family, &terms, &f, 10).await.unwrap().expect("qdrant answers the lexical side") }
    };
    let found = search(k.family.id, &["wheel", "bike"], &all).await;
    let ids: Vec<EntryId> = found.iter().map(|h| h.entry_id).collect();
    assert_eq!(ids, vec![k.entries[0].id, k.entries[1].id], "both terms beat one; the other family's bike never: {found:?}");
    assert_eq!((found[0].terms.clone(), found[1].terms.clone()), (words(&["wheel", "bike"]), words(&["bike"])), "the question's terms each holds");
    // "swim" is in one point of four, "bike" in three: the rarer term ranks first (IDF).
    let rare = search(k.family.id, &["bike", "swim"], &all).await;
    assert_eq!(rare.len(), 3, "{rare:?}");
    assert_eq!(rare[0].entry_id, k.entries[2].id, "{rare:?}");
    assert!(rare[0].score > rare[1].score && rare[1].score == rare[2].score, "{rare:?}");
    // The search filter narrows it as it does the dense search.
    let about_a = SearchFilter { member_ids: vec![k.kids[0].id], ..Default::default() };
    // (kid A is in e0 and e2: e1's "bike" and "park" are about kid B.)
    let about_a_found: Vec<EntryId> = search(k.family.id, &["bike", "park"], &about_a).await.iter().map(|h| h.entry_id).collect();
    assert_eq!(about_a_found.len(), 2, "{about_a_found:?}");
    assert!(about_a_found.contains(&k.entries[0].id) && about_a_found.contains(&k.entries[2].id));
    let october_late = SearchFilter { from: Some(t("2026-10-10T00:00:00Z")), ..Default::default() };
    assert_eq!(search(k.family.id, &["bike"], &october_late).await.iter().map(|h| h.entry_id).collect::<Vec<_>>(), vec![k.entries[1].id]);
    assert!(search(l.family.id, &["junho", "park", "swim"], &all).await.is_empty(), "another family's words find nothing");
    // An edit's new terms replace the old; a deleted entry is gone from the lexical side too.
    index.upsert(k.family.id, with_terms(&k.entries[1], [0.0, 1.0, 0.0, 0.0], &["scooter"])).await.unwrap();
    assert_eq!(search(k.family.id, &["bike"], &all).await.iter().map(|h| h.entry_id).collect::<Vec<_>>(), vec![k.entries[0].id]);
    index.delete(k.family.id, k.entries[0].id).await.unwrap();
    assert!(search(k.family.id, &["bike", "wheel"], &all).await.is_empty());
    let calls = qdrant.calls();
    assert!(calls.iter().any(|c| c.method == "query"), "{calls:?}");
    assert!(calls.iter().all(|c| c.must_owner.is_some()), "every query confined to its family: {calls:?}");
}

/// A collection made before the sparse vector existed keeps working: the
/// dense search is unchanged and the store's lexical index answers the rest.
#[tokio::test]
async fn a_collection_without_the_sparse_vector_leaves_the_lexical_side_to_the_store() {
    use qdrant_client::qdrant::{CreateCollectionBuilder, Distance, VectorParamsBuilder};
    let qdrant = QdrantStandIn::start(None).await;
    let client = qdrant_client::Qdrant::from_url(&qdrant.url).skip_compatibility_check().build().unwrap();
    client.create_collection(CreateCollectionBuilder::new("entries_v1").vectors_config(VectorParamsBuilder::new(DIMS as u64, Distance::Cosine))).await.unwrap();
    let (store, _dir) = support::sqlite().await;
    let index = QdrantIndex::connect(&qdrant.url, None, "entries_v1", DIMS).await.unwrap();
    assert_eq!(index.lexical_backend(), "store");
    let k = world(store.as_ref(), "K").await;
    index.upsert(k.family.id, VectorRecord { terms: vec!["bike".into()], ..record(&k.entries[0], [1.0, 0.0, 0.0, 0.0]) }).await.unwrap();
    assert!(qdrant.sparse_vector("entries_v1", &k.entries[0].id.to_string(), "terms").is_none(), "no sparse vector is written where none is configured");
    assert!(index.lexical_search(k.family.id, &["bike".into()], &SearchFilter::default(), 5).await.unwrap().is_none());
    let hits = index.search(k.family.id, &[1.0, 0.0, 0.0, 0.0], &SearchFilter::default(), 5).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.entry_id).collect::<Vec<_>>(), vec![k.entries[0].id]);
}
