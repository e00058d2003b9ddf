//! The `Store` contract, written once and run against every backend: SQLite
//! always, Postgres when reachable (always in CI). Postgres also proves
//! row-level security and that two workers drain one queue exactly once.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use dadly_agent::domain::*;
use dadly_agent::store::*;
use uuid::Uuid;

#[derive(Clone)]
struct Fam {
    family: Family,
    user: User,
    kids: Vec<Member>,
}

async fn fam(store: &dyn Store, name: &str) -> Fam {
    let family = store.create_family(name).await.unwrap();
    let user = store.create_user(family.id, "Parent").await.unwrap();
    let mut kids = Vec::new();
    for kid in ["Minji", "Junho"] {
        kids.push(store.create_member(family.id, NewMember { name: kid.into(), aliases: vec![format!("{kid}-ko")], birth_date: NaiveDate::from_ymd_opt(2019, 1, 2) }).await.unwrap());
    }
    Fam { family, user, kids }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

async fn add(store: &dyn Store, f: &Fam, text: &str, at: &str, kids: &[usize]) -> Entry {
    let new = NewEntry {
        author_id: f.user.id,
        source: Source::Web,
        raw_text: text.into(),
        member_ids: kids.iter().map(|i| f.kids[*i].id).collect(),
        occurred_at: t(at),
        ..Default::default()
    };
    store.insert_entry(f.family.id, new, &[JobKind::Enrich, JobKind::Embed]).await.unwrap()
}

fn insight(e: &Entry, version: i64, topics: &[&str], emotions: &[&str]) -> Insight {
    Insight {
        entry_id: e.id,
        entry_version: version,
        summary: "s".into(),
        topics: topics.iter().map(|s| s.to_string()).collect(),
        emotions: emotions.iter().map(|s| s.to_string()).collect(),
        member_ids: e.member_ids.clone(),
        model: "m".into(),
        prompt_name: "enrich".into(),
        prompt_version: "1".into(),
        created_at: Utc::now(),
    }
}

async fn families_users_and_members(store: Arc<dyn Store>) {
    let f = fam(store.as_ref(), "Kim").await;
    let user = store.get_user(f.user.id).await.unwrap();
    assert_eq!(user.family_id, f.family.id);
    let kids = store.list_members(f.family.id).await.unwrap();
    assert_eq!(kids, f.kids);
    assert_eq!(kids[0].aliases, vec!["Minji-ko"]);
    assert_eq!(kids[0].birth_date, NaiveDate::from_ymd_opt(2019, 1, 2));
    let dup = store.create_member(f.family.id, NewMember { name: "Minji".into(), aliases: vec![], birth_date: None }).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert!(matches!(store.get_user(Uuid::now_v7()).await, Err(StoreError::NotFound)));
    assert!(matches!(store.create_user(Uuid::now_v7(), "x").await, Err(StoreError::NotFound | StoreError::Backend(_))));
    store.ping().await.unwrap();
}

async fn entries_lifecycle(store: Arc<dyn Store>) {
    let f = fam(store.as_ref(), "Kim").await;
    let fid = f.family.id;
    let a = add(store.as_ref(), &f, "first", "2026-10-01T10:00:00Z", &[0]).await;
    let b = add(store.as_ref(), &f, "second", "2026-10-02T10:00:00Z", &[1]).await;
    let c = add(store.as_ref(), &f, "third", "2026-10-03T10:00:00Z", &[0, 1]).await;
    assert_eq!(a.version, 1);
    assert_eq!(a.raw_text, "first");
    assert_eq!(a.occurred_at, t("2026-10-01T10:00:00Z"));
    let mut both = vec![f.kids[0].id, f.kids[1].id];
    both.sort();
    assert_eq!(store.get_entry(fid, c.id).await.unwrap().member_ids, both);
    // What insert hands back is what the store reads back, to the stored precision.
    let precise = NewEntry {
        author_id: f.user.id,
        source: Source::Telegram,
        raw_text: "at nanoseconds 🕰".into(),
        member_ids: vec![f.kids[1].id, f.kids[0].id, f.kids[1].id],
        occurred_at: t("2026-10-04T10:00:00.123456789Z"),
        reply_to: Some("chat:7".into()),
        ..Default::default()
    };
    let written = store.insert_entry(fid, precise, &[JobKind::Embed, JobKind::Enrich]).await.unwrap();
    assert_eq!(written, store.get_entry(fid, written.id).await.unwrap());
    assert_eq!(written.member_ids, both);
    store.delete_entry(fid, written.id).await.unwrap();

    let all = store.list_entries(fid, &EntryFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), vec![c.id, b.id, a.id]);
    let minji = store.list_entries(fid, &EntryFilter { member_id: Some(f.kids[0].id), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(minji.iter().map(|e| e.id).collect::<Vec<_>>(), vec![c.id, a.id]);
    let window = EntryFilter { from: Some(t("2026-10-02T00:00:00Z")), to: Some(t("2026-10-03T00:00:00Z")), limit: 10, ..Default::default() };
    assert_eq!(store.list_entries(fid, &window).await.unwrap().iter().map(|e| e.id).collect::<Vec<_>>(), vec![b.id]);
    let page = store.list_entries(fid, &EntryFilter { before: Some((c.occurred_at, c.id)), limit: 1, ..Default::default() }).await.unwrap();
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), vec![b.id]);
    assert!(store.put_insight(fid, &insight(&b, 1, &["School"], &["joy"])).await.unwrap());
    let school = store.list_entries(fid, &EntryFilter { topic: Some("school".into()), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(school.iter().map(|e| e.id).collect::<Vec<_>>(), vec![b.id]);
    let joy = store.list_entries(fid, &EntryFilter { emotion: Some("JOY".into()), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(joy.len(), 1);
    let mut got = store.get_entries(fid, &[a.id, c.id, Uuid::now_v7()]).await.unwrap().iter().map(|e| e.id).collect::<Vec<_>>();
    got.sort();
    assert_eq!(got, vec![a.id, c.id]);

    let edited = store.update_entry(fid, a.id, "first, corrected", &[f.kids[1].id], &[JobKind::Enrich]).await.unwrap();
    assert_eq!((edited.version, edited.raw_text.as_str(), edited.member_ids.clone()), (2, "first, corrected", vec![f.kids[1].id]));
    let history = store.entry_history(fid, a.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].version, history[0].raw_text.as_str()), (1, "first"));
    assert!(!store.put_insight(fid, &insight(&a, 1, &["stale"], &[])).await.unwrap(), "an insight for an old version is refused");
    assert!(store.put_insight(fid, &insight(&a, 2, &["fresh"], &[])).await.unwrap());
    assert_eq!(store.get_insight(fid, a.id).await.unwrap().unwrap().topics, vec!["fresh"]);

    let other = fam(store.as_ref(), "Lee").await;
    let bad = store.update_entry(fid, b.id, "x", &[other.kids[0].id], &[]).await;
    assert!(matches!(bad, Err(StoreError::NotFound)), "another family's child cannot be attached: {bad:?}");
    assert_eq!(store.get_entry(fid, b.id).await.unwrap().raw_text, "second", "the failed update wrote nothing");

    store.delete_entry(fid, b.id).await.unwrap();
    assert!(matches!(store.get_entry(fid, b.id).await, Err(StoreError::NotFound)));
    assert!(store.get_insight(fid, b.id).await.unwrap().is_none());
    assert!(matches!(store.delete_entry(fid, b.id).await, Err(StoreError::NotFound)));
}

async fn families_are_isolated(store: Arc<dyn Store>) {
    let kim = fam(store.as_ref(), "Kim").await;
    let lee = fam(store.as_ref(), "Lee").await;
    let secret = add(store.as_ref(), &kim, "kim secret", "2026-10-01T10:00:00Z", &[0]).await;
    let (kid, lid) = (kim.family.id, lee.family.id);
    assert!(matches!(store.get_entry(lid, secret.id).await, Err(StoreError::NotFound)));
    assert!(store.get_entries(lid, &[secret.id]).await.unwrap().is_empty());
    assert!(store.list_entries(lid, &EntryFilter { limit: 100, ..Default::default() }).await.unwrap().is_empty());
    assert!(matches!(store.update_entry(lid, secret.id, "x", &[], &[]).await, Err(StoreError::NotFound)));
    assert!(matches!(store.delete_entry(lid, secret.id).await, Err(StoreError::NotFound)));
    assert!(matches!(store.entry_history(lid, secret.id).await, Ok(h) if h.is_empty()));
    assert!(!store.put_insight(lid, &insight(&secret, 1, &[], &[])).await.unwrap());
    let v = VectorRecord { entry_id: secret.id, entry_version: 1, model: "m".into(), vector: vec![1.0, 0.0], extra_chunks: vec![], member_ids: vec![], topics: vec![], emotions: vec![], occurred_at: secret.occurred_at, terms: vec![] };
    store.put_vector(lid, &v).await.unwrap();
    assert!(store.load_vectors(lid, None, None).await.unwrap().is_empty(), "a vector cannot be attached to another family's entry");
    assert!(store.load_vectors(kid, None, None).await.unwrap().is_empty());
    let as_lee = NewEntry { author_id: kim.user.id, raw_text: "x".into(), occurred_at: Utc::now(), ..Default::default() };
    assert!(matches!(store.insert_entry(lid, as_lee, &[]).await, Err(StoreError::NotFound)), "an author from another family is refused");
    let their_child = NewEntry { author_id: kim.user.id, raw_text: "about Lee's child".into(), member_ids: vec![kim.kids[0].id, lee.kids[0].id], occurred_at: Utc::now(), ..Default::default() };
    assert!(matches!(store.insert_entry(kid, their_child, &[JobKind::Embed]).await, Err(StoreError::NotFound)), "another family's child is refused");
    assert_eq!(store.list_entries(kid, &EntryFilter { limit: 100, ..Default::default() }).await.unwrap().len(), 1, "and nothing of that entry is kept");
    assert_eq!(store.list_members(lid).await.unwrap(), lee.kids);
    assert_eq!(store.job_counts(Some(lid)).await.unwrap(), JobCounts::default());
    assert_eq!(store.get_entry(kid, secret.id).await.unwrap().raw_text, "kim secret");
}

async fn vectors_and_index_marks(store: Arc<dyn Store>) {
    let f = fam(store.as_ref(), "Kim").await;
    let fid = f.family.id;
    let e = add(store.as_ref(), &f, "v", "2026-10-05T10:00:00Z", &[0]).await;
    let rec = VectorRecord { entry_id: e.id, entry_version: 1, model: "m".into(), vector: vec![0.25, -1.5, 3.0], extra_chunks: vec![], member_ids: e.member_ids.clone(), topics: vec!["a".into()], emotions: vec![], occurred_at: e.occurred_at, terms: vec![] };
    assert_eq!(store.vector_generation(fid).await.unwrap(), 0);
    store.put_vector(fid, &rec).await.unwrap();
    let g1 = store.vector_generation(fid).await.unwrap();
    assert!(g1 > 0, "a stored vector moves the generation");
    store.put_vector(fid, &rec).await.unwrap();
    assert_eq!(store.load_vectors(fid, None, None).await.unwrap(), vec![rec.clone()], "upsert is idempotent");
    assert!(store.load_vectors(fid, Some(t("2026-10-06T00:00:00Z")), None).await.unwrap().is_empty());
    assert_eq!(store.load_vectors(fid, Some(t("2026-10-05T00:00:00Z")), Some(t("2026-10-06T00:00:00Z"))).await.unwrap().len(), 1);
    store.set_vector_payload(fid, e.id, &[f.kids[1].id], &["b".into()], &["joy".into()]).await.unwrap();
    let got = store.load_vectors(fid, None, None).await.unwrap();
    assert_eq!((got[0].member_ids.clone(), got[0].topics.clone(), got[0].emotions.clone()), (vec![f.kids[1].id], vec!["b".to_string()], vec!["joy".to_string()]));
    assert_eq!(store.indexed_version(fid, e.id).await.unwrap(), None);
    store.mark_indexed(fid, e.id, 1).await.unwrap();
    assert_eq!(store.indexed_version(fid, e.id).await.unwrap(), Some(1));
    store.mark_indexed(fid, e.id, 7).await.unwrap();
    assert_eq!(store.indexed_version(fid, e.id).await.unwrap(), Some(1), "a mark for a version the entry is not at is ignored");
    let g2 = store.vector_generation(fid).await.unwrap();
    assert!(g2 > g1, "payload updates move it too");
    store.delete_vector(fid, e.id).await.unwrap();
    assert!(store.load_vectors(fid, None, None).await.unwrap().is_empty());
    let g3 = store.vector_generation(fid).await.unwrap();
    assert!(g3 > g2, "so do deletes");
    // Deleting the entry removes its vector by cascade: that moves it as well.
    let e2 = add(store.as_ref(), &f, "v2", "2026-10-06T10:00:00Z", &[]).await;
    store.put_vector(fid, &VectorRecord { entry_id: e2.id, ..rec.clone() }).await.unwrap();
    let g4 = store.vector_generation(fid).await.unwrap();
    store.delete_entry(fid, e2.id).await.unwrap();
    assert!(store.vector_generation(fid).await.unwrap() > g4);
    let other = fam(store.as_ref(), "Other").await;
    assert_eq!(store.vector_generation(other.family.id).await.unwrap(), 0, "per family");
}

async fn job_queue(store: Arc<dyn Store>) {
    let f = fam(store.as_ref(), "Kim").await;
    let e = add(store.as_ref(), &f, "job", "2026-10-05T10:00:00Z", &[]).await;
    let now = Utc::now();
    let lease = Duration::minutes(5);
    let first = store.claim_job(now, lease).await.unwrap().expect("a queued job");
    let second = store.claim_job(now, lease).await.unwrap().expect("another queued job");
    assert_ne!(first.id, second.id);
    let kinds: HashSet<_> = [first.kind, second.kind].into_iter().collect();
    assert_eq!(kinds, HashSet::from([JobKind::Enrich, JobKind::Embed]));
    assert_eq!((first.entry_id, first.entry_version, first.attempts, first.family_id), (e.id, 1, 1, f.family.id));
    assert!(store.claim_job(now, lease).await.unwrap().is_none(), "running jobs are not handed out twice");
    assert_eq!(store.job_counts(Some(f.family.id)).await.unwrap(), JobCounts { running: 2, ..Default::default() });

    store.complete_job(first.id).await.unwrap();
    store.fail_job(second.id, "model down", Some(now + Duration::seconds(30))).await.unwrap();
    assert!(store.claim_job(now, lease).await.unwrap().is_none(), "not due yet");
    let retried = store.claim_job(now + Duration::seconds(31), lease).await.unwrap().expect("due again");
    assert_eq!((retried.id, retried.attempts), (second.id, 2));
    // A worker that died: its lease runs out and another takes the job over.
    let taken_over = store.claim_job(now + Duration::minutes(10), lease).await.unwrap().expect("lease expired");
    assert_eq!((taken_over.id, taken_over.attempts), (second.id, 3));
    store.fail_job(second.id, "gave up", None).await.unwrap();
    assert_eq!(store.job_counts(Some(f.family.id)).await.unwrap(), JobCounts { done: 1, failed: 1, ..Default::default() });
    assert_eq!(store.job_counts(None).await.unwrap().done, 1);

    // Reindexing queues one embed per entry at its latest version, once per tag.
    let f2 = fam(store.as_ref(), "Reindex").await;
    let r = add(store.as_ref(), &f2, "to re-embed", "2026-10-05T10:00:00Z", &[]).await;
    store.update_entry(f2.family.id, r.id, "to re-embed, v2", &[], &[JobKind::Embed]).await.unwrap();
    assert!(store.enqueue_reindex("t1").await.unwrap() >= 1);
    assert_eq!(store.enqueue_reindex("t1").await.unwrap(), 0, "the same tag queues nothing twice");
    let mut reindexed = None;
    while let Some(j) = store.claim_job(now + Duration::minutes(30), lease).await.unwrap() {
        store.complete_job(j.id).await.unwrap();
        if j.entry_id == r.id && j.entry_version == 2 && j.kind == JobKind::Embed && j.family_id == f2.family.id {
            reindexed = Some(j);
        }
    }
    assert!(reindexed.is_some(), "an embed job at the latest version");

    // Editing twice to the same version's jobs is deduplicated by key.
    store.update_entry(f.family.id, e.id, "job v2", &[], &[JobKind::Embed]).await.unwrap();
    store.delete_entry(f.family.id, e.id).await.unwrap();
    let unindex = store.claim_job(now + Duration::minutes(20), lease).await.unwrap().expect("the delete's unindex job");
    assert_eq!((unindex.kind, unindex.entry_id), (JobKind::Unindex, e.id));
    assert!(store.claim_job(now + Duration::minutes(20), lease).await.unwrap().is_none(), "queued work for a deleted entry is dropped");
}

async fn jobs_survive_outages_heartbeats_and_dead_workers(store: Arc<dyn Store>) {
    let f = fam(store.as_ref(), "Kim").await;
    add(store.as_ref(), &f, "job", "2026-10-05T10:00:00Z", &[]).await;
    let now = Utc::now();
    let lease = Duration::seconds(15);
    let job = store.claim_job(now, lease).await.unwrap().expect("a queued job");
    let other = store.claim_job(now, lease).await.unwrap().expect("the other job");
    store.complete_job(other.id).await.unwrap();

    // A heartbeat keeps the job ours past its first lease.
    assert!(store.extend_lease(job.id, now + Duration::seconds(40)).await.unwrap());
    assert!(store.claim_job(now + Duration::seconds(20), lease).await.unwrap().is_none(), "the renewed lease holds");

    // An outage does not spend attempts, however long it lasts; it is counted apart.
    for i in 1..=20 {
        store.retry_job_later(job.id, "model server unavailable: 503", now + Duration::seconds(i)).await.unwrap();
        let again = store.claim_job(now + Duration::seconds(i), lease).await.unwrap().expect("due again");
        assert_eq!((again.id, again.attempts, again.transient_failures), (job.id, 1, i), "retry {i}");
    }
    assert!(!store.extend_lease(Uuid::now_v7(), now).await.unwrap(), "no such running job");

    // A worker that dies on the job every time: after its last attempt the
    // job is not handed out again but buried (dead letter), never retried forever.
    let mut at = now + Duration::minutes(1);
    for attempt in 2..=job.max_attempts {
        at += Duration::minutes(1);
        let taken = store.claim_job(at, lease).await.unwrap().expect("lease ran out: taken over");
        assert_eq!((taken.id, taken.attempts), (job.id, attempt));
    }
    at += Duration::minutes(1);
    assert!(store.claim_job(at, lease).await.unwrap().is_none(), "no attempts left: not claimed again");
    assert_eq!(store.bury_abandoned_jobs(at).await.unwrap(), 1);
    assert_eq!(store.bury_abandoned_jobs(at).await.unwrap(), 0);
    assert_eq!(store.job_counts(Some(f.family.id)).await.unwrap(), JobCounts { done: 1, failed: 1, ..Default::default() });
    assert!(!store.extend_lease(job.id, at).await.unwrap(), "a buried job's lease is not renewed");
}

async fn housekeeping_prunes_only_what_is_old(store: Arc<dyn Store>) {
    let kim = fam(store.as_ref(), "Kim").await;
    let lee = fam(store.as_ref(), "Lee").await;
    for f in [&kim, &lee] {
        add(store.as_ref(), f, "kept forever", "2026-10-01T10:00:00Z", &[]).await;
        store.claim_update(f.family.id, &format!("tg:{}", f.family.id)).await.unwrap();
        let turn = ChatTurn { chat_id: "c".into(), role: "user".into(), content: "hi".into(), created_at: Utc::now() };
        store.add_chat_turn(f.family.id, f.user.id, &turn).await.unwrap();
    }
    // One job done, one still queued per family.
    let mut done = 0;
    while let Some(job) = store.claim_job(Utc::now(), Duration::minutes(5)).await.unwrap() {
        if done < 2 {
            store.complete_job(job.id).await.unwrap();
            done += 1;
        } else {
            store.fail_job(job.id, "later", Some(Utc::now() + Duration::hours(1))).await.unwrap();
        }
    }
    let nothing_old = store.prune(Utc::now() - Duration::days(30)).await.unwrap();
    assert!(nothing_old.iter().all(|(_, n)| *n == 0), "{nothing_old:?}");
    assert!(nothing_old.iter().any(|(what, _)| what == "capsule_drafts"), "drafts are looked at too: {nothing_old:?}");

    let pruned: std::collections::HashMap<String, u64> = store.prune(Utc::now() + Duration::seconds(1)).await.unwrap().into_iter().collect();
    assert_eq!(pruned["processed_updates"], 2, "both families' ({pruned:?})");
    assert_eq!(pruned["chat_turns"], 2);
    assert_eq!(pruned["jobs"], 2, "only finished jobs");
    for f in [&kim, &lee] {
        assert!(store.claim_update(f.family.id, &format!("tg:{}", f.family.id)).await.unwrap(), "the old key is forgotten");
        assert!(store.recent_chat_turns(f.family.id, "c", 10).await.unwrap().is_empty());
        assert_eq!(store.list_entries(f.family.id, &EntryFilter { limit: 10, ..Default::default() }).await.unwrap().len(), 1, "entries are never pruned");
    }
    let counts = store.job_counts(None).await.unwrap();
    assert_eq!((counts.done, counts.queued), (0, 2), "{counts:?}");
}

async fn retention_finds_old_audio_and_children_of_age_in_every_family(store: Arc<dyn Store>) {
    let kim = fam(store.as_ref(), "Kim").await; // children born 2019-01-02
    let lee = fam(store.as_ref(), "Lee").await;
    let e = add(store.as_ref(), &kim, "voice", "2026-10-01T10:00:00Z", &[]).await;
    store.add_pending_media(kim.family.id, e.id, &PendingMedia { kind: "voice".into(), source_ref: "t:v".into(), content_type: "audio/ogg".into() }, None).await.unwrap();
    let media = store.entry_media(kim.family.id, e.id).await.unwrap()[0].id;
    let blob = dadly_agent::blob::StoredBlob { key: format!("{}/a.ogg", kim.family.id), content_type: "audio/ogg".into(), size_bytes: 3, sha256: "x".into() };
    store.media_fetched(kim.family.id, media, &blob).await.unwrap();
    assert!(store.expired_audio(Utc::now() - Duration::days(1)).await.unwrap().is_empty(), "not old enough");
    let expired = store.expired_audio(Utc::now() + Duration::seconds(1)).await.unwrap();
    assert_eq!(expired, vec![(kim.family.id, media, blob.key.clone())]);
    store.forget_media_blob(kim.family.id, media).await.unwrap();
    assert!(store.expired_audio(Utc::now() + Duration::seconds(1)).await.unwrap().is_empty(), "forgotten once");

    let born_by = NaiveDate::from_ymd_opt(2019, 1, 2).unwrap();
    let due = store.children_of_age(born_by).await.unwrap();
    assert_eq!(due.len(), 4, "both families' children: {due:?}");
    assert!(store.children_of_age(born_by.pred_opt().unwrap()).await.unwrap().is_empty());
    let (f, m) = due.iter().find(|(f, _)| *f == lee.family.id).copied().unwrap();
    assert!(store.mark_age_notice(f, m).await.unwrap());
    assert!(!store.mark_age_notice(f, m).await.unwrap(), "once");
    assert!(!store.mark_age_notice(kim.family.id, m).await.unwrap(), "not through another family");
    assert_eq!(store.children_of_age(born_by).await.unwrap().len(), 3);
    assert!(store.list_members(lee.family.id).await.unwrap().iter().any(|c| c.id == m && c.age_notice_at.is_some()));
}

async fn chat_turns_and_usage(store: Arc<dyn Store>) {
    let f = fam(store.as_ref(), "Kim").await;
    let fid = f.family.id;
    for (i, role) in ["user", "assistant", "user"].iter().enumerate() {
        let turn = ChatTurn { chat_id: "c1".into(), role: role.to_string(), content: format!("turn {i}"), created_at: Utc::now() + Duration::milliseconds(i as i64) };
        store.add_chat_turn(fid, f.user.id, &turn).await.unwrap();
    }
    let recent = store.recent_chat_turns(fid, "c1", 2).await.unwrap();
    assert_eq!(recent.iter().map(|t| t.content.as_str()).collect::<Vec<_>>(), vec!["turn 1", "turn 2"]);
    assert!(store.recent_chat_turns(fid, "other", 5).await.unwrap().is_empty());
    // A message and its reply in one write, stored exactly (quotes, JSON-like
    // text, Hangul, emoji, a newline) and in order.
    let now = Utc::now() + Duration::seconds(1);
    let pair: Vec<ChatTurn> = [("user", "민지가 \"처음\" 웃었다 🦷\n{\"a\": [1]}"), ("assistant", "Noted: '$1' ?, -- ;")]
        .iter()
        .map(|(role, content)| ChatTurn { chat_id: "c2".into(), role: role.to_string(), content: content.to_string(), created_at: now })
        .collect();
    store.add_chat_turns(fid, f.user.id, &pair).await.unwrap();
    let back = store.recent_chat_turns(fid, "c2", 5).await.unwrap();
    assert_eq!(back.iter().map(|t| (t.role.as_str(), t.content.as_str())).collect::<Vec<_>>(), pair.iter().map(|t| (t.role.as_str(), t.content.as_str())).collect::<Vec<_>>());
    let lee = fam(store.as_ref(), "Lee").await;
    assert!(store.recent_chat_turns(lee.family.id, "c1", 5).await.unwrap().is_empty());

    let day = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    store.add_usage(fid, day, "gpt", "chat", 10, 5, 0.5).await.unwrap();
    store.add_usage(fid, day, "gpt", "chat", 1, 1, 0.25).await.unwrap();
    store.add_usage(fid, day.pred_opt().unwrap(), "emb", "embeddings", 7, 0, 0.0).await.unwrap();
    let rows = store.usage_since(fid, day).await.unwrap();
    assert_eq!(rows, vec![UsageRow { model: "gpt".into(), capability: "chat".into(), calls: 2, input_tokens: 11, output_tokens: 6, cost_usd: 0.75 }]);
    assert_eq!(store.usage_since(fid, day.pred_opt().unwrap()).await.unwrap().len(), 2);
    assert!(store.usage_since(lee.family.id, day).await.unwrap().is_empty());
}

async fn channel_records(store: Arc<dyn Store>) {
    let kim = fam(store.as_ref(), "Kim").await;
    let lee = fam(store.as_ref(), "Lee").await;
    let (kid, lid) = (kim.family.id, lee.family.id);
    let now = Utc::now();

    // Link codes work once, and not after they expire.
    store.create_link_code(kid, kim.user.id, "hash-1", now + Duration::minutes(15)).await.unwrap();
    store.create_link_code(kid, kim.user.id, "hash-old", now - Duration::minutes(1)).await.unwrap();
    assert_eq!(store.redeem_link_code("hash-1", 555, Some("ko"), now).await.unwrap().id, kim.user.id);
    assert!(matches!(store.redeem_link_code("hash-1", 556, None, now).await, Err(StoreError::NotFound)), "reused");
    assert!(matches!(store.redeem_link_code("hash-old", 556, None, now).await, Err(StoreError::NotFound)), "expired");
    assert!(matches!(store.redeem_link_code("nope", 556, None, now).await, Err(StoreError::NotFound)));
    let (user, lang) = store.telegram_link(555).await.unwrap().unwrap();
    assert_eq!((user.id, lang.as_deref()), (kim.user.id, Some("ko")));
    assert!(store.telegram_link(556).await.unwrap().is_none());
    store.set_telegram_language(555, kid, Some("en")).await.unwrap();
    store.set_telegram_language(555, lid, None).await.unwrap();
    assert_eq!(store.telegram_link(555).await.unwrap().unwrap().1.as_deref(), Some("en"), "another family cannot change it");
    assert!(!store.unlink_telegram(555, lid).await.unwrap(), "another family cannot unlink it");
    // A Telegram account linked again with another family's code moves there.
    store.create_link_code(lid, lee.user.id, "hash-lee", now + Duration::minutes(15)).await.unwrap();
    assert_eq!(store.redeem_link_code("hash-lee", 555, None, now).await.unwrap().family_id, lid);
    assert_eq!(store.telegram_link(555).await.unwrap().unwrap().0.id, lee.user.id);
    assert!(store.unlink_telegram(555, lid).await.unwrap());
    assert!(store.telegram_link(555).await.unwrap().is_none());

    // Update ids are claimed once, on their own or with the entry they make.
    assert!(store.claim_update(kid, "tg:1").await.unwrap());
    assert!(!store.claim_update(kid, "tg:1").await.unwrap());
    let voice = PendingMedia { kind: "voice".into(), source_ref: "telegram:file-1".into(), content_type: "audio/ogg".into() };
    let new = |key: &str| NewEntry {
        author_id: kim.user.id,
        source: Source::Voice,
        occurred_at: now,
        status: EntryStatus::Transcribing,
        dedupe_key: Some(key.into()),
        external_key: Some("album-1".into()),
        reply_to: Some("telegram:1:2".into()),
        media: vec![voice.clone()],
        ..Default::default()
    };
    let e = store.insert_entry(kid, new("tg:2"), &[JobKind::Transcribe]).await.unwrap();
    assert_eq!((e.status, e.reply_to.as_deref(), e.raw_text.as_str()), (EntryStatus::Transcribing, Some("telegram:1:2"), ""));
    assert!(matches!(store.insert_entry(kid, new("tg:2"), &[]).await, Err(StoreError::AlreadyHandled)), "a redelivered update makes nothing");
    assert_eq!(store.list_entries(kid, &EntryFilter { limit: 10, ..Default::default() }).await.unwrap().len(), 1);
    // A text note with its update key (no media: Postgres writes it in one statement).
    let text = |key: &str, author: UserId| NewEntry { author_id: author, source: Source::Telegram, raw_text: "민지가 웃었다。🎈".into(), occurred_at: now, dedupe_key: Some(key.into()), ..Default::default() };
    let noted = store.insert_entry(kid, text("tg:4", kim.user.id), &[JobKind::Embed]).await.unwrap();
    assert!(matches!(store.insert_entry(kid, text("tg:4", kim.user.id), &[JobKind::Embed]).await, Err(StoreError::AlreadyHandled)), "a redelivered text note makes nothing");
    assert!(matches!(store.insert_entry(lid, text("tg:4", lee.user.id), &[]).await, Err(StoreError::AlreadyHandled)), "nor in another family");
    // Refused (an author of another family): nothing written, and its key is not spent.
    assert!(matches!(store.insert_entry(kid, text("tg:5", lee.user.id), &[JobKind::Embed]).await, Err(StoreError::NotFound)));
    assert!(store.claim_update(kid, "tg:5").await.unwrap(), "a refused note leaves its key unclaimed");
    let listed = store.list_entries(kid, &EntryFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!((listed.len(), store.get_entry(kid, noted.id).await.unwrap().raw_text), (2, "민지가 웃었다。🎈".to_string()));
    assert!(store.list_entries(lid, &EntryFilter { limit: 10, ..Default::default() }).await.unwrap().is_empty());
    assert_eq!(store.entry_by_external_key(kid, "album-1").await.unwrap().map(|x| x.id), Some(e.id));
    assert!(store.entry_by_external_key(lid, "album-1").await.unwrap().is_none());

    let photo = PendingMedia { kind: "photo".into(), source_ref: "telegram:file-2".into(), content_type: "image/jpeg".into() };
    store.add_pending_media(kid, e.id, &photo, Some("tg:3")).await.unwrap();
    assert!(matches!(store.add_pending_media(kid, e.id, &photo, Some("tg:3")).await, Err(StoreError::AlreadyHandled)));
    assert!(matches!(store.add_pending_media(lid, e.id, &photo, None).await, Err(StoreError::NotFound)), "not onto another family's entry");
    let media = store.entry_media(kid, e.id).await.unwrap();
    assert_eq!(media.iter().map(|m| (m.kind.as_str(), m.blob_key.is_none())).collect::<Vec<_>>(), vec![("voice", true), ("photo", true)]);
    assert_eq!(media[1].source_ref.as_deref(), Some("telegram:file-2"));
    assert!(store.entry_media(lid, e.id).await.unwrap().is_empty());
    let blob = dadly_agent::blob::StoredBlob { key: format!("{kid}/x.ogg"), content_type: "audio/ogg".into(), size_bytes: 42, sha256: "ab".repeat(32) };
    store.media_fetched(lid, media[0].id, &blob).await.unwrap();
    assert!(store.entry_media(kid, e.id).await.unwrap()[0].blob_key.is_none(), "another family cannot write it");
    store.media_fetched(kid, media[0].id, &blob).await.unwrap();
    let fetched = &store.entry_media(kid, e.id).await.unwrap()[0];
    assert_eq!((fetched.blob_key.as_deref(), fetched.size_bytes), (Some(blob.key.as_str()), 42));

    store.link_message(kid, "telegram:1", 2, e.id, "source").await.unwrap();
    store.link_message(kid, "telegram:1", 9, e.id, "transcript").await.unwrap();
    assert_eq!(store.message_entry(kid, "telegram:1", 9).await.unwrap(), Some((e.id, "transcript".to_string())));
    assert!(store.message_entry(lid, "telegram:1", 2).await.unwrap().is_none());

    let filled = store.fill_entry_text(kid, e.id, "Minji sang", &[kim.kids[0].id], &[JobKind::Enrich]).await.unwrap();
    assert_eq!((filled.version, filled.status, filled.raw_text.as_str(), filled.member_ids.clone()), (2, EntryStatus::Ready, "Minji sang", vec![kim.kids[0].id]));
    assert!(store.entry_history(kid, e.id).await.unwrap().is_empty(), "filling a transcript is not an edit");
    assert!(matches!(store.fill_entry_text(kid, e.id, "again", &[], &[]).await, Err(StoreError::NotFound)), "only once");
    assert!(matches!(store.fill_entry_text(lid, e.id, "x", &[], &[]).await, Err(StoreError::NotFound)));

    // A job that waits for configuration gives its attempt back.
    let job = store.claim_job(now + Duration::seconds(1), Duration::minutes(5)).await.unwrap().expect("a job");
    assert_eq!(job.attempts, 1);
    store.defer_job(job.id, now + Duration::minutes(15)).await.unwrap();
    assert!(store.claim_job(now + Duration::minutes(1), Duration::minutes(5)).await.unwrap().map(|j| j.id) != Some(job.id));
    let mut again = None;
    while let Some(j) = store.claim_job(now + Duration::minutes(16), Duration::minutes(5)).await.unwrap() {
        if j.id == job.id {
            again = Some(j);
            break;
        }
    }
    assert_eq!(again.expect("due again").attempts, 1, "the deferred attempt was not spent");
}

async fn batched_jobs_and_vectors(store: Arc<dyn Store>) {
    let a = fam(store.as_ref(), "Kim").await;
    let b = fam(store.as_ref(), "Lee").await;
    let mut mine = Vec::new();
    for i in 0..3 {
        mine.push(add(store.as_ref(), &a, &format!("a{i}"), "2026-10-05T10:00:00Z", &[0]).await);
    }
    let theirs = add(store.as_ref(), &b, "b0", "2026-10-05T10:00:00Z", &[]).await;
    add(store.as_ref(), &b, "b1", "2026-10-05T10:00:00Z", &[]).await;
    let now = Utc::now();
    let lease = Duration::minutes(5);

    // The embedding lane gets only embedding jobs, across families, up to the limit.
    let first = store.claim_jobs(now, lease, JobLane::Embed, 3).await.unwrap();
    assert_eq!(first.len(), 3);
    let rest = store.claim_jobs(now, lease, JobLane::Embed, 10).await.unwrap();
    assert_eq!(rest.len(), 2);
    let embeds: Vec<&Job> = first.iter().chain(&rest).collect();
    assert!(embeds.iter().all(|j| j.kind == JobKind::Embed && j.attempts == 1));
    assert_eq!(embeds.iter().map(|j| j.entry_id).collect::<HashSet<_>>().len(), 5, "each entry's job once");
    assert!(store.claim_jobs(now, lease, JobLane::Embed, 10).await.unwrap().is_empty(), "running jobs are not handed out twice");
    // The enrichment lane gets only enrichment jobs; the general lane the rest.
    let enrich = store.claim_jobs(now, lease, JobLane::Enrich, 2).await.unwrap();
    assert_eq!(enrich.len(), 2);
    assert!(enrich.iter().all(|j| j.kind == JobKind::Enrich));
    let others = store.claim_jobs(now, lease, JobLane::Other, 10).await.unwrap();
    assert_eq!(others.len(), 3);
    assert!(others.iter().all(|j| j.kind == JobKind::Enrich));
    assert!(store.claim_jobs(now, lease, JobLane::Enrich, 10).await.unwrap().is_empty());

    // Completed in one write; the two left running are taken over when their lease runs out.
    store.complete_jobs(&first.iter().map(|j| j.id).collect::<Vec<_>>()).await.unwrap();
    store.complete_jobs(&[]).await.unwrap();
    let taken_over = store.claim_jobs(now + Duration::minutes(10), lease, JobLane::Embed, 10).await.unwrap();
    assert_eq!(taken_over.iter().map(|j| (j.id, j.attempts)).collect::<HashSet<_>>(), rest.iter().map(|j| (j.id, 2)).collect::<HashSet<_>>());
    let counts = store.job_counts(Some(a.family.id)).await.unwrap().done + store.job_counts(Some(b.family.id)).await.unwrap().done;
    assert_eq!(counts, 3);

    // Many vectors in one transaction: only the family's own live entries are written.
    let fid = a.family.id;
    store.delete_entry(fid, mine[2].id).await.unwrap();
    let rec = |e: &Entry| VectorRecord { entry_id: e.id, entry_version: 1, model: "m".into(), vector: vec![1.0, 0.0, 0.5], extra_chunks: vec![], member_ids: e.member_ids.clone(), topics: vec![], emotions: vec![], occurred_at: e.occurred_at, terms: vec![] };
    let before = store.vector_generation(fid).await.unwrap();
    let written = store.put_vectors(fid, &[rec(&mine[0]), rec(&mine[1]), rec(&mine[2]), rec(&theirs)]).await.unwrap();
    assert_eq!(written, vec![mine[0].id, mine[1].id], "not a deleted entry, not another family's");
    assert_eq!(store.vector_generation(fid).await.unwrap(), before + 2, "the generation moves by the rows written");
    assert!(store.load_vectors(b.family.id, None, None).await.unwrap().is_empty());
    assert_eq!(store.load_vectors(fid, None, None).await.unwrap().len(), 2);
    // The same entry twice in a batch: written once, the last record wins; an odd value is kept.
    let mut again = rec(&mine[0]);
    again.vector = vec![0.0, 1.0, -0.25];
    let mut odd = rec(&mine[1]);
    odd.vector = vec![f32::NAN, 1.0, 0.0];
    assert_eq!(store.put_vectors(fid, &[rec(&mine[0]), odd, again.clone()]).await.unwrap(), vec![mine[0].id, mine[1].id]);
    let loaded = store.load_vectors(fid, None, None).await.unwrap();
    assert_eq!(loaded.iter().find(|r| r.entry_id == mine[0].id).unwrap().vector, again.vector);
    assert!(loaded.iter().find(|r| r.entry_id == mine[1].id).unwrap().vector[0].is_nan());
    // A long entry's pieces, beside a one-piece entry in the same batch, come back as they went.
    let mut long = rec(&mine[0]);
    long.extra_chunks = vec![vec![0.5, 0.5, 0.0], vec![0.0, 0.25, 1.0]];
    store.put_vectors(fid, &[long.clone(), rec(&mine[1])]).await.unwrap();
    let loaded = store.load_vectors(fid, None, None).await.unwrap();
    let back = loaded.iter().find(|r| r.entry_id == mine[0].id).unwrap();
    assert_eq!((&back.vector, &back.extra_chunks), (&long.vector, &long.extra_chunks));
    assert_eq!(loaded.iter().find(|r| r.entry_id == mine[1].id).unwrap().vector, rec(&mine[1]).vector);
    let first = store.mark_indexed_many(fid, &[(mine[0].id, 1, "snail garden".into()), (mine[1].id, 4, "snail".into()), (theirs.id, 1, "snail".into())]).await.unwrap();
    assert_eq!(first, vec![mine[0].id], "indexed for the first time: only the family's entry at that version");
    let again = store.mark_indexed_many(fid, &[(mine[0].id, 1, "snail garden".into())]).await.unwrap();
    assert!(again.is_empty(), "a re-embedding of the same version is not a first indexing");
    assert_eq!(store.indexed_version(fid, mine[0].id).await.unwrap(), Some(1));
    assert_eq!(store.indexed_version(fid, mine[1].id).await.unwrap(), None, "a version the entry is not at");
    assert_eq!(store.indexed_version(b.family.id, theirs.id).await.unwrap(), None, "another family's entry is untouched");

    // The lexical index holds the terms of what was marked, in the family only.
    let snail = vec!["snail".to_string()];
    assert_eq!(store.lexical_search(fid, &snail, None, None, 10).await.unwrap().iter().map(|h| h.entry_id).collect::<Vec<_>>(), vec![mine[0].id]);
    assert!(store.lexical_search(b.family.id, &snail, None, None, 10).await.unwrap().is_empty());
    assert!(store.lexical_search(fid, &snail, Some(t("2026-11-01T00:00:00Z")), None, 10).await.unwrap().is_empty(), "the period applies");
    // A new version replaces the terms; hostile text is only ever a term.
    let v2 = store.update_entry(fid, mine[1].id, "a2", &[], &[JobKind::Embed]).await.unwrap();
    store.mark_indexed_many(fid, &[(mine[1].id, v2.version, "ladybird 민지 \" OR * NEAR( -".into())]).await.unwrap();
    // An entry with no terms at all (only an emoji) is marked and matches nothing.
    let bare = add(store.as_ref(), &a, "🎈", "2026-10-05T10:00:00Z", &[]).await;
    assert_eq!(store.mark_indexed_many(fid, &[(bare.id, 1, String::new())]).await.unwrap(), vec![bare.id]);
    assert_eq!(store.indexed_version(fid, bare.id).await.unwrap(), Some(1));
    let odd: Vec<String> = ["\"", "OR", "*", "NEAR(", "-", "민지", "'); DROP TABLE entries; --"].iter().map(|s| s.to_string()).collect();
    let hits = store.lexical_search(fid, &odd, None, None, 10).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.entry_id).collect::<Vec<_>>(), vec![mine[1].id], "{hits:?}");
    assert!(hits[0].terms.contains(&"ladybird".to_string()) && hits[0].terms.contains(&"민지".to_string()), "the indexed terms come back: {hits:?}");
    let both = vec!["snail".to_string(), "garden".to_string(), "ladybird".to_string()];
    let ranked = store.lexical_search(fid, &both, None, None, 10).await.unwrap();
    assert_eq!(ranked.first().map(|h| h.entry_id), Some(mine[0].id), "two terms matched beat one: {ranked:?}");
    // Many insights in one write: only for the family's entries at their current version.
    let mut many = vec![insight(&mine[0], 1, &["garden", "정원"], &["joy"]), insight(&mine[1], 1, &["stale"], &[]), insight(&theirs, 1, &["not theirs"], &[])];
    many[0].member_ids = vec![a.kids[0].id];
    many[0].summary = "Minji's \"garden\" — 민지".into();
    let written = store.put_insights(fid, &many).await.unwrap();
    assert_eq!(written, vec![mine[0].id], "not an old version, not another family's entry");
    assert!(store.put_insights(fid, &[]).await.unwrap().is_empty());
    let twice = store.put_insights(fid, &[insight(&mine[0], 1, &["first"], &[]), many[0].clone()]).await.unwrap();
    assert_eq!(twice, vec![mine[0].id], "the same entry twice: written once, the last wins");
    let stored = store.get_insight(fid, mine[0].id).await.unwrap().unwrap();
    assert_eq!((stored.summary.as_str(), stored.topics.clone(), stored.emotions.clone(), stored.member_ids.clone()), (many[0].summary.as_str(), many[0].topics.clone(), vec!["joy".to_string()], vec![a.kids[0].id]));
    assert_eq!(stored.created_at.timestamp_millis(), many[0].created_at.timestamp_millis());
    assert!(store.get_insight(b.family.id, theirs.id).await.unwrap().is_none());
    // Many payloads in one write: the rows changed are counted (an entry without a vector has none).
    let update = |e: &Entry, topic: &str| PayloadUpdate { entry_id: e.id, member_ids: vec![a.kids[0].id], topics: vec![topic.into()], emotions: vec!["joy".into()] };
    let before = store.vector_generation(fid).await.unwrap();
    let changed = store.set_vector_payloads(fid, &[update(&mine[0], "garden"), update(&bare, "balloon"), update(&theirs, "x")]).await.unwrap();
    assert_eq!(changed, 1, "only the family's entry with a vector");
    assert_eq!(store.vector_generation(fid).await.unwrap(), before + 1);
    let loaded = store.load_vectors(fid, None, None).await.unwrap();
    let row = loaded.iter().find(|r| r.entry_id == mine[0].id).unwrap();
    assert_eq!((row.member_ids.clone(), row.topics.clone(), row.emotions.clone()), (vec![a.kids[0].id], vec!["garden".to_string()], vec!["joy".to_string()]));
    assert_eq!(store.set_vector_payloads(fid, &[]).await.unwrap(), 0);
    // Insights and photo descriptions of many entries in one read each, the family's only.
    store.put_insight(fid, &insight(&mine[0], 1, &["garden"], &[])).await.unwrap();
    store.put_insight(b.family.id, &insight(&theirs, 1, &["bike"], &[])).await.unwrap();
    let got = store.get_insights(fid, &[mine[0].id, mine[1].id, theirs.id]).await.unwrap();
    assert_eq!(got.iter().map(|i| i.entry_id).collect::<Vec<_>>(), vec![mine[0].id]);
    assert!(store.get_insights(fid, &[]).await.unwrap().is_empty());
    let photo = PendingMedia { kind: "photo".into(), source_ref: "upload:x".into(), content_type: "image/png".into() };
    store.add_pending_media(fid, mine[0].id, &photo, None).await.unwrap();
    let media = store.entry_media(fid, mine[0].id).await.unwrap();
    let blob = dadly_agent::blob::StoredBlob { key: "k".into(), content_type: "image/png".into(), size_bytes: 3, sha256: "s".into() };
    store.media_fetched(fid, media[0].id, &blob).await.unwrap();
    // A fetched photo queues its description, once.
    store.media_fetched(fid, media[0].id, &blob).await.unwrap();
    let later = now + Duration::minutes(60);
    let described = store.claim_jobs(later, lease, JobLane::Other, 50).await.unwrap();
    assert_eq!(described.iter().filter(|j| j.kind == JobKind::Describe && j.entry_id == mine[0].id).count(), 1, "{described:?}");
    store.describe_media(fid, media[0].id, "a sandcastle on the beach").await.unwrap();
    assert_eq!(store.media_descriptions(fid, &[mine[0].id, mine[1].id]).await.unwrap(), vec![(mine[0].id, "a sandcastle on the beach".to_string())]);
    assert!(store.media_descriptions(b.family.id, &[mine[0].id]).await.unwrap().is_empty(), "not through another family");
    assert!(matches!(store.describe_media(b.family.id, media[0].id, "x").await, Err(StoreError::NotFound)));
    // …and re-embedding the entry at its current version.
    let embeds = store.claim_jobs(later, lease, JobLane::Embed, 50).await.unwrap();
    assert!(embeds.iter().any(|j| j.entry_id == mine[0].id && j.entry_version == 1), "{embeds:?}");

    // Gone with the entry.
    store.delete_entry(fid, mine[0].id).await.unwrap();
    assert!(store.lexical_search(fid, &snail, None, None, 10).await.unwrap().is_empty());
}

/// Marking a batch indexed reads before it writes; it must not fail because
/// other connections write meanwhile (on SQLite a deferred transaction would
/// fail with SQLITE_BUSY_SNAPSHOT, and every embedding batch would retry).
async fn indexed_marks_hold_under_concurrent_writes(store: Arc<dyn Store>) {
    let f = fam(store.as_ref(), "Kim").await;
    let fid = f.family.id;
    let mut entries = Vec::new();
    for i in 0..40 {
        entries.push(add(store.as_ref(), &f, &format!("note {i}"), "2026-10-05T10:00:00Z", &[]).await);
    }
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (store, f) = (store.clone(), f.clone());
            tokio::spawn(async move {
                for i in 0..25 {
                    add(store.as_ref(), &f, &format!("writer {w} note {i}"), "2026-10-06T10:00:00Z", &[]).await;
                }
            })
        })
        .collect();
    let mut marked = 0;
    for chunk in entries.chunks(4) {
        let batch: Vec<(EntryId, i64, String)> = chunk.iter().map(|e| (e.id, 1, e.raw_text.clone())).collect();
        marked += store.mark_indexed_many(fid, &batch).await.expect("marking while others write").len();
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(marked, 40);
}

macro_rules! contract {
    ($($name:ident),*) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { let (s, _d) = crate::support::sqlite().await; super::$name(s).await; })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { if let Some(s) = crate::support::postgres().await { super::$name(s).await; } })*
        }
    };
}

contract!(families_users_and_members, entries_lifecycle, families_are_isolated, vectors_and_index_marks, job_queue, jobs_survive_outages_heartbeats_and_dead_workers, housekeeping_prunes_only_what_is_old, retention_finds_old_audio_and_children_of_age_in_every_family, chat_turns_and_usage, channel_records, batched_jobs_and_vectors, indexed_marks_hold_under_concurrent_writes);

mod postgres_only {
    use super::*;
    use dadly_agent::store::PostgresStore;
    use sqlx::Row;

    /// The one-round-trip reads and writes (a function that sets the
    /// row-level security setting itself) put the setting back as they found
    /// it: called inside another family's transaction, they leave that
    /// transaction seeing only its own family.
    #[tokio::test]
    async fn one_round_trip_functions_leave_the_setting_as_they_found_it() {
        let Some(store) = crate::support::postgres().await else { return };
        let kim = fam(store.as_ref(), "Kim").await;
        let lee = fam(store.as_ref(), "Lee").await;
        add(store.as_ref(), &kim, "kim's", "2026-10-01T10:00:00Z", &[]).await;
        add(store.as_ref(), &lee, "lee's", "2026-10-01T10:00:00Z", &[]).await;
        // What the store's methods return through them.
        assert_eq!(store.get_user(kim.user.id).await.unwrap().family_id, kim.family.id);
        assert_eq!(store.list_members(lee.family.id).await.unwrap().iter().map(|m| m.id).collect::<Vec<_>>(), lee.kids.iter().map(|m| m.id).collect::<Vec<_>>());
        let pool = store.pool();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SELECT set_config('app.family_id', $1, true)").bind(kim.family.id.to_string()).execute(&mut *tx).await.unwrap();
        let lees: i64 = sqlx::query_scalar("SELECT count(*) FROM dadly_members($1)").bind(lee.family.id).fetch_one(&mut *tx).await.unwrap();
        let user: i64 = sqlx::query_scalar("SELECT count(*) FROM dadly_user($1)").bind(lee.user.id).fetch_one(&mut *tx).await.unwrap();
        let turns: i64 = sqlx::query_scalar("SELECT dadly_add_chat_turns($1, $2, $3, $4, $5, $6, $7)")
            .bind(lee.family.id)
            .bind(lee.user.id)
            .bind(vec![uuid::Uuid::now_v7()])
            .bind(vec!["web"])
            .bind(vec!["user"])
            .bind(vec!["hello"])
            .bind(vec![Utc::now()])
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        // A new entry for Lee (as a Telegram note with media is written, inside a transaction).
        let lee_entry = uuid::Uuid::now_v7();
        let written: i64 = sqlx::query_scalar(
            "SELECT n_entries FROM dadly_insert_entry($1, $2, $3, 'web', 'lee''s 민지。、🎈', now(), now(), 'ready', NULL, NULL, '{}', 5, '{}', '{}', '{}')",
        )
        .bind(lee.family.id)
        .bind(lee_entry)
        .bind(lee.user.id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        // And one with an update key to claim (as a Telegram text note is written).
        let claimed: (i64, i64) = sqlx::query_as(
            "SELECT n_claimed, n_entries FROM dadly_insert_entry_claimed($1, $2, $3, 'telegram', 'lee''s 준호。', now(), now(), 'ready', NULL, NULL, '{}', 5, '{}', '{}', '{}', 'tg:setting')",
        )
        .bind(lee.family.id)
        .bind(uuid::Uuid::now_v7())
        .bind(lee.user.id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!((lees, user, turns, written, claimed), (2, 1, 1, 1, (1, 1)));
        let setting: String = sqlx::query_scalar("SELECT current_setting('app.family_id')").fetch_one(&mut *tx).await.unwrap();
        let user_setting: String = sqlx::query_scalar("SELECT current_setting('app.user_id', true)").fetch_one(&mut *tx).await.unwrap();
        let texts: Vec<String> = sqlx::query_scalar("SELECT raw_text FROM entries").fetch_all(&mut *tx).await.unwrap();
        assert_eq!((setting, user_setting, texts), (kim.family.id.to_string(), String::new(), vec!["kim's".to_string()]));
        drop(tx);
    }

    /// A long chat's history is read in index order, stopping after the
    /// limit, even before the table has statistics (a new instance): a sort
    /// over the whole chat cost ~260 ms a question under load.
    #[tokio::test]
    async fn chat_history_is_read_in_index_order_without_statistics() {
        let Some(store) = crate::support::postgres().await else { return };
        let kim = fam(store.as_ref(), "Kim").await;
        let turns: Vec<ChatTurn> = (0..500)
            .map(|i| ChatTurn { chat_id: "web:1".into(), role: if i % 2 == 0 { "user".into() } else { "assistant".into() }, content: format!("turn {i}"), created_at: Utc::now() })
            .collect();
        store.add_chat_turns(kim.family.id, kim.user.id, &turns).await.unwrap();
        let pool = store.pool();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SELECT set_config('app.family_id', $1, true)").bind(kim.family.id.to_string()).execute(&mut *tx).await.unwrap();
        let sql = format!("EXPLAIN (ANALYZE, FORMAT TEXT) {}", dadly_agent::store::RECENT_CHAT_TURNS_SQL);
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(kim.family.id).bind("web:1").bind(8i64).fetch_all(&mut *tx).await.unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("Index Scan Backward using chat_turns_chat") && !plan.contains("Sort"), "{plan}");
        let recent = store.recent_chat_turns(kim.family.id, "web:1", 8).await.unwrap();
        assert_eq!(recent.len(), 8);
    }

    #[tokio::test]
    async fn row_level_security_hides_other_families_even_without_a_where() {
        let Some(store) = crate::support::postgres().await else { return };
        let kim = fam(store.as_ref(), "Kim").await;
        let lee = fam(store.as_ref(), "Lee").await;
        add(store.as_ref(), &kim, "kim 1", "2026-10-01T10:00:00Z", &[]).await;
        add(store.as_ref(), &kim, "kim 2", "2026-10-01T11:00:00Z", &[]).await;
        add(store.as_ref(), &lee, "lee 1", "2026-10-01T12:00:00Z", &[]).await;

        let pool = store.pool();
        let role = sqlx::query("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetch_one(pool).await.unwrap();
        assert!(!role.get::<bool, _>(0) && !role.get::<bool, _>(1), "the service role must not bypass RLS");

        let count = |family: Option<Uuid>| async move {
            let mut tx = pool.begin().await.unwrap();
            if let Some(f) = family {
                sqlx::query("SELECT set_config('app.family_id', $1, true)").bind(f.to_string()).execute(&mut *tx).await.unwrap();
            }
            // Deliberately no WHERE: only the policy stands between families.
            let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM entries").fetch_one(&mut *tx).await.unwrap();
            let members: i64 = sqlx::query_scalar("SELECT count(*) FROM members").fetch_one(&mut *tx).await.unwrap();
            let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs").fetch_one(&mut *tx).await.unwrap();
            (entries, members, jobs)
        };
        assert_eq!(count(Some(kim.family.id)).await, (2, 2, 4));
        assert_eq!(count(Some(lee.family.id)).await, (1, 2, 2));
        assert_eq!(count(None).await, (0, 0, 0), "no family set: nothing visible");

        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SELECT set_config('app.family_id', $1, true)").bind(lee.family.id.to_string()).execute(&mut *tx).await.unwrap();
        let updated = sqlx::query("UPDATE entries SET raw_text = 'hijacked'").execute(&mut *tx).await.unwrap().rows_affected();
        assert_eq!(updated, 1, "an unscoped UPDATE touches only the current family");
        let forged = sqlx::query("INSERT INTO members (id, family_id, name, created_at) VALUES ($1, $2, 'Forged', now())")
            .bind(Uuid::now_v7())
            .bind(kim.family.id)
            .execute(&mut *tx)
            .await;
        assert!(forged.is_err(), "a row for another family is refused by WITH CHECK");
        drop(tx);
        let kim_texts: Vec<String> = store.list_entries(kim.family.id, &EntryFilter { limit: 10, ..Default::default() }).await.unwrap().into_iter().map(|e| e.raw_text).collect();
        assert!(kim_texts.iter().all(|t| t.starts_with("kim")));
        let _ = Row::columns(&role);
    }

    /// Every table with a `family_id` column — found from the catalogue, so a
    /// new table is covered without touching this test — has row-level
    /// security enabled and FORCEd, a policy, and shows another family nothing.
    #[tokio::test]
    async fn every_family_table_is_confined_by_forced_row_level_security() {
        let Some(store) = crate::support::postgres().await else { return };
        let kim = fam(store.as_ref(), "Kim").await;
        let lee = fam(store.as_ref(), "Lee").await;
        for f in [&kim, &lee] {
            let e = add(store.as_ref(), f, "text", "2026-10-01T10:00:00Z", &[0]).await;
            store.claim_update(f.family.id, &format!("tg:{}", f.family.id)).await.unwrap();
            store.add_chat_turn(f.family.id, f.user.id, &ChatTurn { chat_id: "c".into(), role: "user".into(), content: "x".into(), created_at: Utc::now() }).await.unwrap();
            store.update_entry(f.family.id, e.id, "text v2", &[], &[]).await.unwrap();
        }
        let pool = store.pool();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'family_id' ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        assert!(tables.len() >= 15, "the catalogue lists the family tables: {tables:?}");
        for table in &tables {
            let (enabled, forced): (bool, bool) = sqlx::query_as("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = $1::regclass")
                .bind(table)
                .fetch_one(pool)
                .await
                .unwrap();
            assert!(enabled && forced, "{table}: row-level security enabled and forced");
            let policies: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_policies WHERE tablename = $1").bind(table).fetch_one(pool).await.unwrap();
            assert!(policies >= 1, "{table} has a policy");
            // As Lee, no row of Kim's is visible, whatever the table.
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("SELECT set_config('app.family_id', $1, true)").bind(lee.family.id.to_string()).execute(&mut *tx).await.unwrap();
            let sql = format!("SELECT count(*) FROM {table} WHERE family_id = $1");
            let kims: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(kim.family.id).fetch_one(&mut *tx).await.unwrap();
            assert_eq!(kims, 0, "{table}: Kim's rows are invisible to Lee");
            drop(tx);
        }
    }

    /// The runtime role owns nothing, so it cannot switch row-level security
    /// off, drop a policy or replace a function; and nothing it can SET makes
    /// it a worker that sees every family.
    #[tokio::test]
    async fn the_runtime_role_cannot_switch_off_or_widen_row_level_security() {
        let Some((runtime, owner)) = dadly_testkit::services::postgres_database_with_owner().await else { return };
        let store = PostgresStore::connect(&runtime, 2).await.unwrap();
        let kim = fam(&store, "Kim").await;
        let lee = fam(&store, "Lee").await;
        add(&store, &kim, "kim", "2026-10-01T10:00:00Z", &[]).await;
        add(&store, &lee, "lee", "2026-10-01T10:00:00Z", &[]).await;
        let pool = store.pool();
        let role: (bool, bool) = sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetch_one(pool).await.unwrap();
        assert_eq!(role, (false, false));
        for attack in [
            "ALTER TABLE entries DISABLE ROW LEVEL SECURITY",
            "ALTER TABLE entries NO FORCE ROW LEVEL SECURITY",
            "DROP POLICY entries_own ON entries",
            "CREATE POLICY open_door ON entries USING (true)",
            "CREATE OR REPLACE FUNCTION dadly_family() RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT NULL::uuid $$",
            "CREATE OR REPLACE FUNCTION dadly_is_worker() RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT true $$",
            "ALTER TABLE jobs OWNER TO dadly_app",
            "SET ROLE dadly_owner",
            "CREATE TABLE sneaky (id int)",
        ] {
            let r = sqlx::query(sqlx::AssertSqlSafe(attack)).execute(pool).await;
            assert!(r.is_err(), "the runtime role could: {attack}");
        }
        // The old escape hatch opens nothing now; nor does becoming the group
        // role it is a member of (then `current_user` differs from
        // `session_user`, as inside the owner's functions).
        for escape in ["SELECT set_config('app.role', 'worker', true)", "SET LOCAL ROLE dadly_runtime"] {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(escape).execute(&mut *tx).await.unwrap();
            let worker: bool = sqlx::query_scalar("SELECT dadly_is_worker()").fetch_one(&mut *tx).await.unwrap();
            let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs").fetch_one(&mut *tx).await.unwrap();
            let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM entries").fetch_one(&mut *tx).await.unwrap();
            assert_eq!((worker, jobs, entries), (false, 0, 0), "{escape}");
            drop(tx);
        }
        // The worker check is inlined into each policy: a row costs two
        // comparisons, not a call that looks the owner up in the catalog
        // (which was ~30% of Postgres's CPU under load).
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SELECT set_config('app.family_id', $1, true)").bind(kim.family.id.to_string()).execute(&mut *tx).await.unwrap();
        for table in ["users", "members", "entries", "families", "jobs"] {
            let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN (VERBOSE) SELECT * FROM {table}"))).fetch_all(&mut *tx).await.unwrap();
            let plan = plan.join("\n");
            assert!(plan.contains("CURRENT_USER") && !plan.contains("dadly_is_worker"), "{table}: the worker check is not inlined:\n{plan}");
        }
        drop(tx);
        // Yet workers still claim every family's jobs, through the owner's functions.
        let mut families = HashSet::new();
        while let Some(job) = store.claim_job(Utc::now(), Duration::minutes(5)).await.unwrap() {
            families.insert(job.family_id);
            store.complete_job(job.id).await.unwrap();
        }
        assert_eq!(families, HashSet::from([kim.family.id, lee.family.id]));
        // The service refuses to run as the owner, which could do all of the above.
        let err = PostgresStore::connect(&owner, 1).await.err().expect("the owner is refused as the service's role");
        assert!(format!("{:?}", err).contains("owns Dadly's tables"), "{err:?}");
    }

    #[tokio::test]
    async fn tls_connections_work_with_sslmode_require_as_supabase_urls_ask() {
        let Some(url) = crate::support::postgres_url().await else { return };
        let store = PostgresStore::connect(&format!("{url}?sslmode=require"), 1).await.expect("TLS via rustls");
        let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetch_one(store.pool()).await.unwrap();
        assert!(ssl, "the connection is encrypted");
        fam(&store, "Kim").await;
    }

    #[tokio::test]
    async fn two_workers_drain_one_queue_each_job_exactly_once() {
        let Some(url) = crate::support::postgres_url().await else { return };
        let a = Arc::new(PostgresStore::connect(&url, 4).await.unwrap());
        let b = Arc::new(PostgresStore::connect(&url, 4).await.unwrap());
        let mut expected = HashSet::new();
        for i in 0..6 {
            let f = fam(a.as_ref(), &format!("F{i}")).await;
            for j in 0..5 {
                add(a.as_ref(), &f, &format!("e{j}"), "2026-10-01T10:00:00Z", &[]).await;
            }
            expected.insert(f.family.id);
        }
        let drain = |store: Arc<PostgresStore>| tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = store.claim_job(Utc::now(), Duration::minutes(5)).await.unwrap() {
                mine.push(job.id);
                tokio::task::yield_now().await;
                store.complete_job(job.id).await.unwrap();
            }
            mine
        });
        let (ja, jb) = (drain(a.clone()), drain(b.clone()));
        let (ja, jb) = (ja.await.unwrap(), jb.await.unwrap());
        let all: Vec<Uuid> = ja.iter().chain(jb.iter()).copied().collect();
        let unique: HashSet<Uuid> = all.iter().copied().collect();
        assert_eq!(all.len(), 60, "6 families × 5 entries × 2 jobs");
        assert_eq!(unique.len(), all.len(), "no job was handed to both workers");
        assert!(!ja.is_empty() && !jb.is_empty(), "both workers took part ({} / {})", ja.len(), jb.len());
        assert_eq!(a.job_counts(None).await.unwrap(), JobCounts { done: 60, ..Default::default() });
    }
}
