//! A local stand-in for LangSmith's ingestion API: records every
//! `POST /runs/batch` body and its `x-api-key`, and can answer with failures.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

#[derive(Default)]
struct Inner {
    batches: Mutex<Vec<(Option<String>, Value)>>,
    /// Statuses to answer with before accepting (e.g. 503, 429).
    failures: Mutex<VecDeque<u16>>,
    always_fail: Mutex<Option<u16>>,
}

pub struct FakeLangSmith {
    pub endpoint: String,
    inner: Arc<Inner>,
}

impl FakeLangSmith {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new().route("/runs/batch", post(batch)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { endpoint: format!("http://{addr}"), inner }
    }

    pub fn fail_next(&self, statuses: &[u16]) {
        self.inner.failures.lock().unwrap().extend(statuses);
    }

    pub fn fail_always(&self, status: u16) {
        *self.inner.always_fail.lock().unwrap() = Some(status);
    }

    /// Every batch request received (including refused ones): (x-api-key, body).
    pub fn batches(&self) -> Vec<(Option<String>, Value)> {
        self.inner.batches.lock().unwrap().clone()
    }

    /// Every run accepted (posted in a batch that got 2xx).
    pub fn runs(&self) -> Vec<Value> {
        self.inner
            .batches
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, b)| b["_accepted"] == true)
            .flat_map(|(_, b)| b["post"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Waits until `pred` holds for the accepted runs.
    pub async fn wait_for(&self, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..400 {
            let runs = self.runs();
            if pred(&runs) {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("LangSmith never received the expected runs; got {} runs", self.runs().len());
    }
}

async fn batch(State(inner): State<Arc<Inner>>, headers: HeaderMap, axum::Json(mut body): axum::Json<Value>) -> Response {
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(String::from);
    let status = inner.always_fail.lock().unwrap().or_else(|| inner.failures.lock().unwrap().pop_front());
    body["_accepted"] = Value::Bool(status.is_none());
    inner.batches.lock().unwrap().push((key, body));
    match status {
        Some(429) => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "slow down").into_response(),
        Some(code) => StatusCode::from_u16(code).unwrap().into_response(),
        None => (StatusCode::ACCEPTED, axum::Json(serde_json::json!({}))).into_response(),
    }
}
