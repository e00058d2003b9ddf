//! Families with several parents, on SQLite and Postgres: the owner invites a
//! second parent (redeemed in the app or by `/start CODE` in Telegram), both
//! record and ask in one journal, only the owner manages children and
//! parents, and a removed parent is locked out while their entries stay.

mod common;

use common::fake_telegram::{self as tg, FakeTelegram, TOKEN};
use common::TestApp;
use dadly_testkit::services;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn two_parents_share_one_journal(app: &TestApp, fake: &FakeTelegram) {
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    let minji = kim.member("Minji").id;

    // The owner invites; the second parent joins in the app and gets a token.
    let (status, invite) = app.post(&kim.token, "/v1/invites", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let code = invite["code"].as_str().unwrap().to_string();
    let joined = app.http.post(app.url("/v1/invites/redeem")).json(&json!({ "code": code, "name": "Jiwoo" })).send().await.unwrap();
    assert_eq!(joined.status(), StatusCode::CREATED);
    let joined: Value = joined.json().await.unwrap();
    assert_eq!(joined["parent"]["role"], "parent");
    let jiwoo = joined["token"].as_str().unwrap().to_string();
    let jiwoo_id = joined["parent"]["id"].as_str().unwrap().to_string();
    // One-time: a second redemption is refused.
    let again = app.http.post(app.url("/v1/invites/redeem")).json(&json!({ "code": code, "name": "Mallory" })).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Both write into one journal; entries say who wrote them; answers find both.
    let (_, mine) = app.post(&kim.token, "/v1/chat", json!({ "message": "Minji learned to whistle today" })).await;
    let (_, theirs) = app.post(&jiwoo, "/v1/chat", json!({ "message": "Minji built a blanket fort today" })).await;
    assert_eq!(theirs["entry"]["author_id"], jiwoo_id.as_str(), "{theirs}");
    assert_ne!(mine["entry"]["author_id"], theirs["entry"]["author_id"]);
    let (_, list) = app.get(&kim.token, "/v1/entries").await;
    assert_eq!(list["entries"].as_array().unwrap().len(), 2);
    let (_, parents) = app.get(&jiwoo, "/v1/parents").await;
    let names: Vec<(&str, &str)> = parents["parents"].as_array().unwrap().iter().map(|p| (p["name"].as_str().unwrap(), p["role"].as_str().unwrap())).collect();
    assert_eq!(names, vec![("Parent", "owner"), ("Jiwoo", "parent")]);

    // Only the owner manages children and parents.
    for (method, path, body) in [
        ("POST", "/v1/invites".to_string(), json!({})),
        ("POST", "/v1/members".to_string(), json!({ "name": "Junho" })),
        ("PATCH", format!("/v1/members/{minji}"), json!({ "name": "Minji Kim" })),
    ] {
        let r = app.http.request(method.parse().unwrap(), app.url(&path)).bearer_auth(&jiwoo).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let r = app.http.delete(app.url(&format!("/v1/parents/{}", kim.user_id))).bearer_auth(&jiwoo).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The owner renames a child, replaces aliases, sets and clears a birth date.
    let path = format!("/v1/members/{minji}");
    let r = app.http.patch(app.url(&path)).bearer_auth(&kim.token).json(&json!({ "name": "Min-ji", "aliases": ["민지", "Minnie"], "birth_date": "2018-03-14" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let m: Value = r.json().await.unwrap();
    assert_eq!((m["name"].as_str(), m["birth_date"].as_str()), (Some("Min-ji"), Some("2018-03-14")));
    assert_eq!(m["aliases"], json!(["민지", "Minnie"]));
    let m: Value = app.http.patch(app.url(&path)).bearer_auth(&kim.token).json(&json!({ "birth_date": null })).send().await.unwrap().json().await.unwrap();
    assert_eq!((m["name"].as_str(), &m["birth_date"]), (Some("Min-ji"), &Value::Null), "only what was sent changes");
    let (_, said) = app.post(&jiwoo, "/v1/chat", json!({ "message": "Minnie sang in the bath" })).await;
    assert_eq!(said["entry"]["member_ids"], json!([minji]), "the new alias attributes entries: {said}");

    // A third parent joins from Telegram with the code.
    let (_, invite) = app.post(&kim.token, "/v1/invites", json!({})).await;
    fake.push(500, "message", tg::text(333, 500, &format!("/start {}", invite["code"].as_str().unwrap())));
    let sent = fake.wait_sent(333, 1).await;
    assert!(sent[0]["text"].as_str().unwrap().contains("Welcome to the family"), "{sent:?}");
    fake.push(501, "message", tg::text(333, 501, "Minji fed the ducks today"));
    fake.wait_sent(333, 2).await;
    let (_, list) = app.get(&kim.token, "/v1/entries").await;
    assert_eq!(list["entries"].as_array().unwrap().len(), 4, "the Telegram parent writes into the same journal");
    let (_, parents) = app.get(&kim.token, "/v1/parents").await;
    assert_eq!(parents["parents"].as_array().unwrap().len(), 3);

    // Removing a parent locks them out at once; what they wrote stays theirs.
    let r = app.http.delete(app.url(&format!("/v1/parents/{jiwoo_id}"))).bearer_auth(&kim.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.http.get(app.url("/v1/entries")).bearer_auth(&jiwoo).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (_, list) = app.get(&kim.token, "/v1/entries").await;
    assert!(list["entries"].as_array().unwrap().iter().any(|e| e["author_id"] == jiwoo_id.as_str()));
    let r = app.http.delete(app.url(&format!("/v1/parents/{}", kim.user_id))).bearer_auth(&kim.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "the owner cannot remove themselves");

    // Another family's owner cannot touch this family's parents or children.
    let lee = app.family("Lee", &[]).await;
    let r = app.http.delete(app.url(&format!("/v1/parents/{jiwoo_id}"))).bearer_auth(&lee.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app.http.patch(app.url(&path)).bearer_auth(&lee.token).json(&json!({ "name": "Stolen" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn two_records_of_one_child_merge_without_losing_attribution(app: &TestApp) {
    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Min", &[]), ("Junho", &[])]).await;
    let (minji, min, junho) = (kim.member("Minji").id, kim.member("Min").id, kim.member("Junho").id);
    let (_, e) = app.post(&kim.token, "/v1/entries", json!({ "text": "Min and Junho rode bikes", "member_ids": [min, junho] })).await;
    let e = e["entry_id"].as_str().unwrap().to_string();
    app.wait_ready(&kim, &e).await;
    let (_, capsule) = app.post(&kim.token, "/v1/capsules", json!({ "member_id": min, "open_at": "2036-03-14", "message": "for Min" })).await;
    assert_eq!(capsule["status"], "sealed");

    let r = app.http.post(app.url(&format!("/v1/members/{min}/merge"))).bearer_auth(&kim.token).json(&json!({ "into": minji })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let kept: Value = r.json().await.unwrap();
    assert_eq!(kept["aliases"], json!(["민지", "Min"]), "the other record's name becomes an alias");
    let (_, entry) = app.get(&kim.token, &format!("/v1/entries/{e}")).await;
    let mut members: Vec<String> = entry["member_ids"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect();
    members.sort();
    let mut expected = vec![minji.to_string(), junho.to_string()];
    expected.sort();
    assert_eq!(members, expected, "{entry}");
    assert!(entry["insights"]["member_ids"].as_array().unwrap().iter().any(|m| m == &json!(minji)), "{entry}");
    let (_, found) = app.get(&kim.token, &format!("/v1/entries?member={minji}")).await;
    assert_eq!(found["entries"].as_array().unwrap().len(), 1);
    let answer = app.chat(&kim, "/ask when did Minji ride bikes?").await;
    assert_eq!(answer["sources"][0]["entry_id"], e.as_str(), "retrieval filtered by the kept record finds it: {answer}");
    let (_, capsules) = app.get(&kim.token, "/v1/capsules").await;
    assert_eq!(capsules["capsules"][0]["member_id"], json!(minji));
    let (_, children) = app.get(&kim.token, "/v1/members").await;
    assert_eq!(children["members"].as_array().unwrap().len(), 2);
    let r = app.http.post(app.url(&format!("/v1/members/{minji}/merge"))).bearer_auth(&kim.token).json(&json!({ "into": minji })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn two_records_of_one_child_merge_on_sqlite() {
    two_records_of_one_child_merge_without_losing_attribution(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn two_records_of_one_child_merge_on_postgres() {
    let Some(db) = services::postgres_database().await else { return };
    two_records_of_one_child_merge_without_losing_attribution(&TestApp::spawn_with(&[("DATABASE_URL", db.as_str())]).await).await;
}

#[tokio::test]
async fn two_parents_share_one_journal_on_sqlite() {
    let fake = FakeTelegram::start().await;
    let app = TestApp::spawn_with(&[("TELEGRAM_BOT_TOKEN", TOKEN), ("TELEGRAM_API_URL", fake.base.as_str()), ("TELEGRAM_POLL_TIMEOUT_SECS", "1")]).await;
    two_parents_share_one_journal(&app, &fake).await;
}

#[tokio::test]
async fn two_parents_share_one_journal_on_postgres() {
    let Some(db) = services::postgres_database().await else { return };
    let fake = FakeTelegram::start().await;
    let app = TestApp::spawn_with(&[("DATABASE_URL", db.as_str()), ("TELEGRAM_BOT_TOKEN", TOKEN), ("TELEGRAM_API_URL", fake.base.as_str()), ("TELEGRAM_POLL_TIMEOUT_SECS", "1")]).await;
    two_parents_share_one_journal(&app, &fake).await;
}
