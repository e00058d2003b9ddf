//! The `dadly` binary as a user runs it: serve on embedded defaults, create a
//! family and mint tokens from the CLI while the server runs, chat with them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

fn dadly(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dadly"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DADLY_DATA_DIR", dir)
        .env("DADLY_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    cmd
}

#[tokio::test]
async fn cli_and_server_share_the_data_dir_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = dadly(dir.path()).arg("serve").stderr(Stdio::piped()).spawn().unwrap();
    let stderr = server.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (token_tx, token_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("Dadly is listening on ") {
                let _ = tx.send(addr.to_string());
            }
            if let Some(token) = line.trim().strip_prefix("export TOKEN=") {
                let _ = token_tx.send(token.to_string());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(30)).expect("server printed its address");
    // The first start alone is enough to chat: it prints a token for a local family.
    let first_token = token_rx.recv_timeout(Duration::from_secs(5)).expect("a ready-to-use token");
    let first: Value = reqwest::Client::new()
        .post(format!("{base}/v1/chat"))
        .bearer_auth(&first_token)
        .json(&json!({"message": "We went to the park and fed the ducks."}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["kind"], "recorded", "{first}");
    assert!(dir.path().join("dadly.db").exists(), "the SQLite database is created in the data dir");

    let out = dadly(dir.path())
        .args(["family", "create", "Kim", "--parent", "Jiwoo", "--child", "Minji:2018-03-14:민지", "--child", "Junho::준호", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = created["token"].as_str().unwrap();
    assert_eq!(created["members"][0]["aliases"], json!(["민지"]));
    assert_eq!(created["members"][0]["birth_date"], "2018-03-14");

    let http = reqwest::Client::new();
    let reply: Value = http
        .post(format!("{base}/v1/chat"))
        .bearer_auth(token)
        .json(&json!({"message": "민지가 오늘 첫 이가 빠졌다"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["kind"], "recorded", "{reply}");
    assert_eq!(reply["entry"]["member_ids"], json!([created["members"][0]["id"]]));

    let user = created["user_id"].as_str().unwrap();
    let out = dadly(dir.path()).args(["token", "--user", user]).output().unwrap();
    assert!(out.status.success());
    let fresh = String::from_utf8(out.stdout).unwrap();
    let status = http.get(format!("{base}/v1/status")).bearer_auth(fresh.trim()).send().await.unwrap().status();
    assert_eq!(status, reqwest::StatusCode::OK);

    let out = dadly(dir.path()).args(["family", "invite", "--user", user]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let invite = String::from_utf8(out.stdout).unwrap();
    let code = invite.lines().last().unwrap().strip_prefix("/start ").expect("a /start line").to_string();
    assert_eq!(code.len(), 8);
    assert!(code.chars().all(|c| "ABCDEFGHJKLMNPQRSTUVWXYZ23456789".contains(c)), "{code}");

    // The server's traces can be read back as trees while it runs.
    let mut shown = String::new();
    for _ in 0..100 {
        let out = dadly(dir.path()).args(["traces", "--limit", "3"]).output().unwrap();
        shown = String::from_utf8(out.stdout).unwrap();
        if shown.contains("message [chain]") && shown.contains("store_entry [tool]") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(shown.contains("message [chain]") && shown.contains("  store_entry [tool]"), "{shown}");

    // Export and reindex work beside the running server.
    let family = created["family_id"].as_str().unwrap();
    let file = dir.path().join("export.json");
    let out = dadly(dir.path()).args(["export", "--family", family, "--out"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(exported["entries"][0]["entry"]["raw_text"], "민지가 오늘 첫 이가 빠졌다");
    let out = dadly(dir.path()).arg("reindex").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("queued 2 entries"), "{}", String::from_utf8_lossy(&out.stdout));

    let out = dadly(dir.path()).args(["token", "--user", "not-a-user"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a user id"));
    let out = dadly(dir.path()).args(["token", "--user", user, "--days", "400"]).output().unwrap();
    assert!(!out.status.success(), "longer than DADLY_TOKEN_MAX_DAYS");

    // A leaked token is revoked from the CLI: every token issued so far stops
    // working at once (the running server reads the cut-off per request).
    let out = dadly(dir.path()).args(["token", "--revoke", user]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for old in [token, fresh.trim()] {
        let r = http.get(format!("{base}/v1/status")).bearer_auth(old).send().await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
        let body: Value = r.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("revoked"), "{body}");
    }
    std::thread::sleep(Duration::from_millis(1100)); // `iat` has whole seconds
    let out = dadly(dir.path()).args(["token", "--user", user]).output().unwrap();
    let renewed = String::from_utf8(out.stdout).unwrap();
    let status = http.get(format!("{base}/v1/status")).bearer_auth(renewed.trim()).send().await.unwrap().status();
    assert_eq!(status, reqwest::StatusCode::OK, "a token minted after the revocation works");

    let _ = Command::new("kill").arg("-TERM").arg(server.id().to_string()).status();
    let status = server.wait().unwrap();
    assert!(status.success(), "graceful shutdown on SIGTERM: {status}");
}

/// The README's `DADLY_DATABASE_OWNER_URL=postgres://owner@… dadly migrate`
/// migrates that Postgres database, not the local SQLite file the unset
/// `DATABASE_URL` defaults to, and the server then starts on it as the
/// runtime role.
#[tokio::test]
async fn migrate_with_the_owner_url_alone_migrates_postgres() {
    let Some((runtime, owner)) = dadly_testkit::services::postgres_empty_database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dadly(dir.path()).env("DADLY_DATABASE_OWNER_URL", &owner).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "migrations applied to Postgres, as the owner role");
    assert!(!dir.path().join("dadly.db").exists(), "no SQLite database was made");

    let mut server = dadly(dir.path()).env("DATABASE_URL", &runtime).arg("serve").stderr(Stdio::piped()).spawn().unwrap();
    let stderr = server.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let listening = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => match line.strip_prefix("Dadly is listening on ") {
                Some(addr) => break Some(addr.to_string()),
                None => seen.push(line),
            },
            Err(_) => break None,
        }
    };
    let _ = server.kill();
    let _ = server.wait();
    let base = listening.unwrap_or_else(|| panic!("the server started on the migrated database:\n{}", seen.join("\n")));
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
}

#[test]
fn malformed_configuration_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dadly(dir.path()).env("DADLY_BIND", "not-an-address").arg("serve").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DADLY_BIND"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = dadly(dir.path()).env("OPENAI_BASE_URL", "localhost:11434").arg("migrate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("OPENAI_BASE_URL"));
    // The owner URL without DATABASE_URL migrates, but never serves from the local SQLite file.
    let owner = "postgres://owner@127.0.0.1:1/dadly";
    for command in ["serve", "reindex"] {
        let mut child = dadly(dir.path()).env("DADLY_DATABASE_OWNER_URL", owner).arg(command).stderr(Stdio::piped()).spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(2), "`dadly {command}` stops at once");
        assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL is not a Postgres URL"), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(!dir.path().join("dadly.db").exists(), "no SQLite database was made");
}
