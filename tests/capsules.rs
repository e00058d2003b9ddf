//! Time capsules end to end: sealed means unreadable everywhere — answers,
//! sources, listings, exports, traces, the database file — until the day;
//! then the capsule opens once, becomes an ordinary entry and reaches the
//! family's Telegram, even with two instances on one Postgres.

mod common;

use std::time::Duration;

use common::fake_telegram::{self as tg, FakeTelegram, TOKEN};
use common::{Family, TestApp, source_ids};
use dadly_testkit::services;
use reqwest::StatusCode;
use serde_json::{Value, json};

const KIM: i64 = 111;
const SEALED: &str = "zephyr-lantern-4411";

fn soon(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339()
}

async fn link_by_webhook(app: &TestApp, family: &Family, path: &str, secret: &str, update_id: i64) {
    let (_, code) = app.post(&family.token, "/v1/telegram/link-codes", json!({})).await;
    let start = json!({ "update_id": update_id, "message": tg::text(KIM, update_id, &format!("/start {}", code["code"].as_str().unwrap())) });
    let r = app.http.post(app.url(path)).header("x-telegram-bot-api-secret-token", secret).json(&start).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn wait_opened(app: &TestApp, family: &Family, id: &str) -> Value {
    for _ in 0..400 {
        let (_, list) = app.get(&family.token, "/v1/capsules").await;
        if let Some(c) = list["capsules"].as_array().unwrap().iter().find(|c| c["id"] == id)
            && c["status"] == "opened"
        {
            return c.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("capsule {id} never opened");
}

/// Every file under `dir` (the SQLite database and its WAL, traces, media).
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes())).unwrap_or(false) {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test]
async fn a_sealed_capsule_is_unreadable_everywhere_until_it_opens_then_it_is_an_entry() {
    let fake = FakeTelegram::start().await;
    let app = TestApp::spawn_with(&[
        ("TELEGRAM_BOT_TOKEN", TOKEN),
        ("TELEGRAM_API_URL", fake.base.as_str()),
        ("TELEGRAM_WEBHOOK_URL", "https://dadly.example/hook"),
        ("TELEGRAM_WEBHOOK_SECRET", "hook-secret"),
    ])
    .await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    let minji = kim.member("Minji").id;
    link_by_webhook(&app, &kim, "/hook", "hook-secret", 1).await;
    app.entry(&kim, "Minji found a lantern at the zephyr festival", "2026-11-01T10:00:00Z").await;

    // Sealed through the API: the answer is its existence, never its message.
    let message = format!("Dear Minji, the secret word is {SEALED}. We love you.");
    let (status, sealed) = app.post(&kim.token, "/v1/capsules", json!({ "member_id": minji, "open_at": soon(3), "message": message })).await;
    assert_eq!(status, StatusCode::CREATED, "{sealed}");
    assert_eq!(sealed["status"], "sealed");
    assert!(!sealed.to_string().contains(SEALED));
    let id = sealed["id"].as_str().unwrap().to_string();

    // Sealed through chat, after the parent confirms the resolved day.
    let (_, draft) = app.post(&kim.token, "/v1/chat", json!({ "message": format!("Time capsule for Minji, open on her 18th birthday: the other secret is {SEALED}-two"), "chat_id": "c1" })).await;
    assert_eq!(draft["kind"], "capsule", "{draft}");
    assert!(draft["reply"].as_str().unwrap().contains("Who is the capsule for") || draft["reply"].as_str().unwrap().contains("When should it open"), "no birth date yet: {draft}");
    let (_, _) = app.http.post(app.url("/v1/members")).bearer_auth(&kim.token).json(&json!({"name": "Junho", "birth_date": "2019-05-01"})).send().await.map(|r| (r.status(), ())).unwrap();
    let (_, draft) = app.post(&kim.token, "/v1/chat", json!({ "message": format!("Time capsule for Junho, open on his 18th birthday: the other secret is {SEALED}-two"), "chat_id": "c1" })).await;
    assert_eq!(draft["kind"], "capsule");
    assert!(draft["reply"].as_str().unwrap().contains("2037-05-01"), "the resolved day is confirmed first: {draft}");
    let (_, listed) = app.get(&kim.token, "/v1/capsules").await;
    assert_eq!(listed["capsules"].as_array().unwrap().len(), 1, "a draft is not a capsule yet");
    let (_, confirmed) = app.post(&kim.token, "/v1/chat", json!({ "message": "yes", "chat_id": "c1" })).await;
    assert_eq!(confirmed["kind"], "capsule");
    assert_eq!(confirmed["capsule"]["status"], "sealed", "{confirmed}");

    // Before the day: nothing anywhere holds the message.
    // (The questions use the message's words, not the marker itself, which would then be the parent's own text.)
    for question in ["What is the secret word we wrote to Minji?", "zephyr lantern 4411 secret word", "민지에게 쓴 비밀 단어는?"] {
        let (_, answer) = app.post(&kim.token, "/v1/chat", json!({ "message": format!("/ask {question}") })).await;
        assert!(!answer.to_string().contains(SEALED), "an answer leaks the capsule: {answer}");
    }
    let (_, listed) = app.get(&kim.token, "/v1/capsules").await;
    assert_eq!(listed["capsules"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(SEALED));
    let export = app.http.get(app.url("/v1/export?format=json")).bearer_auth(&kim.token).send().await.unwrap().text().await.unwrap();
    assert!(!export.contains(SEALED), "the export leaks a sealed capsule");
    assert!(files_containing(app.dir.path(), SEALED).is_empty(), "a file in the data dir (database, WAL, traces) holds the message: {:?}", files_containing(app.dir.path(), SEALED));
    assert!(!fake.calls("sendMessage").iter().any(|m| m.to_string().contains(SEALED)));

    // On the day: opened once, an ordinary entry, found by questions, sent to the parent.
    let opened = wait_opened(&app, &kim, &id).await;
    let entry_id = opened["entry_id"].as_str().unwrap().to_string();
    let entry = app.wait_ready(&kim, &entry_id).await;
    assert_eq!(entry["raw_text"], message);
    assert_eq!(entry["source"], "capsule");
    assert_eq!(entry["member_ids"], json!([minji]));
    let answer = app.chat(&kim, &format!("What is the secret word {SEALED}?")).await;
    assert!(source_ids(&answer).contains(&entry_id), "{answer}");
    let answer = app.chat(&kim, "What did we write in Minji's time capsule about the secret word?").await;
    assert_eq!(answer["kind"], "answered", "a question about a capsule is answered, not taken for a new one: {answer}");
    assert!(source_ids(&answer).contains(&entry_id), "{answer}");
    // (The other capsule's opening stays queued for 2037, so wait for the message itself.)
    let told = |fake: &FakeTelegram| fake.sent_to(KIM).into_iter().filter(|m| m["text"].as_str().unwrap_or("").contains(SEALED)).collect::<Vec<Value>>();
    for _ in 0..200 {
        if !told(&fake).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivered = told(&fake);
    assert_eq!(delivered.len(), 1, "told once: {delivered:?}");
    assert!(delivered[0]["text"].as_str().unwrap().contains("time capsule for Minji"));
    // The other stays sealed; deleting it is all anyone can do.
    let (_, listed) = app.get(&kim.token, "/v1/capsules").await;
    let other = listed["capsules"].as_array().unwrap().iter().find(|c| c["status"] == "sealed").unwrap()["id"].as_str().unwrap().to_string();
    let r = app.http.delete(app.url(&format!("/v1/capsules/{other}"))).bearer_auth(&kim.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(files_containing(app.dir.path(), &format!("{SEALED}-two")).is_empty());
}

#[tokio::test]
async fn capsules_are_the_familys_own_and_refuse_bad_input() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let lee = app.family("Lee", &[("Sora", &[])]).await;
    let minji = kim.member("Minji").id;
    let (_, sealed) = app.post(&kim.token, "/v1/capsules", json!({ "member_id": minji, "open_at": "2036-03-14", "message": "hi" })).await;
    let id = sealed["id"].as_str().unwrap();
    assert_eq!(sealed["status"], "sealed", "{sealed}");
    for (body, code) in [
        (json!({ "member_id": minji, "open_at": "2020-01-01", "message": "x" }), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({ "member_id": minji, "open_at": "someday", "message": "x" }), StatusCode::BAD_REQUEST),
        (json!({ "member_id": minji, "open_at": "2036-03-14", "message": "\u{200B}" }), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({ "member_id": minji, "open_at": "+10000-01-01T00:00:00Z", "message": "x" }), StatusCode::BAD_REQUEST),
        (json!({ "member_id": minji, "open_at": "9999-12-31T23:59:59+00:00", "message": "x" }), StatusCode::CREATED),
        (json!({ "member_id": kim.member("Minji").id, "open_at": "2036-03-14", "message": "x", "extra": 1 }), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, v) = app.post(&kim.token, "/v1/capsules", body.clone()).await;
        assert_eq!(status, code, "{body} → {v}");
    }
    // Lee cannot seal for Kim's child, see Kim's capsule, or delete it.
    let (status, _) = app.post(&lee.token, "/v1/capsules", json!({ "member_id": minji, "open_at": "2036-03-14", "message": "x" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, theirs) = app.get(&lee.token, "/v1/capsules").await;
    assert_eq!(theirs, json!({ "capsules": [] }));
    let r = app.http.delete(app.url(&format!("/v1/capsules/{id}"))).bearer_auth(&lee.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&kim.token, "/v1/capsules").await.1["capsules"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn two_instances_on_one_postgres_open_and_deliver_a_capsule_once() {
    let Some(db) = services::postgres_database().await else { return };
    let fake = FakeTelegram::start().await;
    let key = "7f".repeat(32);
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("DADLY_CAPSULE_KEY", key.as_str()),
        ("TELEGRAM_BOT_TOKEN", TOKEN),
        ("TELEGRAM_API_URL", fake.base.as_str()),
        ("TELEGRAM_WEBHOOK_URL", "https://dadly.example/hook"),
        ("TELEGRAM_WEBHOOK_SECRET", "hook-secret"),
        ("DADLY_JOB_POLL_MS", "20"),
    ];
    let a = TestApp::spawn_with(&env).await;
    let b = TestApp::spawn_with(&env).await;
    let kim = a.family("Kim", &[("Minji", &[])]).await;
    link_by_webhook(&a, &kim, "/hook", "hook-secret", 1).await;
    let minji = kim.member("Minji").id;
    let mut ids = Vec::new();
    for i in 0..4 {
        let (status, c) = a.post(&kim.token, "/v1/capsules", json!({ "member_id": minji, "open_at": soon(2), "message": format!("{SEALED} number {i}") })).await;
        assert_eq!(status, StatusCode::CREATED, "{c}");
        ids.push(c["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        wait_opened(&b, &kim, id).await;
    }
    a.settle(&kim).await;
    b.settle(&kim).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, list) = b.get(&kim.token, "/v1/entries?limit=100").await;
    let capsule_entries: Vec<&Value> = list["entries"].as_array().unwrap().iter().filter(|e| e["source"] == "capsule").collect();
    assert_eq!(capsule_entries.len(), 4, "each opened once: {list}");
    for i in 0..4 {
        let told = fake.sent_to(KIM).into_iter().filter(|m| m["text"].as_str().unwrap_or("").contains(&format!("{SEALED} number {i}"))).count();
        assert_eq!(told, 1, "capsule {i} delivered once");
    }
}
