//! Nothing a parent or client sends stops Dadly: inputs that once panicked a
//! handler or a job worker, or that one backend refused with a 500, get the
//! same clear answer on SQLite and on Postgres, and the server keeps serving.

mod common;

use axum::routing::get;
use common::{Family, TestApp};
use dadly_testkit::services;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The hostile requests, each with the status it must get (never a 5xx).
async fn hostile_requests_get_clear_answers(app: &TestApp, kim: &Family) {
    let minji = kim.member("Minji").id;
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or("").to_string();
    let chat = |body: Value| app.http.post(app.url("/v1/chat")).bearer_auth(&kim.token).json(&body);
    let create = |body: Value| app.http.post(app.url("/v1/entries")).bearer_auth(&kim.token).json(&body);
    let list = |query: &str| app.http.get(app.url(&format!("/v1/entries?{query}"))).bearer_auth(&kim.token);
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode)> = vec![
        ("NUL in a chat message", chat(json!({"message": "Minji\u{0}laughed"})), invalid),
        ("NUL in a chat id", chat(json!({"message": "Minji laughed", "chat_id": "a\u{0}b"})), invalid),
        ("NUL in an entry's text", create(json!({"text": "a\u{0}b"})), invalid),
        ("NUL in a child's name", app.http.post(app.url("/v1/members")).bearer_auth(&kim.token).json(&json!({"name": "Ha\u{0}ni"})), invalid),
        ("NUL in an alias", app.http.post(app.url("/v1/members")).bearer_auth(&kim.token).json(&json!({"name": "Hani", "aliases": ["h\u{0}"]})), invalid),
        ("NUL in a topic filter", list("topic=a%00b"), invalid),
        ("NUL in an emotion filter", list("emotion=%00"), invalid),
        ("NUL in a path", app.http.get(app.url("/v1/entries/%00")).bearer_auth(&kim.token), invalid),
        ("zero-width-only message", chat(json!({"message": "\u{200B}\u{FEFF}\u{200B}"})), invalid),
        ("zero-width-only entry", create(json!({"text": "\u{FEFF} \u{200B}"})), invalid),
        ("occurred_at before 4713 BC", create(json!({"text": "old", "occurred_at": "-5000-01-01T00:00:00Z"})), invalid),
        ("occurred_at in year 0", create(json!({"text": "old", "occurred_at": "0000-06-01T00:00:00Z"})), invalid),
        ("occurred_at past 9999", create(json!({"text": "far", "occurred_at": "+10000-01-01T00:00:00Z"})), invalid),
        ("sent_at at chrono's start, with yesterday", chat(json!({"message": "yesterday Minji ran", "sent_at": "-262143-01-01T00:00:00+00:00"})), invalid),
        ("sent_at at chrono's end, with tomorrow", chat(json!({"message": "tomorrow Minji runs", "sent_at": "+262142-12-31T23:59:59+00:00"})), invalid),
        ("sent_at on an entry, year 0", create(json!({"text": "yesterday", "sent_at": "0000-01-01T00:00:00+00:00"})), invalid),
        ("birth_date before 4713 BC", app.http.post(app.url("/v1/members")).bearer_auth(&kim.token).json(&json!({"name": "Old", "birth_date": "-5000-01-01"})), invalid),
        ("from before 4713 BC", list("from=-5000-01-01"), invalid),
        ("to after 9999", list("to=%2B10000-01-01"), invalid),
        ("a cursor before 4713 BC", list(&format!("cursor=-210000000000000_{minji}")), invalid),
    ];
    for (what, request, status) in cases {
        let response = request.send().await.unwrap_or_else(|e| panic!("{what}: no response: {e}"));
        assert_eq!(response.status(), status, "{what}");
        let body: Value = response.json().await.unwrap_or_else(|e| panic!("{what}: body is not JSON: {e}"));
        assert_eq!(code(&body), "invalid", "{what}: {body}");
    }
    let (_, entries) = app.get(&kim.token, "/v1/entries").await;
    assert_eq!(entries["entries"], json!([]), "nothing hostile was stored");
    let (_, members) = app.get(&kim.token, "/v1/members").await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
}

/// Texts that used to panic the date resolver or the offline enrichment are
/// recorded, enriched and indexed like any other.
async fn odd_texts_are_recorded_and_enriched(app: &TestApp, kim: &Family) {
    for text in [
        "Minji remembered something from 999999999 days ago",
        "Minji 99999999999999999999 weeks ago",
        "민지가 999999999주 전에 웃었다",
        "민지。오늘은 정말 즐거웠어",
        "민지！최고",
        "🦖。🦕",
        "민지 열이 났다。🤒、",
    ] {
        let (status, v) = app.post(&kim.token, "/v1/chat", json!({ "message": format!("/record {text}") })).await;
        assert_eq!(status, StatusCode::OK, "{text}: {v}");
        assert_eq!(v["kind"], "recorded", "{text}: {v}");
        let id = v["entry_id"].as_str().unwrap().to_string();
        let ready = app.wait_ready(kim, &id).await;
        assert!(!ready["insights"]["summary"].as_str().unwrap().is_empty(), "{text}: {ready}");
    }
    for question in [
        "what happened in the last 999999999 days?",
        "최근 99999999999999일 동안 민지는?",
        "what did Minji do 999999999 weeks ago?",
        // Words searched (the lexical index) over a period past year 1.
        "did Minji laugh at the dinosaurs in the last 999999999 days?",
        // Counts (read by topic from the store) over odd and extreme periods.
        "how many times was Minji sick in the last 999999999 days?",
        "민지가 99999999999년에 몇 번 아팠어?",
        "How many times was Minji sick in 9999?",
        "0001년에 민지가 몇 번 아팠어。、🤒?",
        // Months with their year in words, including ones no calendar has.
        "작년 99월에 민지는 뭐 했어?",
        "작년 2월 30일에 민지는?",
        "/ask 재작년 13월 99999999999999999999일",
        "What did Minji do last May。🦖?",
        // Counts by a feeling, with odd punctuation.
        "올해 민지 몇 번 떼썼어。、🤒?",
        "How many times was Minji mad in the last 999999999 days?",
    ] {
        let (status, v) = app.post(&kim.token, "/v1/chat", json!({ "message": question })).await;
        assert_eq!(status, StatusCode::OK, "{question}: {v}");
        assert_eq!(v["kind"], "answered", "{question}: {v}");
    }
    // A count with emoji and CJK punctuation around it still counts the fever recorded above.
    let (status, v) = app.post(&kim.token, "/v1/chat", json!({ "message": "How many times was Minji sick this year 🤒。、?" })).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["reply"].as_str().unwrap().contains("in your journal:"), "{v}");
    let (_, status) = app.get(&kim.token, "/v1/status").await;
    assert_eq!(status["jobs"]["failed"], 0, "{status}");
}

#[tokio::test]
async fn hostile_input_on_sqlite() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    hostile_requests_get_clear_answers(&app, &kim).await;
    odd_texts_are_recorded_and_enriched(&app, &kim).await;
}

/// The same with Qdrant (the gRPC stand-in) as the vector index, whose
/// sparse vectors then answer the lexical side.
#[tokio::test]
async fn hostile_input_with_qdrant() {
    let qdrant = dadly_testkit::qdrant::QdrantStandIn::start(None).await;
    let app = TestApp::spawn_with(&[("QDRANT_URL", qdrant.url.as_str())]).await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    hostile_requests_get_clear_answers(&app, &kim).await;
    odd_texts_are_recorded_and_enriched(&app, &kim).await;
    assert!(qdrant.calls().iter().any(|c| c.method == "query"), "the lexical side went to Qdrant");
}

#[tokio::test]
async fn hostile_input_on_postgres() {
    let Some(db) = services::postgres_database().await else { return };
    let app = TestApp::spawn_with(&[("DATABASE_URL", db.as_str())]).await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    hostile_requests_get_clear_answers(&app, &kim).await;
    odd_texts_are_recorded_and_enriched(&app, &kim).await;
}

#[tokio::test]
async fn a_panicking_handler_answers_500_json_and_the_server_keeps_serving() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    // A channel route (as the Telegram webhook is) that panics, behind the API's layers.
    async fn boom() -> &'static str {
        panic!("a handler bug")
    }
    let routes = axum::Router::new().route("/boom", get(boom));
    let router = dadly_api::router_with(app.app_state.clone(), routes);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    for _ in 0..3 {
        let r = app.http.get(format!("{base}/boom")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(r.headers().contains_key("x-request-id"), "the panic guard sits inside the request-id layer");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"error": {"code": "internal", "message": "something went wrong on our side"}}));
    }
    let r = app.http.get(format!("{base}/v1/members")).bearer_auth(&kim.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the server still serves");
    let metrics = app.http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"route="/boom",status="500""#), "the panic is counted: {metrics}");
}

#[tokio::test]
async fn a_leaked_token_cannot_run_up_the_model_bill() {
    let app = TestApp::spawn_with(&[("DADLY_RATE_LIMIT_PER_MINUTE", "5")]).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let lee = app.family("Lee", &[("Sora", &[])]).await;
    for i in 0..5 {
        let (status, v) = app.post(&kim.token, "/v1/chat", json!({ "message": format!("/record Minji drew picture {i}") })).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let r = app.http.post(app.url("/v1/chat")).bearer_auth(&kim.token).json(&json!({ "message": "What did Minji draw?" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&wait), "about one refill of a 5-a-minute bucket: {wait}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Per parent: another family is not held back, and reading is not limited.
    let (status, _) = app.post(&lee.token, "/v1/chat", json!({ "message": "Sora sang" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.get(&kim.token, "/v1/entries").await.0, StatusCode::OK);
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"dadly_rate_limited_total{source="web"} 1"#), "{metrics}");
}
