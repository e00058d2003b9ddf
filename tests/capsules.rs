//! Time capsules end to end: sealed means unreadable everywhere — answers,
//! sources, listings, exports, traces, the database file — until the day;
//! then the capsule opens once, becomes an ordinary entry and reaches the
//! family's Telegram, even with two instances on one Postgres.

mod common;

use std::time::Duration;

use common::fake_openai::FakeOpenAi;
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

const PIXELS: &str = "sealed-pixels-7731";
const VOICE: &str = "sealed-voice-9902";

/// A PNG and an Ogg file whose bytes carry marker strings (the type is read from the first bytes).
fn png(marker: &str) -> Vec<u8> {
    [b"\x89PNG\r\n\x1a\n".as_slice(), marker.as_bytes(), b"\n\n\x00IEND"].concat()
}

fn ogg(marker: &str) -> Vec<u8> {
    [b"OggS\x00\x02".as_slice(), marker.as_bytes()].concat()
}

async fn seal_form(app: &TestApp, token: &str, form: reqwest::multipart::Form) -> (StatusCode, Value) {
    let r = app.http.post(app.url("/v1/capsules")).bearer_auth(token).multipart(form).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn file(bytes: Vec<u8>, name: &str, declared: &str) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()).mime_str(declared).unwrap()
}

/// Where a marker is stored in the clear: the data dir (SQLite, WAL, traces,
/// media folder) and, on the production stack, a `pg_dump` of the database.
fn clear_copies(app: &TestApp, postgres: Option<&str>, marker: &str) -> Vec<String> {
    let mut hits = files_containing(app.dir.path(), marker);
    if let Some(url) = postgres
        && common::pg_dump_contains(url, marker)
    {
        hits.push("postgres dump".into());
    }
    hits
}

/// A photo capsule and a voice-only capsule sealed over the API: nothing
/// stores their bytes in the clear before the day; then the photo is the
/// opened entry's media (the same bytes) and the voice note is transcribed
/// into its entry by the usual job.
async fn photo_and_voice_capsules(app: &TestApp, openai: &FakeOpenAi, postgres: Option<&str>) {
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let minji = kim.member("Minji").id.to_string();
    openai.set_transcript("Minji, this is Dad singing your song");
    let form = reqwest::multipart::Form::new()
        .text("member_id", minji.clone())
        .text("open_at", soon(3))
        .text("message", "Your first day at school")
        // Declared as anything: the bytes say it is a PNG.
        .part("file", file(png(PIXELS), "school.png", "application/octet-stream"));
    let (status, photo) = seal_form(app, &kim.token, form).await;
    assert_eq!(status, StatusCode::CREATED, "{photo}");
    let form = reqwest::multipart::Form::new().text("member_id", minji.clone()).text("open_at", soon(3)).part("audio", file(ogg(VOICE), "song.ogg", "audio/ogg"));
    let (status, voice) = seal_form(app, &kim.token, form).await;
    assert_eq!(status, StatusCode::CREATED, "{voice}");
    assert!(!photo.to_string().contains("attachment") && !photo.to_string().contains("image"), "the listing says nothing of what is inside: {photo}");

    for marker in [PIXELS, VOICE] {
        assert!(clear_copies(app, postgres, marker).is_empty(), "{marker} stored in the clear before the day: {:?}", clear_copies(app, postgres, marker));
    }
    let (_, entries) = app.get(&kim.token, "/v1/entries").await;
    assert_eq!(entries["entries"], json!([]), "nothing is an entry before the day");

    let opened = wait_opened(app, &kim, photo["id"].as_str().unwrap()).await;
    let entry_id = opened["entry_id"].as_str().unwrap().to_string();
    let mut view = Value::Null;
    for _ in 0..200 {
        view = app.get(&kim.token, &format!("/v1/entries/{entry_id}")).await.1;
        if view["media"][0]["url"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(view["raw_text"], "Your first day at school", "{view}");
    assert_eq!(view["media"][0]["kind"], "photo", "{view}");
    assert_eq!(view["media"][0]["content_type"], "image/png");
    let link = view["media"][0]["url"].as_str().expect("the photo is the entry's media").to_string();
    // Local media links name the configured public address; the test server listens elsewhere.
    let link = match link.split_once("/media/") {
        Some((_, path)) if !link.contains("X-Amz-") => app.url(&format!("/media/{path}")),
        _ => link,
    };
    let bytes = app.http.get(&link).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), png(PIXELS).as_slice(), "the same bytes come out");

    let opened = wait_opened(app, &kim, voice["id"].as_str().unwrap()).await;
    let voice_entry = opened["entry_id"].as_str().unwrap().to_string();
    let entry = app.wait_ready(&kim, &voice_entry).await;
    assert_eq!(entry["raw_text"], "Minji, this is Dad singing your song");
    assert_eq!(entry["source"], "capsule");
    let (_, view) = app.get(&kim.token, &format!("/v1/entries/{voice_entry}")).await;
    assert_eq!(view["media"][0]["kind"], "voice", "{view}");
    assert!(openai.requests("/v1/audio/transcriptions").len() == 1, "transcribed once");
}

#[tokio::test]
async fn a_capsule_seals_a_photo_or_a_voice_note_until_its_day() {
    let openai = FakeOpenAi::start().await;
    let env = openai.env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&pairs).await;
    photo_and_voice_capsules(&app, &openai, None).await;
}

#[tokio::test]
async fn capsule_attachments_on_postgres_and_s3() {
    let Some(db) = services::postgres_database().await else { return };
    let Some(s3) = services::s3() else { return };
    let openai = FakeOpenAi::start().await;
    let mut env = openai.env();
    env.extend([
        ("DATABASE_URL", db.clone()),
        ("DADLY_CAPSULE_KEY", "5a".repeat(32)),
        ("S3_ENDPOINT", s3.endpoint),
        ("S3_BUCKET", s3.bucket),
        ("S3_PATH_STYLE", "true".into()),
        ("S3_REGION", "us-east-1".into()),
        ("R2_ACCESS_KEY", s3.access_key),
        ("R2_SECRET_KEY", s3.secret_key),
    ]);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&pairs).await;
    photo_and_voice_capsules(&app, &openai, Some(&db)).await;
}

#[tokio::test]
async fn an_attachment_must_be_a_photo_or_a_voice_note_within_the_limit() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let minji = kim.member("Minji").id.to_string();
    let base = || reqwest::multipart::Form::new().text("member_id", minji.clone()).text("open_at", "2036-03-14");
    let cases: Vec<(reqwest::multipart::Form, StatusCode, &str)> = vec![
        (base().part("file", file(b"<html><script>alert(1)</script>".to_vec(), "x.png", "image/png")), StatusCode::UNSUPPORTED_MEDIA_TYPE, "an HTML file declared as PNG"),
        (base().part("photo", file(png("a"), "a.png", "image/png")).part("audio", file(ogg("b"), "b.ogg", "audio/ogg")), StatusCode::UNPROCESSABLE_ENTITY, "both a photo and a voice note"),
        (base(), StatusCode::UNPROCESSABLE_ENTITY, "neither a message nor a file"),
        (reqwest::multipart::Form::new().text("open_at", "2036-03-14").part("photo", file(png("a"), "a.png", "image/png")), StatusCode::UNPROCESSABLE_ENTITY, "no child"),
        (base().text("message", "x\u{0}y"), StatusCode::UNPROCESSABLE_ENTITY, "a NUL in a field"),
        (base().part("photo", file([png("big"), vec![0u8; 21 * 1024 * 1024]].concat(), "big.png", "image/png")), StatusCode::PAYLOAD_TOO_LARGE, "over 20 MiB"),
    ];
    for (form, expected, what) in cases {
        let (status, body) = seal_form(&app, &kim.token, form).await;
        assert_eq!(status, expected, "{what}: {body}");
        assert!(body["error"]["message"].is_string(), "{what}: a JSON error body: {body}");
    }
    let (_, listed) = app.get(&kim.token, "/v1/capsules").await;
    assert_eq!(listed["capsules"], json!([]), "nothing was sealed from a refused form");
    let r = app.http.post(app.url("/v1/capsules")).bearer_auth(&kim.token).header("content-type", "text/plain").body("hi").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn on_telegram_a_photo_or_voice_note_goes_into_the_capsule_being_drafted() {
    let fake = FakeTelegram::start().await;
    let app = TestApp::spawn_with(&[
        ("TELEGRAM_BOT_TOKEN", TOKEN),
        ("TELEGRAM_API_URL", fake.base.as_str()),
        ("TELEGRAM_WEBHOOK_URL", "https://dadly.example/hook"),
        ("TELEGRAM_WEBHOOK_SECRET", "hook-secret"),
    ])
    .await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    link_by_webhook(&app, &kim, "/hook", "hook-secret", 1).await;
    let hook = |update: Value| app.http.post(app.url("/hook")).header("x-telegram-bot-api-secret-token", "hook-secret").json(&update).send();
    fake.add_file("voice-1", ogg(VOICE));
    fake.add_file("photo-1", png(PIXELS));

    // A text request drafts; the voice note sent next goes in; "yes" seals both.
    hook(json!({ "update_id": 2, "message": tg::text(KIM, 2, "/capsule Minji in 10 years: a song for you") })).await.unwrap();
    let replies = fake.wait_sent(KIM, 2).await;
    assert!(replies[1]["text"].as_str().unwrap().contains("voice note"), "the draft says a photo or voice note can go in: {replies:?}");
    hook(json!({ "update_id": 3, "message": tg::voice(KIM, 3, "voice-1", 1000) })).await.unwrap();
    // Telegram redelivers the same update: it goes in once, and nothing is said twice.
    hook(json!({ "update_id": 3, "message": tg::voice(KIM, 3, "voice-1", 1000) })).await.unwrap();
    let replies = fake.wait_sent(KIM, 3).await;
    assert!(replies[2]["text"].as_str().unwrap().contains("put the voice note in the capsule"), "{replies:?}");
    hook(json!({ "update_id": 4, "message": tg::text(KIM, 4, "yes") })).await.unwrap();
    let replies = fake.wait_sent(KIM, 4).await;
    assert!(replies[3]["text"].as_str().unwrap().starts_with("Sealed"), "{replies:?}");

    // A photo whose caption asks for a capsule drafts one with the photo.
    hook(json!({ "update_id": 5, "message": tg::photo(KIM, 5, "photo-1", Some("Time capsule for Minji in 5 years: your first bike"), None) })).await.unwrap();
    let replies = fake.wait_sent(KIM, 5).await;
    assert!(replies[4]["text"].as_str().unwrap().contains("and its photo"), "{replies:?}");
    hook(json!({ "update_id": 6, "message": tg::text(KIM, 6, "/seal") })).await.unwrap();
    fake.wait_sent(KIM, 6).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.sent_to(KIM).len(), 6, "one reply per message: {:?}", fake.sent_to(KIM));

    let (_, listed) = app.get(&kim.token, "/v1/capsules").await;
    assert_eq!(listed["capsules"].as_array().unwrap().len(), 2, "{listed}");
    let (_, entries) = app.get(&kim.token, "/v1/entries").await;
    assert_eq!(entries["entries"], json!([]), "neither the voice note nor the photo became a journal entry");
    for marker in [PIXELS, VOICE, "your first bike", "a song for you"] {
        assert!(files_containing(app.dir.path(), marker).is_empty(), "{marker} in the clear: {:?}", files_containing(app.dir.path(), marker));
    }
    // With no draft open, a voice note is an ordinary entry again.
    fake.add_file("voice-2", ogg("plain"));
    hook(json!({ "update_id": 7, "message": tg::voice(KIM, 7, "voice-2", 1000) })).await.unwrap();
    fake.wait_sent(KIM, 7).await;
    let (_, entries) = app.get(&kim.token, "/v1/entries").await;
    assert_eq!(entries["entries"].as_array().unwrap().len(), 1, "{entries}");
}
