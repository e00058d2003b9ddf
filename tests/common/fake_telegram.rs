//! A local Bot API server for tests, speaking Telegram's real JSON:
//! `getMe`, `getUpdates` (long polling), `setWebhook`, `deleteWebhook`,
//! `setMyCommands`, `sendMessage`, `answerCallbackQuery`, `getFile` and file
//! download at `/file/bot<token>/<path>`. Tests queue updates and read what
//! the bot sent; `sendMessage` can be made to answer 429 with `retry_after`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const TOKEN: &str = "123456:TEST-token";
pub const BOT_ID: i64 = 999_000;

#[derive(Default)]
struct Inner {
    updates: Vec<Value>,
    /// Updates handed out once more whatever the offset says, as Telegram does
    /// for a bot that handled them but crashed before confirming the offset.
    redeliveries: Vec<Value>,
    calls: Vec<(String, Value)>,
    files: HashMap<String, (String, Vec<u8>)>,
    send_failures: VecDeque<u32>,
    next_message_id: i64,
}

#[derive(Clone)]
pub struct FakeTelegram {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

fn ok(result: Value) -> Response {
    axum::Json(json!({ "ok": true, "result": result })).into_response()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn user(id: i64, lang: &str) -> Value {
    json!({ "id": id, "is_bot": false, "first_name": format!("Parent{id}"), "language_code": lang })
}

fn chat(id: i64) -> Value {
    json!({ "id": id, "type": "private", "first_name": format!("Parent{id}") })
}

fn bot_user() -> Value {
    json!({ "id": BOT_ID, "is_bot": true, "first_name": "Dadly", "username": "DadlyBot", "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false })
}

/// A message from parent `from` in their private chat.
pub fn message(from: i64, message_id: i64, lang: &str, body: Value) -> Value {
    let mut m = json!({ "message_id": message_id, "date": now(), "chat": chat(from), "from": user(from, lang) });
    for (k, v) in body.as_object().cloned().unwrap_or_default() {
        m[k] = v;
    }
    m
}

pub fn text(from: i64, message_id: i64, text: &str) -> Value {
    message(from, message_id, "en", json!({ "text": text }))
}

pub fn photo(from: i64, message_id: i64, file_id: &str, caption: Option<&str>, group: Option<&str>) -> Value {
    let mut body = json!({ "photo": [
        { "file_id": format!("{file_id}-small"), "file_unique_id": format!("{file_id}-s"), "width": 90, "height": 60, "file_size": 1000 },
        { "file_id": file_id, "file_unique_id": format!("{file_id}-u"), "width": 1280, "height": 960, "file_size": 120000 }
    ]});
    if let Some(c) = caption {
        body["caption"] = json!(c);
    }
    if let Some(g) = group {
        body["media_group_id"] = json!(g);
    }
    message(from, message_id, "en", body)
}

pub fn voice(from: i64, message_id: i64, file_id: &str, size: u64) -> Value {
    message(from, message_id, "en", json!({ "voice": { "file_id": file_id, "file_unique_id": format!("{file_id}-u"), "duration": 2, "mime_type": "audio/ogg", "file_size": size } }))
}

pub fn sticker(from: i64, message_id: i64) -> Value {
    message(from, message_id, "en", json!({ "sticker": { "file_id": "st", "file_unique_id": "stu", "type": "regular", "width": 512, "height": 512, "is_animated": false, "is_video": false } }))
}

impl FakeTelegram {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner { next_message_id: 5000, ..Default::default() }));
        let app = Router::new()
            .route("/{bot}/{method}", post(method))
            .route("/file/{bot}/{*path}", get(file))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base: format!("http://{addr}"), inner }
    }

    /// Queues an update (`kind` is `message`, `edited_message`, `callback_query`).
    pub fn push(&self, update_id: i64, kind: &str, payload: Value) {
        let mut u = json!({ "update_id": update_id });
        u[kind] = payload;
        self.inner.lock().unwrap().updates.push(u);
    }

    /// Delivers an update again with its old id, even below the confirmed
    /// offset: what a bot sees after a crash between handling an update and
    /// confirming it (its next `getUpdates` starts from the old offset).
    pub fn redeliver(&self, update_id: i64, kind: &str, payload: Value) {
        let mut u = json!({ "update_id": update_id });
        u[kind] = payload;
        self.inner.lock().unwrap().redeliveries.push(u);
    }

    pub fn add_file(&self, file_id: &str, bytes: Vec<u8>) {
        self.inner.lock().unwrap().files.insert(file_id.into(), (format!("files/{file_id}.bin"), bytes));
    }

    pub fn fail_next_sends(&self, retry_after: &[u32]) {
        self.inner.lock().unwrap().send_failures.extend(retry_after);
    }

    /// Every call of `method` so far (request bodies).
    pub fn calls(&self, method: &str) -> Vec<Value> {
        let method = method.to_lowercase();
        self.inner.lock().unwrap().calls.iter().filter(|(m, _)| *m == method).map(|(_, b)| b.clone()).collect()
    }

    /// Messages sent to `chat_id` so far.
    pub fn sent_to(&self, chat_id: i64) -> Vec<Value> {
        self.calls("sendMessage").into_iter().filter(|b| b["chat_id"] == chat_id).collect()
    }

    /// Waits until `n` messages have been sent to the chat; returns them all.
    pub async fn wait_sent(&self, chat_id: i64, n: usize) -> Vec<Value> {
        for _ in 0..400 {
            let sent = self.sent_to(chat_id);
            if sent.len() >= n {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {n} messages to chat {chat_id}, got {:?}", self.sent_to(chat_id));
    }

    /// Waits until the bot has fetched every queued update (its offset moved past them).
    pub async fn wait_drained(&self) {
        for _ in 0..400 {
            {
                let state = self.inner.lock().unwrap();
                if state.updates.is_empty() && state.redeliveries.is_empty() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the bot never confirmed the queued updates");
    }
}

/// A request's parameters: JSON, or multipart form fields (as `setWebhook` is sent).
async fn params(request: axum::extract::Request) -> Value {
    use axum::extract::FromRequest;
    let is_multipart = request.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("multipart/form-data"));
    if is_multipart {
        let mut fields = serde_json::Map::new();
        if let Ok(mut form) = axum::extract::Multipart::from_request(request, &()).await {
            while let Ok(Some(field)) = form.next_field().await {
                let name = field.name().unwrap_or("").to_string();
                let text = field.text().await.unwrap_or_default();
                fields.insert(name, serde_json::from_str(&text).unwrap_or(Value::String(text)));
            }
        }
        return Value::Object(fields);
    }
    let bytes = axum::body::to_bytes(request.into_body(), usize::MAX).await.unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(json!({}))
}

async fn method(State(inner): State<Arc<Mutex<Inner>>>, Path((bot, method)): Path<(String, String)>, request: axum::extract::Request) -> Response {
    if bot != format!("bot{TOKEN}") {
        return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({ "ok": false, "error_code": 401, "description": "Unauthorized" }))).into_response();
    }
    let body = params(request).await;
    // Telegram's method names are case-insensitive (teloxide sends `SendMessage`).
    let method = method.to_lowercase();
    if method != "getupdates" {
        inner.lock().unwrap().calls.push((method.clone(), body.clone()));
    }
    match method.as_str() {
        "getme" => ok(bot_user()),
        "getupdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            let wait = body["timeout"].as_u64().unwrap_or(0).min(1);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
            loop {
                {
                    let mut state = inner.lock().unwrap();
                    // Like Telegram: an offset confirms every update before it.
                    state.updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                    let redelivered: Vec<Value> = state.redeliveries.drain(..).collect();
                    if !state.updates.is_empty() || !redelivered.is_empty() {
                        let mut all = redelivered;
                        all.extend(state.updates.iter().cloned());
                        return ok(Value::Array(all));
                    }
                }
                if tokio::time::Instant::now() >= deadline {
                    return ok(json!([]));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        "setwebhook" | "deletewebhook" | "setmycommands" | "answercallbackquery" => ok(json!(true)),
        "sendmessage" => {
            let mut state = inner.lock().unwrap();
            if let Some(after) = state.send_failures.pop_front() {
                // Not recorded as sent: the bot must try again.
                state.calls.pop();
                return (
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(json!({ "ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {after}"), "parameters": { "retry_after": after } })),
                )
                    .into_response();
            }
            state.next_message_id += 1;
            let id = state.next_message_id;
            if let Some(last) = state.calls.last_mut() {
                last.1["message_id"] = json!(id);
            }
            let chat_id = body["chat_id"].as_i64().unwrap_or(0);
            ok(json!({ "message_id": id, "date": now(), "chat": chat(chat_id), "from": bot_user(), "text": body["text"] }))
        }
        "getfile" => {
            let id = body["file_id"].as_str().unwrap_or("").to_string();
            match inner.lock().unwrap().files.get(&id) {
                Some((path, bytes)) => ok(json!({ "file_id": id, "file_unique_id": format!("{id}-u"), "file_size": bytes.len(), "file_path": path })),
                None => (axum::http::StatusCode::BAD_REQUEST, axum::Json(json!({ "ok": false, "error_code": 400, "description": "Bad Request: invalid file_id" }))).into_response(),
            }
        }
        other => (axum::http::StatusCode::NOT_FOUND, axum::Json(json!({ "ok": false, "error_code": 404, "description": format!("Not Found: method {other}") }))).into_response(),
    }
}

async fn file(State(inner): State<Arc<Mutex<Inner>>>, Path((bot, path)): Path<(String, String)>) -> Response {
    if bot != format!("bot{TOKEN}") {
        return axum::http::StatusCode::UNAUTHORIZED.into_response();
    }
    let state = inner.lock().unwrap();
    match state.files.values().find(|(p, _)| *p == path) {
        Some((_, bytes)) => bytes.clone().into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}
