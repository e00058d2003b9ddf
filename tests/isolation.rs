//! One family never reads, finds or receives another family's data through
//! the API: every route that takes an id answers another family's token with
//! a plain 404 whose body names nothing of the other family, and no listing,
//! answer or export carries the other family's text, ids or media links —
//! whatever a lower layer might let slip, the bodies are checked themselves.

mod common;

use common::{Family, TestApp};
use dadly_agent::domain::PendingMedia;
use dadly_testkit::services;
use reqwest::StatusCode;
use serde_json::{Value, json};

const MARKER: &str = "zebra-quokka-7731";

/// Kim's entry with a stored photo; returns (entry id, blob key).
async fn kims_entry_with_a_photo(app: &TestApp, kim: &Family) -> (String, String) {
    let id = app.entry(kim, &format!("Minji fed the {MARKER} at the zoo"), "2026-10-01T10:00:00+09:00").await;
    app.wait_ready(kim, &id).await;
    let entry_id: uuid::Uuid = id.parse().unwrap();
    let store = app.app_state.agent.store();
    let pending = PendingMedia { kind: "photo".into(), source_ref: format!("test:{MARKER}"), content_type: "image/jpeg".into() };
    store.add_pending_media(kim.id, entry_id, &pending, None).await.unwrap();
    let blobs = app.app_state.agent.backends().blobs.clone();
    let stored = blobs.put(kim.id, format!("jpeg bytes {MARKER}").into_bytes(), "image/jpeg", "jpg").await.unwrap();
    let media = store.entry_media(kim.id, entry_id).await.unwrap();
    store.media_fetched(kim.id, media[0].id, &stored).await.unwrap();
    (id, stored.key)
}

/// The body must not carry anything of Kim's (an id the caller sent itself
/// may be echoed back in an error: `echoed`).
fn assert_clean_but(what: &str, body: &str, kim: &Family, entry_id: &str, blob_key: &str, echoed: Option<&str>) {
    for leak in [MARKER, entry_id, blob_key, &kim.id.to_string(), &kim.member("Minji").id.to_string()] {
        assert!(Some(leak) == echoed || !body.contains(leak), "{what} leaks `{leak}`: {body}");
    }
}

fn assert_clean(what: &str, body: &str, kim: &Family, entry_id: &str, blob_key: &str) {
    assert_clean_but(what, body, kim, entry_id, blob_key, None);
}

async fn other_families_get_nothing(app: &TestApp) {
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    let lee = app.family("Lee", &[("Sora", &[])]).await;
    let (kim_entry, blob_key) = kims_entry_with_a_photo(app, &kim).await;
    let lee_entry = app.entry(&lee, "Sora fed the ducks", "2026-10-01T10:00:00+09:00").await;
    app.wait_ready(&lee, &lee_entry).await;

    // Kim sees the photo link; it names Kim's object.
    let (_, mine) = app.get(&kim.token, &format!("/v1/entries/{kim_entry}")).await;
    assert!(mine["media"][0]["url"].as_str().unwrap().contains(&blob_key), "{mine}");

    // Every route that takes an id, with Lee's token and Kim's ids.
    let minji = kim.member("Minji").id;
    let path = format!("/v1/entries/{kim_entry}");
    let by_id = [
        ("GET entry", app.http.get(app.url(&path))),
        ("PATCH entry", app.http.patch(app.url(&path)).json(&json!({ "text": "hijacked" }))),
        ("PATCH entry's children", app.http.patch(app.url(&path)).json(&json!({ "member_ids": [] }))),
        ("DELETE entry", app.http.delete(app.url(&path))),
    ];
    for (what, request) in by_id {
        let r = request.bearer_auth(&lee.token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{what}");
        let body = r.text().await.unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v, json!({ "error": { "code": "not_found", "message": "not found" } }), "{what}");
        assert_clean(what, &body, &kim, &kim_entry, &blob_key);
    }
    let with_kims_child = [
        ("list by Kim's child", app.http.get(app.url(&format!("/v1/entries?member={minji}")))),
        ("record about Kim's child", app.http.post(app.url("/v1/entries")).json(&json!({ "text": "borrowed", "member_ids": [minji] }))),
        ("edit own entry onto Kim's child", app.http.patch(app.url(&format!("/v1/entries/{lee_entry}"))).json(&json!({ "member_ids": [minji] }))),
    ];
    for (what, request) in with_kims_child {
        let r = request.bearer_auth(&lee.token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{what}");
        let body = r.text().await.unwrap();
        assert_clean_but(what, &body, &kim, &kim_entry, &blob_key, Some(&minji.to_string()));
    }

    // Listings, answers, status, usage and the export carry only Lee's own.
    for path in ["/v1/entries?limit=100", "/v1/members", "/v1/status", "/v1/usage", "/v1/export?format=json"] {
        let r = app.http.get(app.url(path)).bearer_auth(&lee.token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let body = r.text().await.unwrap();
        assert_clean(path, &body, &kim, &kim_entry, &blob_key);
    }
    for question in [format!("Who fed the {MARKER}?"), "What happened at the zoo?".to_string(), "민지 뭐 했어?".to_string()] {
        let r = app.http.post(app.url("/v1/chat")).bearer_auth(&lee.token).json(&json!({ "message": question })).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body = r.text().await.unwrap();
        assert_clean(&question, &body, &kim, &kim_entry, &blob_key);
    }

    // Kim's data is untouched by all of that.
    let (status, still) = app.get(&kim.token, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(still["raw_text"].as_str().unwrap().contains(MARKER));
    assert_eq!(still["member_ids"], json!([minji]));
}

#[tokio::test]
async fn other_families_get_nothing_on_the_embedded_setup() {
    let app = TestApp::spawn().await;
    other_families_get_nothing(&app).await;
}

#[tokio::test]
async fn other_families_get_nothing_on_postgres() {
    let Some(db) = services::postgres_database().await else { return };
    let app = TestApp::spawn_with(&[("DATABASE_URL", db.as_str())]).await;
    other_families_get_nothing(&app).await;
}
