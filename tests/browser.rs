//! The web app and the chat widget in a real browser: starts the real server
//! (with a fake OpenAI-compatible model server for streaming answers and
//! transcription) and runs `tests/browser/app.spec.mjs` in headless Chromium
//! through Playwright: sign in, record, see the timeline, a streamed answer
//! with a citation that opens the entry, a photo thumbnail, a voice note from
//! the (fake) microphone transcribed, a second family seeing none of it, the
//! widget on another site at phone width, no console errors, axe-core clean.
//!
//! Needs `node` and Debian's `chromium` (what `.ci/run` installs); the npm
//! packages it installs itself (`npm ci` in `tests/browser`). Without them it
//! is skipped, except under `CI=true`.
//! `DADLY_SCREENSHOTS=docs/screenshots` keeps screenshots of the main screens.

mod common;

use std::path::Path;

use common::TestApp;
use common::fake_openai::FakeOpenAi;
use dadly_testkit::services;
use serde_json::json;

const TRANSCRIPT: &str = "Junho sang the whole alphabet song";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_and_the_widget_work_in_a_real_browser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let node = std::process::Command::new("node").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if node && !dir.join("node_modules/playwright-core").exists() {
        // The README's test command sets up what it needs: the pinned npm packages.
        let installed = std::process::Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--silent"]).current_dir(&dir).status().map(|s| s.success()).unwrap_or(false);
        assert!(installed || !services::in_ci(), "npm ci in tests/browser failed");
    }
    if !node || !Path::new(&chromium).exists() || !dir.join("node_modules/playwright-core").exists() {
        services::missing("node, chromium and tests/browser/node_modules", "apt-get install -y chromium; npm ci --prefix tests/browser");
        return;
    }
    let openai = FakeOpenAi::start().await;
    openai.set_transcript(TRANSCRIPT);
    // Slow enough that the browser sees the answer grow.
    openai.set_stream_delay(std::time::Duration::from_millis(40));
    // Media links name the public address, so the server listens where they point.
    let port = free_port();
    let host_port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let public = format!("http://{bind}");
    let origin = format!("http://127.0.0.1:{host_port}");
    let mut env = openai.env();
    env.extend([("DADLY_BIND", bind.clone()), ("DADLY_PUBLIC_URL", public.clone()), ("DADLY_ALLOWED_ORIGINS", origin)]);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&pairs).await;
    assert_eq!(app.base, public);
    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Junho", &["준호"])]).await;
    let lee = app.family("Lee", &[("Sora", &[])]).await;
    let (_, widget) = app.post(&kim.token, "/v1/widget-tokens", json!({})).await;
    let link = dadly_api::sign_in_link(&app.app_state.auth, &public, kim.user_id);

    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("app.spec.mjs")
        .current_dir(&dir)
        .env("BASE_URL", &public)
        .env("SIGNIN_LINK", &link)
        .env("TOKEN_B", &lee.token)
        .env("WIDGET_TOKEN", widget["token"].as_str().unwrap())
        .env("HOST_PORT", host_port.to_string())
        .env("TRANSCRIPT", TRANSCRIPT)
        .env("CHROMIUM", &chromium);
    if let Ok(shots) = std::env::var("DADLY_SCREENSHOTS") {
        cmd.env("SCREENSHOT_DIR", Path::new(env!("CARGO_MANIFEST_DIR")).join(shots));
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(240), cmd.output()).await.expect("the browser tests finish").expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser tests failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("browser tests passed"), "{stdout}");
}
