//! Daily prompts: one question a day at the parent's local time on Telegram,
//! about a child, skipped on days the parent already wrote; a reply to it is
//! kept as an entry about that child.

mod common;

use std::time::Duration;

use common::fake_telegram::{self as tg, FakeTelegram, TOKEN};
use common::{Family, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const KIM: i64 = 111;
const JIWOO: i64 = 222;

async fn link(app: &TestApp, fake: &FakeTelegram, family: &Family, tg_user: i64, update_id: i64) {
    let (_, code) = app.post(&family.token, "/v1/telegram/link-codes", json!({})).await;
    fake.push(update_id, "message", tg::text(tg_user, update_id, &format!("/start {}", code["code"].as_str().unwrap())));
    fake.wait_sent(tg_user, 1).await;
}

fn prompts_to(fake: &FakeTelegram, chat: i64) -> Vec<Value> {
    fake.sent_to(chat).into_iter().filter(|m| m["text"].as_str().unwrap_or("").contains("Reply to this message")).collect()
}

#[tokio::test]
async fn one_prompt_a_day_on_sqlite() {
    one_prompt_a_day_about_a_child_and_the_reply_is_kept(None).await;
}

#[tokio::test]
async fn one_prompt_a_day_on_postgres() {
    let Some(db) = dadly_testkit::services::postgres_database().await else { return };
    one_prompt_a_day_about_a_child_and_the_reply_is_kept(Some(db)).await;
}

async fn one_prompt_a_day_about_a_child_and_the_reply_is_kept(db: Option<String>) {
    let fake = FakeTelegram::start().await;
    let mut env = vec![
        ("TELEGRAM_BOT_TOKEN", TOKEN.to_string()),
        ("TELEGRAM_API_URL", fake.base.clone()),
        ("TELEGRAM_POLL_TIMEOUT_SECS", "1".into()),
        ("DADLY_PROMPT_POLL_SECS", "1".into()),
    ];
    if let Some(db) = db {
        env.push(("DATABASE_URL", db));
    }
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&pairs).await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    let minji = kim.member("Minji").id;
    link(&app, &fake, &kim, KIM, 1).await;
    // A second parent who already wrote today gets no prompt today.
    let (_, invite) = app.post(&kim.token, "/v1/invites", json!({})).await;
    fake.push(2, "message", tg::text(JIWOO, 2, &format!("/start {}", invite["code"].as_str().unwrap())));
    fake.wait_sent(JIWOO, 1).await;
    fake.push(3, "message", tg::text(JIWOO, 3, "Minji stacked ten blocks today"));
    fake.wait_sent(JIWOO, 2).await;
    fake.push(4, "message", tg::text(JIWOO, 4, "/prompts on 00:00"));
    assert!(fake.wait_sent(JIWOO, 3).await.last().unwrap()["text"].as_str().unwrap().contains("one question a day"));

    // Midnight local (UTC here) has always passed: today's prompt goes out, once.
    let r = app.http.put(app.url("/v1/prompts")).bearer_auth(&kim.token).json(&json!({ "time": "00:00", "utc_offset": "+00:00" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.http.put(app.url("/v1/prompts")).bearer_auth(&kim.token).json(&json!({ "time": "25:61" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut prompt = None;
    for _ in 0..200 {
        if let Some(p) = prompts_to(&fake, KIM).into_iter().next() {
            prompt = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let prompt = prompt.expect("a prompt was sent");
    assert!(prompt["text"].as_str().unwrap().contains("Minji"), "about the child: {prompt}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(prompts_to(&fake, KIM).len(), 1, "one a day");
    assert!(prompts_to(&fake, JIWOO).is_empty(), "not on a day the parent already wrote");

    // The reply is kept as an entry about the prompt's child.
    let mut reply = tg::text(KIM, 5, "She laughed at the dog chasing its tail");
    reply["reply_to_message"] = json!({ "message_id": prompt["message_id"], "date": 0, "chat": { "id": KIM, "type": "private", "first_name": "x" }, "text": prompt["text"] });
    let before = fake.sent_to(KIM).len();
    fake.push(5, "message", reply);
    let sent = fake.wait_sent(KIM, before + 1).await;
    assert!(sent.last().unwrap()["text"].as_str().unwrap().contains("Kept in the journal"), "{sent:?}");
    let (_, list) = app.get(&kim.token, "/v1/entries").await;
    let kept = list["entries"].as_array().unwrap().iter().find(|e| e["raw_text"] == "She laughed at the dog chasing its tail").cloned().expect("the reply is an entry");
    assert_eq!(kept["member_ids"], json!([minji]), "about the child the prompt asked about");

    fake.push(6, "message", tg::text(KIM, 6, "/prompts off"));
    fake.wait_sent(KIM, before + 2).await;
    let (_, setting) = app.get(&kim.token, "/v1/prompts").await;
    assert_eq!(setting["time"], Value::Null);
}
