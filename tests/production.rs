//! The end-to-end API flows once more on the production stack: Postgres with
//! row-level security, Qdrant (the gRPC stand-in), SeaweedFS for media, and
//! the fake OpenAI-compatible server — chosen by environment variables alone.

mod common;

use common::fake_openai::FakeOpenAi;
use common::{TestApp, source_ids};
use dadly_testkit::qdrant::QdrantStandIn;
use dadly_testkit::services;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn record_ask_edit_delete_and_isolation_on_the_production_stack() {
    let Some(db) = services::postgres_database().await else { return };
    let Some(s3) = services::s3() else { return };
    let qdrant = QdrantStandIn::start(Some("qdrant-key")).await;
    let fake = FakeOpenAi::start().await;
    let mut env: Vec<(&str, String)> = fake.env();
    env.extend([
        ("DATABASE_URL", db),
        ("QDRANT_URL", qdrant.url.clone()),
        ("QDRANT_API_KEY", "qdrant-key".into()),
        ("S3_ENDPOINT", s3.endpoint),
        ("S3_BUCKET", s3.bucket),
        ("S3_PATH_STYLE", "true".into()),
        ("S3_REGION", "us-east-1".into()),
        ("R2_ACCESS_KEY", s3.access_key),
        ("R2_SECRET_KEY", s3.secret_key),
    ]);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&pairs).await;

    let (_, status) = {
        let kim = app.family("Probe", &[]).await;
        app.get(&kim.token, "/v1/status").await
    };
    assert_eq!((status["store"].as_str(), status["vector_index"].as_str(), status["blobs"].as_str()), (Some("postgres"), Some("qdrant"), Some("s3")));
    // Readiness checks each of them for real (Postgres ping, Qdrant health check, S3 bucket probe).
    let ready: serde_json::Value = app.http.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        ready["backends"],
        serde_json::json!({ "store": { "backend": "postgres", "state": "up" }, "vector_index": { "backend": "qdrant", "state": "up" }, "blob_store": { "backend": "s3", "state": "up" } }),
        "{ready}"
    );

    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Junho", &["준호"])]).await;
    let lee = app.family("Lee", &[("Sora", &[])]).await;
    let tooth = app.chat(&kim, "Minji lost her first tooth today").await["entry_id"].as_str().unwrap().to_string();
    let bike = app.chat(&kim, "준호가 어제 처음 자전거를 탔다").await["entry_id"].as_str().unwrap().to_string();
    let sora = app.chat(&lee, "Sora lost her mittens at the park").await["entry_id"].as_str().unwrap().to_string();
    for (f, id) in [(&kim, &tooth), (&kim, &bike), (&lee, &sora)] {
        app.wait_ready(f, id).await;
    }
    assert_eq!(qdrant.count("entries_v1"), 3, "one point per entry");

    let answer = app.chat(&kim, "When did Minji lose her first tooth?").await;
    assert_eq!(source_ids(&answer), vec![tooth.clone()], "{answer}");
    let across = app.chat(&lee, "Who lost a tooth?").await;
    assert!(!source_ids(&across).contains(&tooth), "{across}");
    assert_eq!(app.get(&lee.token, &format!("/v1/entries/{tooth}")).await.0, StatusCode::NOT_FOUND);

    let r = app.http.patch(app.url(&format!("/v1/entries/{bike}"))).bearer_auth(&kim.token).json(&json!({"text": "준호가 어제 처음 두발자전거를 탔다"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let edited = app.wait_ready(&kim, &bike).await;
    assert_eq!(edited["version"], 2);
    assert_eq!(edited["history"][0]["raw_text"], "준호가 어제 처음 자전거를 탔다");
    assert_eq!(qdrant.count("entries_v1"), 3, "an edit replaces the point");

    let r = app.http.delete(app.url(&format!("/v1/entries/{tooth}"))).bearer_auth(&kim.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.settle(&kim).await;
    assert_eq!(qdrant.count("entries_v1"), 2, "a delete removes the point");
    let gone = app.chat(&kim, "When did Minji lose her first tooth?").await;
    assert!(source_ids(&gone).is_empty(), "{gone}");

    // Media goes to the bucket and comes back through presigned links only.
    let blobs = app.app_state.agent.backends().blobs.clone();
    let stored = blobs.put(kim.id, b"photo bytes".to_vec(), "image/jpeg", "jpg").await.unwrap();
    let url = blobs.signed_url(kim.id, &stored.key, std::time::Duration::from_secs(60)).await.unwrap();
    assert_eq!(app.http.get(&url).send().await.unwrap().bytes().await.unwrap().as_ref(), b"photo bytes");
    assert!(blobs.signed_url(lee.id, &stored.key, std::time::Duration::from_secs(60)).await.is_err());
}
