//! A web client that lost a response retries safely: the same
//! `Idempotency-Key` from the same family gets the first result back and
//! writes nothing twice — on SQLite and on Postgres.

mod common;

use common::{Family, TestApp};
use dadly_testkit::services;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn send(app: &TestApp, family: &Family, path: &str, key: Option<&str>, body: Value) -> (StatusCode, Option<String>, Value) {
    let mut request = app.http.post(app.url(path)).bearer_auth(&family.token).json(&body);
    if let Some(k) = key {
        request = request.header("Idempotency-Key", k);
    }
    let r = request.send().await.unwrap();
    let replayed = r.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap().to_string());
    (r.status(), replayed, r.json().await.unwrap_or(Value::Null))
}

async fn entry_count(app: &TestApp, family: &Family) -> usize {
    app.get(&family.token, "/v1/entries?limit=100").await.1["entries"].as_array().unwrap().len()
}

async fn retries_with_a_key_write_once(app: &TestApp) {
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let lee = app.family("Lee", &[("Junho", &[])]).await;

    // POST /v1/entries: the retry gets the first 201 and its entry id.
    let body = json!({ "text": "Minji planted sunflowers", "occurred_at": "2026-05-01T10:00:00+09:00" });
    let (s1, r1, first) = send(app, &kim, "/v1/entries", Some("entry-1"), body.clone()).await;
    let (s2, r2, again) = send(app, &kim, "/v1/entries", Some("entry-1"), body.clone()).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!((r1.as_deref(), r2.as_deref()), (None, Some("true")));
    assert_eq!(first, again, "the first result, byte for byte");
    assert_eq!(entry_count(app, &kim).await, 1);

    // POST /v1/chat: the retried statement is recorded once; a question is answered once.
    let say = json!({ "message": "Minji lost her first tooth today", "chat_id": "web-1" });
    let (_, _, said) = send(app, &kim, "/v1/chat", Some("chat-1"), say.clone()).await;
    let (_, replayed, said_again) = send(app, &kim, "/v1/chat", Some("chat-1"), say).await;
    assert_eq!((said["kind"].as_str(), replayed.as_deref()), (Some("recorded"), Some("true")));
    assert_eq!(said["entry_id"], said_again["entry_id"]);
    assert_eq!(entry_count(app, &kim).await, 2);

    // The same key for a different request is refused, not silently replayed.
    let (status, _, refused) = send(app, &kim, "/v1/entries", Some("entry-1"), json!({ "text": "something else" })).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid")), "{refused}");
    // …and the same key on the other route is another request.
    let (status, _, _) = send(app, &kim, "/v1/chat", Some("entry-1"), json!({ "message": "Minji sang" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(entry_count(app, &kim).await, 3);

    // Keys belong to a family: Lee's "entry-1" is Lee's own, and never shows Kim's result.
    let (status, replayed, lees) = send(app, &lee, "/v1/entries", Some("entry-1"), body.clone()).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, None));
    assert_ne!(lees["entry_id"], first["entry_id"]);
    assert_eq!(entry_count(app, &lee).await, 1);

    // A request that failed holds nothing: fixing it and retrying with the key works.
    let (status, _, _) = send(app, &lee, "/v1/entries", Some("fix-me"), json!({ "text": "   " })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, _) = send(app, &lee, "/v1/entries", Some("fix-me"), json!({ "text": "Junho hummed" })).await;
    assert_eq!(status, StatusCode::CREATED, "a failed request does not bind its key");
}

async fn concurrent_duplicates_write_once(app: &TestApp) {
    let park = app.family("Park", &[("Hana", &[])]).await;
    let body = json!({ "text": "Hana drew a whale" });
    let sends = (0..8).map(|_| send(app, &park, "/v1/entries", Some("burst"), body.clone()));
    let results = futures_join(sends).await;
    let created: Vec<_> = results.iter().filter(|(s, _, _)| *s == StatusCode::CREATED).collect();
    assert!(!created.is_empty());
    assert!(results.iter().all(|(s, _, _)| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT), "{results:?}");
    assert!(created.iter().all(|(_, _, b)| b["entry_id"] == created[0].2["entry_id"]));
    assert_eq!(entry_count(app, &park).await, 1, "eight racing retries, one entry");
}

async fn futures_join<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.collect();
    let mut out = Vec::new();
    // Poll them together so they really race on the key.
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.expect("ready")));
    out
}

#[tokio::test]
async fn idempotency_keys_on_sqlite() {
    let app = TestApp::spawn().await;
    retries_with_a_key_write_once(&app).await;
    concurrent_duplicates_write_once(&app).await;
}

#[tokio::test]
async fn idempotency_keys_on_postgres() {
    let Some(db) = services::postgres_database().await else { return };
    let app = TestApp::spawn_with(&[("DATABASE_URL", db.as_str())]).await;
    retries_with_a_key_write_once(&app).await;
    concurrent_duplicates_write_once(&app).await;
}
