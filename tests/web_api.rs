//! What the browser needs from the API, over real HTTP: streamed chat as
//! Server-Sent Events (offline in one piece, a real model word by word, a
//! client that leaves stops the model), entries with a photo or a voice
//! recording as multipart forms, CORS for a family's own site, widget tokens
//! that can only chat, one-time sign-in links, and the app's files.

mod common;

use std::time::Duration;

use common::fake_openai::FakeOpenAi;
use common::{Family, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The events of an SSE body: `(event, data)`.
fn events(body: &str) -> Vec<(String, Value)> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|block| {
            let mut name = "message".to_string();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = n.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            (!data.is_empty()).then(|| (name, serde_json::from_str(&data).unwrap()))
        })
        .collect()
}

async fn stream(app: &TestApp, token: &str, message: &str) -> (StatusCode, String, Vec<(String, Value)>) {
    let r = app.http.post(app.url("/v1/chat/stream")).bearer_auth(token).json(&json!({ "message": message, "chat_id": "s" })).send().await.unwrap();
    let status = r.status();
    let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = r.text().await.unwrap();
    if content_type.starts_with("text/event-stream") {
        (status, content_type, events(&body))
    } else {
        (status, content_type, vec![("body".into(), serde_json::from_str(&body).unwrap_or(Value::Null))])
    }
}

fn tokens(events: &[(String, Value)]) -> Vec<String> {
    events.iter().filter(|(n, _)| n == "token").map(|(_, d)| d["text"].as_str().unwrap().to_string()).collect()
}

fn done(events: &[(String, Value)]) -> Value {
    let last = events.last().expect("events");
    assert_eq!(last.0, "done", "the stream ends with `done`: {events:?}");
    last.1.clone()
}

#[tokio::test]
async fn streamed_chat_records_first_and_answers_with_sources_offline() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    let (status, content_type, ev) = stream(&app, &kim.token, "Minji lost her first tooth today").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let recorded = done(&ev);
    assert_eq!(recorded["kind"], "recorded", "{ev:?}");
    let (s, _) = app.get(&kim.token, &format!("/v1/entries/{}", recorded["entry_id"].as_str().unwrap())).await;
    assert_eq!(s, StatusCode::OK, "the entry is stored");
    app.settle(&kim).await;

    let (_, _, ev) = stream(&app, &kim.token, "When did Minji lose her first tooth?").await;
    let answer = done(&ev);
    assert_eq!(answer["kind"], "answered");
    assert_eq!(tokens(&ev), vec![answer["reply"].as_str().unwrap().to_string()], "offline: the text in one event");
    assert_eq!(answer["sources"][0]["entry_id"], recorded["entry_id"]);

    // Bad input is a plain 4xx with the usual JSON body, not a stream.
    for (token, body, code) in [
        (kim.token.as_str(), json!({ "message": "\u{200B}" }), StatusCode::UNPROCESSABLE_ENTITY),
        (kim.token.as_str(), json!({ "message": "hi", "chat_id": "" }), StatusCode::UNPROCESSABLE_ENTITY),
        ("nope", json!({ "message": "hi" }), StatusCode::UNAUTHORIZED),
    ] {
        let r = app.http.post(app.url("/v1/chat/stream")).bearer_auth(token).json(&body).send().await.unwrap();
        assert_eq!(r.status(), code, "{body}");
        assert!(r.json::<Value>().await.unwrap()["error"]["message"].is_string());
    }
}

#[tokio::test]
async fn a_real_model_streams_word_by_word_with_usage_and_stops_when_the_client_leaves() {
    let openai = FakeOpenAi::start().await;
    let env = openai.env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&pairs).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let id = app.entry(&kim, "Minji rode her bike without training wheels", "2026-11-20T10:00:00Z").await;
    app.wait_ready(&kim, &id).await;

    let (_, _, ev) = stream(&app, &kim.token, "/ask When did Minji ride without training wheels?").await;
    let answer = done(&ev);
    let pieces = tokens(&ev);
    assert!(pieces.len() > 3, "word by word: {pieces:?}");
    assert_eq!(pieces.concat(), answer["reply"].as_str().unwrap(), "the pieces make the answer");
    assert_eq!(answer["sources"][0]["entry_id"], id);
    assert!(answer["sources"][0]["cited"] == true);
    let streamed = openai.chat_requests(None).into_iter().filter(|r| r["stream"] == true).collect::<Vec<_>>();
    assert_eq!(streamed.len(), 1);
    assert_eq!(streamed[0]["stream_options"]["include_usage"], true, "usage is asked for");
    // The streamed call's tokens are counted like any other.
    let (_, usage) = app.get(&kim.token, "/v1/usage").await;
    let answers: i64 = usage["models"].as_array().unwrap().iter().filter(|m| m["capability"] == "chat").map(|m| m["output_tokens"].as_i64().unwrap()).sum();
    assert!(answers > 0, "{usage}");

    // A client that goes away mid-answer stops the model's stream.
    openai.set_stream_delay(Duration::from_millis(150));
    let mut r = app.http.post(app.url("/v1/chat/stream")).bearer_auth(&kim.token).json(&json!({ "message": "/ask When did Minji ride without training wheels?" })).send().await.unwrap();
    let first = r.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: token"), "{first:?}");
    drop(r);
    for _ in 0..100 {
        if openai.streams().1 == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(openai.streams(), (1, 1), "the first answer ran to the end, the second was cut off when its client left");
}

fn png(marker: &str) -> Vec<u8> {
    [b"\x89PNG\r\n\x1a\n".as_slice(), marker.as_bytes()].concat()
}

async fn upload(app: &TestApp, token: &str, form: reqwest::multipart::Form) -> (StatusCode, Value) {
    let r = app.http.post(app.url("/v1/entries")).bearer_auth(token).multipart(form).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn part(bytes: Vec<u8>, name: &str) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()).mime_str("application/octet-stream").unwrap()
}

async fn media_bytes(app: &TestApp, family: &Family, entry_id: &str) -> (Value, Vec<u8>) {
    let (_, view) = app.get(&family.token, &format!("/v1/entries/{entry_id}")).await;
    let url = view["media"][0]["url"].as_str().unwrap_or_else(|| panic!("a media link: {view}")).to_string();
    let path = url.split_once("/media/").map(|(_, p)| format!("/media/{p}")).unwrap();
    let bytes = app.http.get(app.url(&path)).send().await.unwrap().bytes().await.unwrap().to_vec();
    (view, bytes)
}

#[tokio::test]
async fn photos_and_voice_recordings_upload_as_forms_and_stay_in_their_family() {
    let openai = FakeOpenAi::start().await;
    openai.set_transcript("Junho said his first full sentence");
    let env = openai.env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&pairs).await;
    let kim = app.family("Kim", &[("Minji", &[]), ("Junho", &[])]).await;
    let lee = app.family("Lee", &[]).await;

    // A photo with a caption: stored at once with its media; the bytes come back the same.
    let form = reqwest::multipart::Form::new().text("text", "Minji at the beach").part("photo", part(png("beach-pixels"), "beach.png"));
    let (status, created) = upload(&app, &kim.token, form).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let photo_id = created["entry_id"].as_str().unwrap().to_string();
    assert_eq!(created["entry"]["member_ids"], json!([kim.member("Minji").id]));
    let (view, bytes) = media_bytes(&app, &kim, &photo_id).await;
    assert_eq!(bytes, png("beach-pixels"));
    assert_eq!(view["media"][0]["content_type"], "image/png");
    app.wait_ready(&kim, &photo_id).await;

    // A WebM recording (what MediaRecorder makes) with no text becomes a transcribed entry.
    let webm = [b"\x1A\x45\xDF\xA3\x9f\x42\x86\x81\x01".as_slice(), b"opus-frames"].concat();
    let (status, created) = upload(&app, &kim.token, reqwest::multipart::Form::new().part("audio", part(webm.clone(), "voice.webm"))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["entry"]["status"], "transcribing");
    let voice_id = created["entry_id"].as_str().unwrap().to_string();
    let ready = app.wait_ready(&kim, &voice_id).await;
    assert_eq!(ready["raw_text"], "Junho said his first full sentence");
    assert_eq!(ready["member_ids"], json!([kim.member("Junho").id]));
    let sent = openai.requests("/v1/audio/transcriptions");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["filename"], "voice.webm", "{sent:?}");
    assert_eq!(media_bytes(&app, &kim, &voice_id).await.1, webm);

    // Another family cannot read either entry or use their media links.
    for id in [&photo_id, &voice_id] {
        let (status, _) = app.get(&lee.token, &format!("/v1/entries/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (_, view) = app.get(&kim.token, &format!("/v1/entries/{photo_id}")).await;
    let link = view["media"][0]["url"].as_str().unwrap();
    let path = link.split_once("/media/").unwrap().1;
    let (family_part, rest) = path.split_once('/').unwrap();
    let forged = format!("/media/{}/{rest}", lee.id);
    assert_ne!(family_part, lee.id.to_string());
    assert_eq!(app.http.get(app.url(&forged)).send().await.unwrap().status(), StatusCode::FORBIDDEN, "a link signed for one family does not open another's");

    // Refused: what is not a photo or recording (by its bytes), too big, empty, a stranger's child.
    let html = reqwest::multipart::Form::new().part("photo", reqwest::multipart::Part::bytes(b"<svg onload=alert(1)>".to_vec()).file_name("x.png").mime_str("image/png").unwrap());
    let cases = vec![
        (html, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (reqwest::multipart::Form::new().part("photo", part([png("big"), vec![0; 21 << 20]].concat(), "big.png")), StatusCode::PAYLOAD_TOO_LARGE),
        (reqwest::multipart::Form::new().text("text", " "), StatusCode::UNPROCESSABLE_ENTITY),
        (reqwest::multipart::Form::new().text("member_ids", kim.member("Minji").id.to_string()).part("photo", part(png("x"), "x.png")), StatusCode::UNPROCESSABLE_ENTITY),
        (reqwest::multipart::Form::new().text("occurred_at", "yesterday").part("photo", part(png("x"), "x.png")), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (i, (form, code)) in cases.into_iter().enumerate() {
        let (status, body) = upload(&app, &lee.token, form).await;
        assert_eq!(status, code, "case {i}: {body}");
        assert!(body["error"]["message"].is_string(), "case {i}: {body}");
    }
    let (_, list) = app.get(&lee.token, "/v1/entries").await;
    assert_eq!(list["entries"], json!([]), "nothing was stored from a refused upload");
}

#[tokio::test]
async fn cors_lets_only_the_configured_sites_call_the_api() {
    let app = TestApp::spawn_with(&[("DADLY_ALLOWED_ORIGINS", "https://kim-family.example, https://blog.example")]).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/v1/chat/stream"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    let ok = preflight("https://kim-family.example").await.unwrap();
    assert_eq!(ok.headers().get("access-control-allow-origin").unwrap(), "https://kim-family.example");
    assert!(ok.headers().get("access-control-allow-headers").unwrap().to_str().unwrap().contains("authorization"));
    assert!(ok.headers().get("access-control-allow-credentials").is_none(), "bearer tokens, never cookies");
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // Without the setting, no other site may call it.
    let closed = TestApp::spawn().await;
    let r = closed.http.get(closed.url("/v1/status")).header("origin", "https://kim-family.example").send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn widget_tokens_only_chat_and_sign_in_links_work_once() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let (status, minted) = app.post(&kim.token, "/v1/widget-tokens", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let widget = minted["token"].as_str().unwrap().to_string();
    let expires: chrono::DateTime<chrono::Utc> = minted["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expires <= chrono::Utc::now() + chrono::Duration::minutes(61), "short-lived");
    let (status, reply) = app.post(&widget, "/v1/chat", json!({ "message": "Minji painted a rainbow" })).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let entry = reply["entry_id"].as_str().unwrap().to_string();
    assert_eq!(app.get(&widget, &format!("/v1/entries/{entry}")).await.0, StatusCode::OK, "a citation opens its entry");
    for (method, path) in [("GET", "/v1/entries"), ("GET", "/v1/members"), ("GET", "/v1/export"), ("POST", "/v1/widget-tokens"), ("POST", "/v1/invites"), ("DELETE", "/v1/family")] {
        let r = app.http.request(method.parse().unwrap(), app.url(path)).bearer_auth(&widget).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
    let r = app.http.delete(app.url(&format!("/v1/entries/{entry}"))).bearer_auth(&widget).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a widget cannot delete");

    // A sign-in link: exchanged once for a session; never a bearer token itself.
    let link = dadly_api::sign_in_link(&app.app_state.auth, &app.base, kim.user_id);
    let code = link.split_once("#signin=").unwrap().1.to_string();
    assert_eq!(app.get(&code, "/v1/members").await.0, StatusCode::UNAUTHORIZED);
    let (status, session) = app.post("", "/v1/sign-in", json!({ "code": code })).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["user_id"], kim.user_id.to_string());
    assert_eq!(app.get(session["token"].as_str().unwrap(), "/v1/members").await.0, StatusCode::OK);
    let (status, again) = app.post("", "/v1/sign-in", json!({ "code": code })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "once: {again}");
    let (status, _) = app.post("", "/v1/sign-in", json!({ "code": kim.token })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an ordinary token is not a sign-in link");
}

#[tokio::test]
async fn the_app_and_the_widget_are_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    let html = r.text().await.unwrap();
    assert!(html.contains("/app.js") && html.contains("/widget.js"));
    for (path, kind) in [("/app.js", "text/javascript"), ("/widget.js", "text/javascript"), ("/widget.css", "text/css"), ("/app.css", "text/css"), ("/icon.svg", "image/svg+xml")] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        assert!(!r.text().await.unwrap().is_empty());
    }
    let widget = app.http.get(app.url("/widget.js")).send().await.unwrap();
    assert_eq!(widget.headers()["access-control-allow-origin"], "*", "any site may load the widget script");
}

#[tokio::test]
async fn odd_form_fields_get_clear_answers_never_a_5xx() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    let photo = || part(png("odd"), "odd.png");
    let cases: Vec<(reqwest::multipart::Form, StatusCode, &str)> = vec![
        (reqwest::multipart::Form::new().text("text", "a\u{0}b").part("photo", photo()), StatusCode::UNPROCESSABLE_ENTITY, "NUL"),
        (reqwest::multipart::Form::new().text("text", "\u{200B}\u{FEFF}").part("photo", photo()), StatusCode::CREATED, "invisible-only caption: a photo entry"),
        (reqwest::multipart::Form::new().text("text", "민지 바닷가。🦒").part("photo", photo()), StatusCode::CREATED, "Hangul, CJK punctuation, emoji"),
        (reqwest::multipart::Form::new().text("member_ids", "99999999999999999999").part("photo", photo()), StatusCode::UNPROCESSABLE_ENTITY, "a huge number as an id"),
        (reqwest::multipart::Form::new().text("occurred_at", "9999-12-31T23:59:59+00:00").part("photo", photo()), StatusCode::CREATED, "the calendar's last second"),
        (reqwest::multipart::Form::new().text("occurred_at", "+10000-01-01T00:00:00Z").part("photo", photo()), StatusCode::UNPROCESSABLE_ENTITY, "past the calendar"),
        (reqwest::multipart::Form::new().text("sent_at", "0000-01-01T00:00:00+14:00").part("photo", photo()), StatusCode::UNPROCESSABLE_ENTITY, "before year 1"),
        (reqwest::multipart::Form::new().text("text", "가".repeat(10_001)).part("photo", photo()), StatusCode::UNPROCESSABLE_ENTITY, "too long"),
    ];
    for (form, expected, what) in cases {
        let (status, body) = upload(&app, &kim.token, form).await;
        assert_eq!(status, expected, "{what}: {body}");
    }
    let (_, list) = app.get(&kim.token, "/v1/entries?limit=100").await;
    let texts: Vec<&str> = list["entries"].as_array().unwrap().iter().map(|e| e["raw_text"].as_str().unwrap()).collect();
    assert!(texts.contains(&"민지 바닷가。🦒") && texts.contains(&""), "{texts:?}");
    let minji = list["entries"].as_array().unwrap().iter().find(|e| e["raw_text"] == "민지 바닷가。🦒").unwrap();
    assert_eq!(minji["member_ids"], json!([kim.member("Minji").id]), "named in Korean");
    // The stream and sign-in take the same odd input without a 5xx.
    for body in [json!({ "message": "민지。🦒 언제 바다에 갔지?" }), json!({ "message": "\u{200B}" }), json!({ "message": "x", "sent_at": "9999-12-31T23:59:59+14:00" })] {
        let r = app.http.post(app.url("/v1/chat/stream")).bearer_auth(&kim.token).json(&body).send().await.unwrap();
        assert!(r.status().is_success() || r.status().is_client_error(), "{body}: {}", r.status());
    }
    for code in ["", "\u{0}", &"a".repeat(4000), "민지。🦒"] {
        let (status, _) = app.post("", "/v1/sign-in", json!({ "code": code })).await;
        assert!(status == StatusCode::UNAUTHORIZED || status == StatusCode::UNPROCESSABLE_ENTITY, "{code:?}: {status}");
    }
}
