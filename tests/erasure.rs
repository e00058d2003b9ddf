//! Data rights: erasing an entry, a child and a whole family removes every
//! copy from every backend — checked by scanning for marker strings in the
//! SQLite files (database, WAL, traces, media folder) and in a `pg_dump` of
//! Postgres, the Qdrant stand-in's points and the S3 bucket's objects — and
//! leaves an audit record that says an erasure happened, not what it erased.

mod common;

use common::{Family, TestApp};
use dadly_agent::domain::PendingMedia;
use dadly_testkit::qdrant::QdrantStandIn;
use dadly_testkit::services;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Where the test looks for what should be gone.
struct Backends {
    dir: std::path::PathBuf,
    /// The Postgres database's URL (for `pg_dump`), on the production stack.
    postgres: Option<String>,
    qdrant: Option<QdrantStandIn>,
}

impl Backends {
    /// Every place that still holds `marker`.
    fn holding(&self, marker: &str) -> Vec<String> {
        let mut hits = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if std::fs::read(&p).map(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes())).unwrap_or(false) {
                    hits.push(p.display().to_string());
                }
            }
        }
        if let Some(url) = &self.postgres
            && common::pg_dump_contains(url, marker)
        {
            hits.push("postgres dump".into());
        }
        hits
    }
}

async fn photo(app: &TestApp, family: &Family, entry_id: &str, bytes: &str) -> String {
    let store = app.app_state.agent.store();
    let id: uuid::Uuid = entry_id.parse().unwrap();
    store.add_pending_media(family.id, id, &PendingMedia { kind: "photo".into(), source_ref: "test:photo".into(), content_type: "image/jpeg".into() }, None).await.unwrap();
    let stored = app.app_state.agent.backends().blobs.put(family.id, bytes.as_bytes().to_vec(), "image/jpeg", "jpg").await.unwrap();
    let media = store.entry_media(family.id, id).await.unwrap();
    store.media_fetched(family.id, media[0].id, &stored).await.unwrap();
    stored.key
}

async fn settle_unindexing(app: &TestApp, family: &Family) {
    for _ in 0..400 {
        let (_, status) = app.get(&family.token, "/v1/status").await;
        if status["jobs"]["queued"] == 0 && status["jobs"]["running"] == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

async fn erasure_everywhere(app: &TestApp, b: &Backends) {
    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Junho", &["준호"])]).await;
    let (minji, junho) = (kim.member("Minji").id, kim.member("Junho").id);
    let only_minji = app.entry(&kim, "Minji whispered marker-alpha-17 to the moon", "2026-10-01T10:00:00Z").await;
    let both = app.entry(&kim, "Minji and Junho painted marker-beta-29 on the fence", "2026-10-02T10:00:00Z").await;
    let only_junho = app.entry(&kim, "Junho hid marker-delta-41 in his shoe", "2026-10-03T10:00:00Z").await;
    let blob = photo(app, &kim, &only_minji, "jpeg marker-photo-53").await;
    for id in [&only_minji, &both, &only_junho] {
        app.wait_ready(&kim, id).await;
    }
    // Copies beyond the entry: an answer quoting it in chat memory, a capsule, an edit's history.
    app.post(&kim.token, "/v1/chat", json!({ "message": "/ask What did Minji whisper to the moon?" })).await;
    let (status, _) = app.post(&kim.token, "/v1/capsules", json!({ "member_id": minji, "open_at": "2036-03-14", "message": "marker-capsule-61 for Minji" })).await;
    assert_eq!(status, StatusCode::CREATED);
    app.http.patch(app.url(&format!("/v1/entries/{only_junho}"))).bearer_auth(&kim.token).json(&json!({ "text": "Junho hid marker-delta-41 in his left shoe" })).send().await.unwrap();
    app.wait_ready(&kim, &only_junho).await;
    let before = b.holding("marker-alpha-17");
    assert!(!before.is_empty(), "the scan finds what is there");
    if b.postgres.is_some() {
        assert!(before.contains(&"postgres dump".to_string()), "the dump is scanned: {before:?}");
    }

    // Erasing a child needs the owner and their name.
    let r = app.http.delete(app.url(&format!("/v1/members/{minji}?confirm=Junho"))).bearer_auth(&kim.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.http.delete(app.url(&format!("/v1/members/{minji}?confirm=minji"))).bearer_auth(&kim.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let erased: Value = r.json().await.unwrap();
    assert_eq!((erased["entries_deleted"].as_u64(), erased["entries_detached"].as_u64(), erased["capsules"].as_u64(), erased["media"].as_u64()), (Some(1), Some(1), Some(1), Some(1)), "{erased}");
    settle_unindexing(app, &kim).await;
    for marker in ["marker-alpha-17", "marker-photo-53", "marker-capsule-61"] {
        assert_eq!(b.holding(marker), Vec::<String>::new(), "{marker} survived the child's erasure");
    }
    if let Some(q) = &b.qdrant {
        assert!(q.payload("entries_v1", &only_minji).is_none(), "the erased entry's point is gone");
        assert_eq!(q.payload("entries_v1", &both).unwrap()["member_ids"], json!([junho.to_string()]), "the shared entry's point lost only Minji");
    }
    assert!(app.app_state.agent.backends().blobs.get(kim.id, &blob).await.is_err(), "the photo object is gone");
    let (_, shared) = app.get(&kim.token, &format!("/v1/entries/{both}")).await;
    assert_eq!(shared["member_ids"], json!([junho]), "the entry about both children lost only Minji");
    assert_eq!(shared["insights"]["member_ids"], json!([junho]));
    let (_, members) = app.get(&kim.token, "/v1/members").await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    let (_, capsules) = app.get(&kim.token, "/v1/capsules").await;
    assert_eq!(capsules, json!({ "capsules": [] }));
    let (_, audit) = app.get(&kim.token, "/v1/erasures").await;
    assert_eq!(audit["erasures"][0]["kind"], "child");
    assert_eq!(audit["erasures"][0]["actor_id"], kim.user_id.to_string());
    assert!(!audit.to_string().contains("Minji") && !audit.to_string().contains(&minji.to_string()), "the audit says that, not what: {audit}");

    // Deleting one entry takes its versions, chat copies and traces too.
    app.post(&kim.token, "/v1/chat", json!({ "message": "/ask Where did Junho hide it in his left shoe?" })).await;
    let r = app.http.delete(app.url(&format!("/v1/entries/{only_junho}"))).bearer_auth(&kim.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    settle_unindexing(app, &kim).await;
    app.app_state.agent.store().compact().await.unwrap();
    assert_eq!(b.holding("marker-delta-41"), Vec::<String>::new(), "a deleted entry survived somewhere");

    // Erasing the family: everything, and the token stops working.
    let r = app.http.delete(app.url("/v1/family?confirm=yes")).bearer_auth(&kim.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.http.delete(app.url("/v1/family?confirm=erase-everything")).bearer_auth(&kim.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(b.holding("marker-beta-29"), Vec::<String>::new(), "the family's last entry survived");
    if let Some(q) = &b.qdrant {
        assert!(q.payload("entries_v1", &both).is_none());
    }
    assert_eq!(app.http.get(app.url("/v1/entries")).bearer_auth(&kim.token).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn erasure_reaches_every_embedded_backend() {
    let app = TestApp::spawn().await;
    let b = Backends { dir: app.dir.path().to_path_buf(), postgres: None, qdrant: None };
    erasure_everywhere(&app, &b).await;
}

#[tokio::test]
async fn erasure_reaches_postgres_qdrant_and_s3() {
    let Some(db) = services::postgres_database().await else { return };
    let Some(s3) = services::s3() else { return };
    let qdrant = QdrantStandIn::start(None).await;
    let env = [
        ("DATABASE_URL", db.clone()),
        ("QDRANT_URL", qdrant.url.clone()),
        ("S3_ENDPOINT", s3.endpoint),
        ("S3_BUCKET", s3.bucket),
        ("S3_PATH_STYLE", "true".into()),
        ("S3_REGION", "us-east-1".into()),
        ("R2_ACCESS_KEY", s3.access_key),
        ("R2_SECRET_KEY", s3.secret_key),
    ];
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&pairs).await;
    let b = Backends { dir: app.dir.path().to_path_buf(), postgres: Some(db), qdrant: Some(qdrant) };
    erasure_everywhere(&app, &b).await;
}

#[tokio::test]
async fn retention_deletes_old_traces_and_audio_and_the_owner_hears_once_when_a_child_turns_14() {
    use common::fake_telegram::{self as tg, FakeTelegram, TOKEN};
    use dadly_agent::jobs::{Housekeeping, housekeep};
    let fake = FakeTelegram::start().await;
    let app = TestApp::spawn_with(&[
        ("TELEGRAM_BOT_TOKEN", TOKEN),
        ("TELEGRAM_API_URL", fake.base.as_str()),
        ("TELEGRAM_WEBHOOK_URL", "https://dadly.example/hook"),
        ("TELEGRAM_WEBHOOK_SECRET", "hook-secret"),
    ])
    .await;
    let kim = app.family("Kim", &[]).await;
    let today = chrono::Utc::now().date_naive();
    let fourteen = (today - chrono::Months::new(14 * 12) - chrono::Days::new(1)).to_string();
    let thirteen = (today - chrono::Months::new(13 * 12)).to_string();
    for (name, born) in [("Minji", &fourteen), ("Junho", &thirteen)] {
        let (status, _) = app.post(&kim.token, "/v1/members", json!({ "name": name, "birth_date": born })).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, code) = app.post(&kim.token, "/v1/telegram/link-codes", json!({})).await;
    let start = json!({ "update_id": 1, "message": tg::text(111, 1, &format!("/start {}", code["code"].as_str().unwrap())) });
    app.http.post(app.url("/hook")).header("x-telegram-bot-api-secret-token", "hook-secret").json(&start).send().await.unwrap();

    // An old trace file, and a transcribed voice note whose audio is kept.
    let traces = app.dir.path().join("traces");
    std::fs::create_dir_all(&traces).unwrap();
    std::fs::write(traces.join("2020-01-01.jsonl"), "{}\n").unwrap();
    let voice = app.entry(&kim, "Minji sang (a transcribed voice note)", "2026-11-01T10:00:00Z").await;
    let store = app.app_state.agent.store();
    let id: uuid::Uuid = voice.parse().unwrap();
    store.add_pending_media(kim.id, id, &PendingMedia { kind: "voice".into(), source_ref: "test:voice".into(), content_type: "audio/ogg".into() }, None).await.unwrap();
    let stored = app.app_state.agent.backends().blobs.put(kim.id, b"OggS audio".to_vec(), "audio/ogg", "ogg").await.unwrap();
    store.media_fetched(kim.id, store.entry_media(kim.id, id).await.unwrap()[0].id, &stored).await.unwrap();

    let settings = Housekeeping { keep_traces: chrono::Duration::days(30), keep_audio: Some(chrono::Duration::zero()), ..Housekeeping::default() };
    housekeep(&app.app_state.agent, &settings).await;
    housekeep(&app.app_state.agent, &settings).await;

    assert!(!traces.join("2020-01-01.jsonl").exists(), "an old trace file is deleted");
    assert!(std::fs::read_dir(&traces).unwrap().count() >= 1, "today's traces stay");
    assert!(app.app_state.agent.backends().blobs.get(kim.id, &stored.key).await.is_err(), "the audio is deleted");
    let (_, entry) = app.get(&kim.token, &format!("/v1/entries/{voice}")).await;
    assert_eq!(entry["raw_text"], "Minji sang (a transcribed voice note)", "the transcript stays");
    assert!(entry["media"][0]["url"].is_null(), "{entry}");
    let notices: Vec<Value> = fake.sent_to(111).into_iter().filter(|m| m["text"].as_str().unwrap_or("").contains("14")).collect();
    assert_eq!(notices.len(), 1, "told once, about Minji only: {notices:?}");
    assert!(notices[0]["text"].as_str().unwrap().contains("Minji is 14 now"));
    let (_, members) = app.get(&kim.token, "/v1/members").await;
    let noticed: Vec<(&str, bool)> = members["members"].as_array().unwrap().iter().map(|m| (m["name"].as_str().unwrap(), !m["age_notice_at"].is_null())).collect();
    assert_eq!(noticed, vec![("Minji", true), ("Junho", false)], "the app shows it too");
}
