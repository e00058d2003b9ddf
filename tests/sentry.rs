//! Errors reach Sentry when `SENTRY_DSN` is set: the real binary, a local
//! server that speaks Sentry's envelope endpoint, and a backend failure. The
//! event says what failed, with its request, and carries nothing a parent wrote.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_error_is_reported_to_sentry_without_the_parents_words() {
    // A Sentry ingest endpoint: POST /api/{project}/envelope/.
    let envelopes: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = Router::new()
        .route(
            "/api/{project}/envelope/",
            post(|State(seen): State<Arc<Mutex<Vec<String>>>>, Path(project): Path<String>, body: axum::body::Bytes| async move {
                assert_eq!(project, "42");
                seen.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
                axum::Json(serde_json::json!({}))
            }),
        )
        .with_state(envelopes.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sentry_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_dadly");
    let data = dir.path().display().to_string();
    let created = Command::new(bin).args(["family", "create", "Kim", "--parent", "Jiwoo", "--child", "Minji", "--json"]).env("DADLY_DATA_DIR", &data).output().unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let token = serde_json::from_slice::<serde_json::Value>(&created.stdout).unwrap()["token"].as_str().unwrap().to_string();
    let port = free_port();
    let mut server = Command::new(bin)
        .arg("serve")
        .env("DADLY_DATA_DIR", &data)
        .env("DADLY_BIND", format!("127.0.0.1:{port}"))
        .env("SENTRY_DSN", format!("http://public-key@127.0.0.1:{sentry_port}/42"))
        .env("SENTRY_ENVIRONMENT", "test")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The media volume is gone: storing a photo fails with a 503, and the error is reported.
    let media = dir.path().join("media");
    let _ = std::fs::remove_dir_all(&media);
    std::fs::write(&media, b"not a folder").unwrap();
    let form = reqwest::multipart::Form::new()
        .text("text", "secret-beach-marker at the seaside")
        .part("photo", reqwest::multipart::Part::bytes(b"\x89PNG\r\n\x1a\nxx".to_vec()).file_name("b.png"));
    let r = http.post(format!("{base}/v1/entries")).bearer_auth(&token).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);

    for _ in 0..100 {
        if envelopes.lock().unwrap().iter().any(|e| e.contains("\"type\":\"event\"")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = server.kill();
    let _ = server.wait();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reported: Vec<String> = envelopes.lock().unwrap().iter().filter(|e| e.contains("\"type\":\"event\"")).cloned().collect();
    assert_eq!(reported.len(), 1, "one event for one failure: {reported:?}");
    let event = &reported[0];
    assert!(event.contains("\"message\":\"backend unavailable\""), "{event}");
    // (An event's level is `error` unless it says otherwise.)
    assert!(!event.contains("\"level\":"), "{event}");
    assert!(event.contains("\"environment\":\"test\""), "{event}");
    assert!(event.contains("/v1/entries"), "the request it happened in: {event}");
    assert!(!event.contains("secret-beach-marker"), "nothing a parent wrote: {event}");
    assert!(!event.contains(&token), "no credentials: {event}");
    let _ = server.kill();
    let _ = server.wait();
}
