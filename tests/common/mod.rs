//! Test harness: the real app on a random port with a fresh data dir, a real
//! HTTP client, and helpers to make families and wait for background jobs.
#![allow(dead_code)]

pub mod fake_langsmith;
pub mod fake_openai;
pub mod fake_telegram;

use std::collections::HashMap;
use std::time::Duration;

use dadly::app::App;
use dadly::settings::Settings;
use dadly_agent::domain::{FamilyId, Member, UserId};
use dadly_agent::store::NewMember;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub app_state: dadly_api::AppState,
    stop: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub struct Family {
    pub id: FamilyId,
    pub user_id: UserId,
    pub token: String,
    pub members: Vec<Member>,
}

impl Family {
    pub fn member(&self, name: &str) -> &Member {
        self.members.iter().find(|m| m.name == name).expect("member exists")
    }
}

/// Settings for a test: fresh data dir, port 0, fast job retries.
pub fn test_settings(dir: &std::path::Path, extra: &[(&str, &str)]) -> Settings {
    let data_dir = dir.display().to_string();
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DADLY_DATA_DIR".to_string(), data_dir),
        ("DADLY_BIND".to_string(), "127.0.0.1:0".to_string()),
        ("DADLY_JOB_BACKOFF_MS".to_string(), "50".to_string()),
        ("DADLY_JOB_POLL_MS".to_string(), "50".to_string()),
        ("JWT_SECRET".to_string(), "test-secret-test-secret".to_string()),
    ]);
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Settings::from_lookup(&move |k| vars.get(k).cloned()).expect("test settings are valid")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::spawn_in(dir, extra).await
    }

    /// Starts the app on an existing data dir (to test restarts).
    pub async fn spawn_in(dir: tempfile::TempDir, extra: &[(&str, &str)]) -> Self {
        let settings = test_settings(dir.path(), extra);
        let app = App::build(settings).await.expect("app builds");
        let app_state = app.state.clone();
        let (stop, stopped) = watch::channel(false);
        let running = app.serve(stopped).await.expect("app serves");
        Self {
            base: format!("http://{}", running.addr),
            http: reqwest::Client::new(),
            dir,
            app_state,
            stop,
            server: Some(running.server),
        }
    }

    /// Stops the server and workers gracefully; returns the data dir.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A family with one parent and the given children (`(name, aliases)`).
    pub async fn family(&self, name: &str, kids: &[(&str, &[&str])]) -> Family {
        let store = self.app_state.agent.store();
        let family = store.create_family(name).await.unwrap();
        let user = store.create_user(family.id, "Parent").await.unwrap();
        let mut members = Vec::new();
        for (kid, aliases) in kids {
            let new = NewMember { name: kid.to_string(), aliases: aliases.iter().map(|a| a.to_string()).collect(), birth_date: None };
            members.push(store.create_member(family.id, new).await.unwrap());
        }
        let token = self.app_state.auth.mint(user.id, chrono::Duration::hours(1));
        Family { id: family.id, user_id: user.id, token, members }
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self.http.post(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let r = self.http.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn chat(&self, family: &Family, message: &str) -> Value {
        self.chat_at(family, message, None).await
    }

    /// Sends a chat message as if sent at `sent_at` (RFC 3339 with offset).
    pub async fn chat_at(&self, family: &Family, message: &str, sent_at: Option<&str>) -> Value {
        let mut body = json!({ "message": message, "chat_id": "test-chat" });
        if let Some(t) = sent_at {
            body["sent_at"] = json!(t);
        }
        let (status, v) = self.post(&family.token, "/v1/chat", body).await;
        assert_eq!(status, StatusCode::OK, "chat `{message}` failed: {v}");
        v
    }

    /// Records an entry through the entries API and returns its id.
    pub async fn entry(&self, family: &Family, text: &str, occurred_at: &str) -> String {
        let (status, v) = self.post(&family.token, "/v1/entries", json!({ "text": text, "occurred_at": occurred_at })).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["entry_id"].as_str().unwrap().to_string()
    }

    /// Waits until the family has no queued or running jobs.
    pub async fn settle(&self, family: &Family) {
        for _ in 0..600 {
            let (_, status) = self.get(&family.token, "/v1/status").await;
            if status["jobs"]["queued"] == 0 && status["jobs"]["running"] == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("jobs did not settle");
    }

    /// Waits until the entry's current version is enriched and indexed.
    pub async fn wait_ready(&self, family: &Family, entry_id: &str) -> Value {
        for _ in 0..800 {
            let (status, v) = self.get(&family.token, &format!("/v1/entries/{entry_id}")).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            if !v["insights"].is_null() && v["indexed"] == true {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("entry {entry_id} never became ready");
    }
}

/// Whether a `pg_dump --data-only` of the test database behind `url` (taken
/// as the superuser: the runtime role could not see every row) holds `marker`.
pub fn pg_dump_contains(url: &str, marker: &str) -> bool {
    let admin = std::env::var("DADLY_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = url.rsplit('/').next().unwrap();
    let dump_url = format!("{}/{db}", admin.rsplit_once('/').unwrap().0);
    let out = std::process::Command::new("pg_dump").args(["--data-only", &dump_url]).output().expect("pg_dump runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).contains(marker)
}

/// The ids of an answer's sources, in order.
pub fn source_ids(answer: &Value) -> Vec<String> {
    answer["sources"].as_array().map(|s| s.iter().map(|x| x["entry_id"].as_str().unwrap().to_string()).collect()).unwrap_or_default()
}
