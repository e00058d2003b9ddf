//! The Telegram bot end to end: the real app with its real teloxide client,
//! talking to a local Bot API server that speaks Telegram's JSON, and to the
//! fake OpenAI-compatible server for speech-to-text.

mod common;

use common::fake_openai::FakeOpenAi;
use common::fake_telegram::{self as tg, FakeTelegram, TOKEN};
use common::{Family, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const KIM: i64 = 111;
const LEE: i64 = 222;

async fn app_with_bot(fake: &FakeTelegram, extra: &[(&str, String)]) -> TestApp {
    let mut env: Vec<(&str, String)> = vec![
        ("TELEGRAM_BOT_TOKEN", TOKEN.into()),
        ("TELEGRAM_API_URL", fake.base.clone()),
        ("TELEGRAM_POLL_TIMEOUT_SECS", "1".into()),
    ];
    env.extend(extra.iter().cloned());
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::spawn_with(&pairs).await
}

/// Links Telegram user `tg_user` to the family's parent through a real code.
async fn link(app: &TestApp, fake: &FakeTelegram, family: &Family, tg_user: i64, update_id: i64) {
    let (status, code) = app.post(&family.token, "/v1/telegram/link-codes", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{code}");
    let before = fake.sent_to(tg_user).len();
    fake.push(update_id, "message", tg::text(tg_user, update_id, &format!("/start {}", code["code"].as_str().unwrap())));
    let sent = fake.wait_sent(tg_user, before + 1).await;
    assert!(sent.last().unwrap()["text"].as_str().unwrap().contains("linked"), "{sent:?}");
}

async fn entries(app: &TestApp, family: &Family) -> Vec<Value> {
    app.get(&family.token, "/v1/entries?limit=100").await.1["entries"].as_array().cloned().unwrap_or_default()
}

fn last_text(sent: &[Value]) -> String {
    sent.last().map(|m| m["text"].as_str().unwrap_or("").to_string()).unwrap_or_default()
}

#[tokio::test]
async fn linking_accepts_a_fresh_code_once_and_refuses_expired_and_reused_ones() {
    let fake = FakeTelegram::start().await;
    let app = app_with_bot(&fake, &[]).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;

    // The command menu is registered in English and Korean at start-up.
    let menus = fake.calls("setMyCommands");
    assert_eq!(menus.len(), 2);
    assert!(menus.iter().any(|m| m["language_code"] == "ko"));
    assert!(menus[0]["commands"].as_array().unwrap().iter().any(|c| c["command"] == "recent"));
    assert_eq!(fake.calls("deleteWebhook").len(), 1, "long polling clears any webhook first");

    let (_, code) = app.post(&kim.token, "/v1/telegram/link-codes", json!({})).await;
    let code = code["code"].as_str().unwrap().to_string();
    fake.push(1, "message", tg::text(KIM, 1, &format!("/start {code}")));
    assert!(last_text(&fake.wait_sent(KIM, 1).await).contains("linked"));

    // The same code again, from someone else: refused.
    fake.push(2, "message", tg::text(LEE, 2, &format!("/link {}", code.to_lowercase())));
    assert!(last_text(&fake.wait_sent(LEE, 1).await).contains("didn't work"));

    // An expired code: refused.
    let store = app.app_state.agent.store();
    store.create_link_code(kim.id, kim.user_id, &dadly_agent::blob::sha256_hex(b"EXPIRED2"), chrono::Utc::now() - chrono::Duration::minutes(1)).await.unwrap();
    fake.push(3, "message", tg::text(LEE, 3, "/start EXPIRED2"));
    assert!(last_text(&fake.wait_sent(LEE, 2).await).contains("didn't work"));
    assert!(app.app_state.agent.telegram_user(LEE).await.unwrap().is_none());

    // An unlinked user is told how to link; nothing is stored, no model is called.
    fake.push(4, "message", tg::text(LEE, 4, "Sora lost a tooth today"));
    let reply = last_text(&fake.wait_sent(LEE, 3).await);
    assert!(reply.contains("isn't linked") && reply.contains("haven't kept"), "{reply}");
    let (_, status) = app.get(&kim.token, "/v1/status").await;
    assert_eq!(status["jobs"]["queued"].as_i64().unwrap() + status["jobs"]["done"].as_i64().unwrap(), 0);

    // /unlink: afterwards the account is a stranger again.
    fake.push(5, "message", tg::text(KIM, 5, "/unlink"));
    assert!(last_text(&fake.wait_sent(KIM, 2).await).contains("no longer linked"));
    fake.push(6, "message", tg::text(KIM, 6, "Minji drew a cat"));
    assert!(last_text(&fake.wait_sent(KIM, 3).await).contains("isn't linked"));
    assert!(entries(&app, &kim).await.is_empty());
}

#[tokio::test]
async fn text_is_recorded_and_answered_with_tappable_dates_and_redeliveries_do_nothing() {
    let fake = FakeTelegram::start().await;
    let app = app_with_bot(&fake, &[]).await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    link(&app, &fake, &kim, KIM, 10).await;

    let note = tg::text(KIM, 11, "Minji lost her first tooth today");
    fake.push(11, "message", note.clone());
    let sent = fake.wait_sent(KIM, 2).await;
    assert!(last_text(&sent).contains("Saved to Minji's journal"), "{sent:?}");
    assert_eq!(sent.last().unwrap()["reply_parameters"]["message_id"], 11);
    fake.wait_drained().await;
    let list = entries(&app, &kim).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["source"], "telegram");
    let id = list[0]["id"].as_str().unwrap().to_string();
    app.wait_ready(&kim, &id).await;

    // Telegram redelivers the same update (after a crash before the offset was
    // confirmed, it comes back with its old id): no second entry, no second
    // reply. The question after it, in the same chat, is handled after it.
    fake.redeliver(11, "message", note);
    fake.push(12, "message", tg::text(KIM, 12, "When did Minji lose her first tooth?"));
    let sent = fake.wait_sent(KIM, 3).await;
    assert_eq!(entries(&app, &kim).await.len(), 1, "the redelivered statement made no second entry");
    let answer = sent.last().unwrap();
    assert!(answer["text"].as_str().unwrap().contains("Minji lost her first tooth today"), "{answer}");
    let button = &answer["reply_markup"]["inline_keyboard"][0][0];
    assert!(button["text"].as_str().unwrap().starts_with("[1] 20"), "a date to tap: {button}");
    assert_eq!(button["callback_data"], format!("e:{id}"));

    // Tapping the date shows the entry.
    let message = json!({ "message_id": 900, "date": 0, "chat": { "id": KIM, "type": "private", "first_name": "x" }, "text": "…" });
    fake.push(13, "callback_query", json!({ "id": "cb1", "from": tg::user(KIM, "en"), "chat_instance": "c", "data": button["callback_data"], "message": message }));
    let sent = fake.wait_sent(KIM, 4).await;
    assert!(last_text(&sent).contains("Minji lost her first tooth today"));
    assert_eq!(fake.calls("answerCallbackQuery").len(), 1);

    // An edit of the original message updates the entry and keeps history.
    let mut edited = tg::text(KIM, 11, "Minji lost her first tooth today at school");
    edited["edit_date"] = json!(chrono::Utc::now().timestamp());
    fake.push(14, "edited_message", edited);
    fake.wait_sent(KIM, 5).await;
    let view = app.get(&kim.token, &format!("/v1/entries/{id}")).await.1;
    assert_eq!(view["raw_text"], "Minji lost her first tooth today at school");
    assert_eq!(view["history"][0]["raw_text"], "Minji lost her first tooth today");
    // The edit redelivered: nothing changes and no second reply is sent.
    let mut again = tg::text(KIM, 11, "Minji lost her first tooth today at school");
    again["edit_date"] = json!(chrono::Utc::now().timestamp());
    fake.push(14, "edited_message", again);
    fake.wait_drained().await;
    assert_eq!(app.get(&kim.token, &format!("/v1/entries/{id}")).await.1["version"], 2);
    assert_eq!(fake.sent_to(KIM).len(), 5);

    // Korean users get Korean; commands work.
    let mut ko = tg::text(KIM, 15, "/kids add Junho 준호");
    ko["from"]["language_code"] = json!("ko");
    fake.push(15, "message", ko);
    assert!(last_text(&fake.wait_sent(KIM, 6).await).contains("Junho"));
    fake.push(16, "message", tg::text(KIM, 16, "/recent"));
    assert!(last_text(&fake.wait_sent(KIM, 7).await).contains("at school"));
    fake.push(17, "message", tg::message(KIM, 17, "ko", json!({ "text": "준호가 어제 처음 자전거를 탔다" })));
    assert!(last_text(&fake.wait_sent(KIM, 8).await).contains("기록"));
    fake.push(18, "message", tg::text(KIM, 18, "/export"));
    let export = last_text(&fake.wait_sent(KIM, 9).await);
    let url = export.lines().last().unwrap().to_string();
    let path = url.split_once("/media/").map(|(_, p)| format!("/media/{p}")).unwrap();
    let zip = app.http.get(app.url(&path)).send().await.unwrap().bytes().await.unwrap();
    let (manifest, _) = dadly_agent::pipeline::archive::read_zip(std::io::Cursor::new(zip.to_vec())).unwrap();
    assert_eq!(manifest.entries.len(), 2, "the export link serves the family's archive");
    // The kept file holds copies of entries: deleting one removes it too.
    let some_entry = manifest.entries[0].id;
    let r = app.http.delete(app.url(&format!("/v1/entries/{some_entry}"))).bearer_auth(&kim.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.http.get(app.url(&path)).send().await.unwrap().status(), StatusCode::NOT_FOUND, "the export file is gone");
    fake.push(19, "message", tg::sticker(KIM, 19));
    assert!(last_text(&fake.wait_sent(KIM, 10).await).contains("can't store"));
}

#[tokio::test]
async fn photos_and_albums_are_stored_as_entries_with_their_media() {
    let fake = FakeTelegram::start().await;
    let app = app_with_bot(&fake, &[]).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    link(&app, &fake, &kim, KIM, 20).await;
    fake.add_file("photo-1", b"\xff\xd8\xff first jpeg".to_vec());
    fake.add_file("photo-2", b"\xff\xd8\xff second jpeg".to_vec());
    fake.add_file("photo-3", b"\xff\xd8\xff third jpeg".to_vec());

    fake.push(21, "message", tg::photo(KIM, 21, "photo-1", Some("Minji at the beach"), None));
    assert!(last_text(&fake.wait_sent(KIM, 2).await).contains("Saved"));
    fake.push(22, "message", tg::photo(KIM, 22, "photo-2", Some("Our trip"), Some("album-7")));
    fake.push(23, "message", tg::photo(KIM, 23, "photo-3", None, Some("album-7")));
    fake.wait_drained().await;
    app.settle(&kim).await;

    let list = entries(&app, &kim).await;
    assert_eq!(list.len(), 2, "an album is one entry: {list:?}");
    let store = app.app_state.agent.store();
    let blobs = app.app_state.agent.backends().blobs.clone();
    let mut media_counts = Vec::new();
    for e in &list {
        let media = store.entry_media(kim.id, e["id"].as_str().unwrap().parse().unwrap()).await.unwrap();
        for m in &media {
            let key = m.blob_key.clone().expect("fetched into the blob store");
            assert!(blobs.get(kim.id, &key).await.unwrap().starts_with(b"\xff\xd8\xff"));
            assert_eq!(m.sha256.len(), 64);
        }
        media_counts.push((e["raw_text"].as_str().unwrap().to_string(), media.len()));
    }
    media_counts.sort();
    assert_eq!(media_counts, vec![("Minji at the beach".to_string(), 1), ("Our trip".to_string(), 2)]);
    assert_eq!(fake.sent_to(KIM).len(), 3, "one reply per album, not per photo");
    let beach = list.iter().find(|e| e["raw_text"] == "Minji at the beach").unwrap();
    assert_eq!(beach["source"], "photo");
    assert_eq!(beach["member_ids"], json!([kim.member("Minji").id]));

    // The entry carries a short-lived link to its photo; another family gets 404 for the entry.
    let (_, view) = app.get(&kim.token, &format!("/v1/entries/{}", beach["id"].as_str().unwrap())).await;
    let link = view["media"][0]["url"].as_str().expect("a signed link").to_string();
    assert_eq!(view["media"][0]["kind"], "photo");
    let path = link.split_once("/media/").map(|(_, p)| format!("/media/{p}")).unwrap();
    assert_eq!(app.http.get(app.url(&path)).send().await.unwrap().status(), StatusCode::OK);

    // The export carries working links to the media.
    let export = app.app_state.agent.export(kim.id).await.unwrap();
    let url = export["entries"].as_array().unwrap().iter().flat_map(|e| e["media"].as_array().cloned().unwrap_or_default()).find_map(|m| m["url"].as_str().map(String::from)).expect("a media link");
    let path = url.split_once("/media/").map(|(_, p)| format!("/media/{p}")).unwrap();
    assert!(app.http.get(app.url(&path)).send().await.unwrap().bytes().await.unwrap().starts_with(b"\xff\xd8\xff"));

    // Deleting the entry deletes its photo too.
    let beach_id = beach["id"].as_str().unwrap().to_string();
    let key = store.entry_media(kim.id, beach_id.parse().unwrap()).await.unwrap()[0].blob_key.clone().unwrap();
    let r = app.http.delete(app.url(&format!("/v1/entries/{beach_id}"))).bearer_auth(&kim.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(matches!(blobs.get(kim.id, &key).await, Err(dadly_agent::blob::BlobError::NotFound)));
}

fn ogg_voice_note(words: &str) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("v.wav");
    let ogg = dir.path().join("v.ogg");
    let made = std::process::Command::new("espeak-ng").arg("-w").arg(&wav).arg(words).status().ok()?.success()
        && std::process::Command::new("opusenc").arg("--quiet").arg(&wav).arg(&ogg).status().ok()?.success();
    if !made {
        return None;
    }
    std::fs::read(ogg).ok()
}

#[tokio::test]
async fn voice_notes_are_kept_at_once_transcribed_and_correctable_by_reply() {
    let Some(audio) = ogg_voice_note("Minji sang a song about rain") else {
        dadly_testkit::services::missing("espeak-ng and opusenc", "cannot make an Ogg/Opus voice note");
        return;
    };
    assert!(audio.starts_with(b"OggS"));
    let openai = FakeOpenAi::start().await;
    openai.set_transcript("Minji sang a song about rain");
    let fake = FakeTelegram::start().await;
    let mut env: Vec<(&str, String)> = openai.env();
    env.push(("DADLY_TRANSCRIPTION_MODEL", "whisper-1".into()));
    let app = app_with_bot(&fake, &env).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    link(&app, &fake, &kim, KIM, 30).await;
    fake.add_file("voice-1", audio.clone());

    let voice = tg::voice(KIM, 31, "voice-1", audio.len() as u64);
    fake.push(31, "message", voice.clone());
    // An acknowledgement, and the transcript as a reply to the voice note (in either order).
    let sent = fake.wait_sent(KIM, 3).await;
    assert!(sent[1..].iter().any(|m| m["text"].as_str().unwrap().contains("transcribing")), "{sent:?}");
    let transcript = sent[1..].iter().find(|m| m["text"].as_str().unwrap().starts_with("📝")).expect("a transcript").clone();
    assert!(transcript["text"].as_str().unwrap().contains("Minji sang a song about rain"), "{transcript}");
    assert_eq!(transcript["reply_parameters"]["message_id"], 31);
    let calls = openai.requests("/v1/audio/transcriptions");
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0]["model"].as_str(), calls[0]["ogg"].as_bool()), (Some("whisper-1"), Some(true)));

    let list = entries(&app, &kim).await;
    assert_eq!(list.len(), 1);
    assert_eq!((list[0]["raw_text"].as_str(), list[0]["source"].as_str(), list[0]["status"].as_str()), (Some("Minji sang a song about rain"), Some("voice"), Some("ready")));
    assert_eq!(list[0]["member_ids"], json!([kim.member("Minji").id]));
    let id = list[0]["id"].as_str().unwrap().to_string();
    let media = app.app_state.agent.store().entry_media(kim.id, id.parse().unwrap()).await.unwrap();
    assert_eq!(media[0].size_bytes as usize, audio.len(), "the audio itself is kept");

    // A redelivered voice note makes no second entry.
    fake.push(31, "message", voice);
    fake.wait_drained().await;
    assert_eq!(entries(&app, &kim).await.len(), 1);

    // Replying to the transcript corrects it.
    let mut fix = tg::text(KIM, 32, "Minji sang a song about the rain and puddles");
    fix["reply_to_message"] = json!({ "message_id": transcript["message_id"], "date": 0, "chat": { "id": KIM, "type": "private", "first_name": "x" }, "from": { "id": tg::BOT_ID, "is_bot": true, "first_name": "Dadly" }, "text": transcript["text"] });
    fake.push(32, "message", fix);
    assert!(last_text(&fake.wait_sent(KIM, 4).await).contains("Updated"));
    let view = app.wait_ready(&kim, &id).await;
    assert_eq!(view["raw_text"], "Minji sang a song about the rain and puddles");
    assert_eq!(entries(&app, &kim).await.len(), 1);
}

#[tokio::test]
async fn without_speech_to_text_a_voice_note_waits_instead_of_being_lost() {
    let Some(audio) = ogg_voice_note("hello") else {
        dadly_testkit::services::missing("espeak-ng and opusenc", "cannot make an Ogg/Opus voice note");
        return;
    };
    let fake = FakeTelegram::start().await;
    let app = app_with_bot(&fake, &[]).await;
    let kim = app.family("Kim", &[]).await;
    link(&app, &fake, &kim, KIM, 40).await;
    fake.add_file("voice-2", audio.clone());
    fake.push(41, "message", tg::voice(KIM, 41, "voice-2", audio.len() as u64));
    let reply = last_text(&fake.wait_sent(KIM, 2).await);
    assert!(reply.contains("isn't set up yet") && reply.contains("nothing is lost"), "{reply}");
    let list = entries(&app, &kim).await;
    assert_eq!(list[0]["status"], "transcribing");
    for _ in 0..200 {
        let media = app.app_state.agent.store().entry_media(kim.id, list[0]["id"].as_str().unwrap().parse().unwrap()).await.unwrap();
        let (_, status) = app.get(&kim.token, "/v1/status").await;
        assert_eq!(status["jobs"]["failed"], 0, "the job waits; it does not fail");
        if media[0].blob_key.is_some() && status["jobs"]["queued"] == 1 && status["jobs"]["running"] == 0 {
            // Stored, and the transcription job is back in the queue for later.
            let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
            assert!(metrics.contains("dadly_jobs_total{kind=\"transcribe\",outcome=\"waiting\"}"), "{metrics}");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the audio was never stored");
}

#[tokio::test]
async fn oversized_files_get_a_polite_reply_and_429s_are_waited_out() {
    let fake = FakeTelegram::start().await;
    let app = app_with_bot(&fake, &[("TELEGRAM_MAX_FILE_MB", "1".into())]).await;
    let kim = app.family("Kim", &[]).await;
    link(&app, &fake, &kim, KIM, 50).await;
    fake.push(51, "message", tg::voice(KIM, 51, "huge", 30 * 1024 * 1024));
    assert!(last_text(&fake.wait_sent(KIM, 2).await).contains("too large"));
    assert!(entries(&app, &kim).await.is_empty());

    fake.fail_next_sends(&[1]);
    fake.push(52, "message", tg::text(KIM, 52, "We planted sunflowers in the garden."));
    assert!(last_text(&fake.wait_sent(KIM, 3).await).contains("Saved"), "the reply arrives after the 429");
    assert_eq!(entries(&app, &kim).await.len(), 1);
}

#[tokio::test]
async fn two_families_in_two_chats_never_see_each_other() {
    let fake = FakeTelegram::start().await;
    let app = app_with_bot(&fake, &[]).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let lee = app.family("Lee", &[("Sora", &[])]).await;
    link(&app, &fake, &kim, KIM, 60).await;
    link(&app, &fake, &lee, LEE, 61).await;
    fake.push(62, "message", tg::text(KIM, 62, "Minji is scared of thunderstorms and hides under the table."));
    fake.wait_sent(KIM, 2).await;
    let kim_entry = entries(&app, &kim).await[0]["id"].as_str().unwrap().to_string();
    app.wait_ready(&kim, &kim_entry).await;

    fake.push(63, "message", tg::text(LEE, 63, "Who is scared of thunderstorms?"));
    let reply = fake.wait_sent(LEE, 2).await.last().unwrap().clone();
    assert!(!reply["text"].as_str().unwrap().contains("table"), "{reply}");
    assert!(reply["reply_markup"].is_null(), "no citations from another family");
    // Lee taps a forged button naming Kim's entry: it is "gone" for Lee.
    fake.push(64, "callback_query", json!({ "id": "cb2", "from": tg::user(LEE, "en"), "chat_instance": "c", "data": format!("e:{kim_entry}") }));
    let reply = last_text(&fake.wait_sent(LEE, 3).await);
    assert!(reply.contains("no longer exists") && !reply.contains("thunderstorms"), "{reply}");
    assert!(entries(&app, &lee).await.is_empty());
}

#[tokio::test]
async fn webhook_mode_checks_the_secret_token_and_handles_updates_before_answering() {
    let fake = FakeTelegram::start().await;
    let app = app_with_bot(&fake, &[("TELEGRAM_WEBHOOK_URL", "https://dadly.example/telegram/hook".into()), ("TELEGRAM_WEBHOOK_SECRET", "s3cret-token".into())]).await;
    let hooks = fake.calls("setWebhook");
    assert_eq!(hooks.len(), 1);
    assert_eq!((hooks[0]["url"].as_str(), hooks[0]["secret_token"].as_str()), (Some("https://dadly.example/telegram/hook"), Some("s3cret-token")));
    let kim = app.family("Kim", &[]).await;
    let (_, code) = app.post(&kim.token, "/v1/telegram/link-codes", json!({})).await;
    let start = json!({ "update_id": 70, "message": tg::text(KIM, 70, &format!("/start {}", code["code"].as_str().unwrap())) });

    let wrong = app.http.post(app.url("/telegram/hook")).header("x-telegram-bot-api-secret-token", "guess").json(&start).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let missing = app.http.post(app.url("/telegram/hook")).json(&start).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(app.app_state.agent.telegram_user(KIM).await.unwrap().is_none(), "a rejected call changes nothing");

    let post = |body: Value| app.http.post(app.url("/telegram/hook")).header("x-telegram-bot-api-secret-token", "s3cret-token").json(&body).send();
    assert_eq!(post(start).await.unwrap().status(), StatusCode::OK);
    assert!(app.app_state.agent.telegram_user(KIM).await.unwrap().is_some());
    let note = json!({ "update_id": 71, "message": tg::text(KIM, 71, "Minji learned to swim today.") });
    assert_eq!(post(note.clone()).await.unwrap().status(), StatusCode::OK);
    assert_eq!(entries(&app, &kim).await.len(), 1, "handled before the 200");
    assert_eq!(post(note).await.unwrap().status(), StatusCode::OK);
    assert_eq!(entries(&app, &kim).await.len(), 1, "a redelivery does nothing");
    assert_eq!(post(json!({"nonsense": true})).await.unwrap().status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn dates_in_telegram_messages_follow_the_configured_utc_offset() {
    let fake = FakeTelegram::start().await;
    let app = app_with_bot(&fake, &[("DADLY_UTC_OFFSET", "+09:00".into())]).await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    link(&app, &fake, &kim, KIM, 80).await;
    // 23:30 UTC on the 26th is 08:30 on the 27th in Seoul: "어제" is the 26th there.
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-26T23:30:00Z").unwrap().timestamp();
    let mut msg = tg::message(KIM, 81, "ko", json!({ "text": "민지가 어제 처음 수영을 했다" }));
    msg["date"] = json!(at);
    fake.push(81, "message", msg);
    fake.wait_sent(KIM, 2).await;
    let list = entries(&app, &kim).await;
    assert_eq!(list[0]["occurred_at"], "2026-11-26T03:00:00Z", "noon on the 26th in +09:00");
}

#[tokio::test]
async fn a_question_that_failed_is_answered_when_telegram_delivers_it_again() {
    let openai = FakeOpenAi::start().await;
    let fake = FakeTelegram::start().await;
    let app = app_with_bot(&fake, &openai.env()).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    link(&app, &fake, &kim, KIM, 90).await;
    fake.push(91, "message", tg::text(KIM, 91, "Minji lost her first tooth today"));
    fake.wait_sent(KIM, 2).await;
    let id = entries(&app, &kim).await[0]["id"].as_str().unwrap().to_string();
    app.wait_ready(&kim, &id).await;

    // Embeddings are down for the first attempt (async-openai's own 3 retries included),
    // so the update is not acknowledged; the redelivery is answered.
    openai.fail_next_embed(&vec![common::fake_openai::Fault::ServerError; 4]);
    fake.push(92, "message", tg::text(KIM, 92, "When did Minji lose her first tooth?"));
    let sent = fake.wait_sent(KIM, 3).await;
    assert!(last_text(&sent).contains("Minji lost her first tooth today"), "{sent:?}");
    fake.wait_drained().await;
    assert_eq!(fake.sent_to(KIM).len(), 3, "answered once");

    // A crash after answering, before the offset moved: the question comes back
    // with its old id, and so does a command. Neither acts twice.
    fake.push(93, "message", tg::text(KIM, 93, "/kids add Junho 준호"));
    fake.wait_sent(KIM, 4).await;
    fake.redeliver(92, "message", tg::text(KIM, 92, "When did Minji lose her first tooth?"));
    fake.redeliver(93, "message", tg::text(KIM, 93, "/kids add Junho 준호"));
    fake.push(94, "message", tg::text(KIM, 94, "Junho hummed a song today"));
    let sent = fake.wait_sent(KIM, 5).await;
    assert!(last_text(&sent).contains("Junho"), "the next message is handled: {sent:?}");
    fake.wait_drained().await;
    assert_eq!(fake.sent_to(KIM).len(), 5, "no second answer and no second command reply: {:?}", fake.sent_to(KIM));
    let (_, kids) = app.get(&kim.token, "/v1/members").await;
    assert_eq!(kids["members"].as_array().unwrap().len(), 2, "Junho was added once: {kids}");
    assert_eq!(entries(&app, &kim).await.len(), 2);
}

#[tokio::test]
async fn an_update_that_keeps_failing_is_set_aside_with_an_apology_and_later_ones_go_on() {
    let openai = FakeOpenAi::start().await;
    let fake = FakeTelegram::start().await;
    let app = app_with_bot(&fake, &openai.env()).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    link(&app, &fake, &kim, KIM, 100).await;

    // Embeddings fail on every delivery of the question (3 × 4 calls with
    // async-openai's own retries): after three failures it is set aside.
    openai.fail_next_embed(&vec![common::fake_openai::Fault::ServerError; 12]);
    fake.push(101, "message", tg::text(KIM, 101, "When did Minji first swim?"));
    let sent = fake.wait_sent(KIM, 2).await;
    assert!(last_text(&sent).contains("set it aside"), "{sent:?}");
    fake.wait_drained().await;

    fake.push(102, "message", tg::text(KIM, 102, "Minji swam across the pool today"));
    let sent = fake.wait_sent(KIM, 3).await;
    assert!(last_text(&sent).contains("Saved to Minji's journal"), "{sent:?}");
    fake.wait_drained().await;
    assert_eq!(fake.sent_to(KIM).len(), 3, "one apology, no endless retries");
}

#[tokio::test]
async fn a_slow_answer_in_one_chat_never_holds_up_another_family() {
    let openai = FakeOpenAi::start().await;
    let fake = FakeTelegram::start().await;
    let mut env = openai.env();
    env.push(("DADLY_MODEL_TIMEOUT_SECS", "20".into()));
    let app = app_with_bot(&fake, &env).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let lee = app.family("Lee", &[("Sora", &[])]).await;
    link(&app, &fake, &kim, KIM, 110).await;
    link(&app, &fake, &lee, LEE, 111).await;
    fake.push(112, "message", tg::text(KIM, 112, "Minji lost her first tooth today"));
    fake.wait_sent(KIM, 2).await;
    let id = entries(&app, &kim).await[0]["id"].as_str().unwrap().to_string();
    app.wait_ready(&kim, &id).await;

    // Kim's answer takes the model four seconds; Lee writes right after Kim asks.
    openai.fail_next_answer(&[common::fake_openai::Fault::Hang(std::time::Duration::from_secs(4))]);
    fake.push(113, "message", tg::text(KIM, 113, "When did Minji lose her first tooth?"));
    fake.push(114, "message", tg::text(LEE, 114, "Sora built a sandcastle today"));
    fake.wait_sent(KIM, 3).await;
    fake.wait_sent(LEE, 2).await;
    let order: Vec<i64> = fake.calls("sendMessage").iter().map(|m| m["chat_id"].as_i64().unwrap()).collect();
    let lee_saved = order.iter().rposition(|c| *c == LEE).unwrap();
    let kim_answered = order.iter().rposition(|c| *c == KIM).unwrap();
    assert!(lee_saved < kim_answered, "Lee's reply did not wait for Kim's slow answer: {order:?}");
    fake.wait_drained().await;
    assert_eq!((fake.sent_to(KIM).len(), fake.sent_to(LEE).len()), (3, 2), "each update handled once while an earlier one was in flight: {order:?}");
}

#[tokio::test]
async fn a_webhook_update_that_keeps_failing_is_acknowledged_with_an_apology() {
    let openai = FakeOpenAi::start().await;
    let fake = FakeTelegram::start().await;
    let mut env = openai.env();
    env.extend([("TELEGRAM_WEBHOOK_URL", "https://dadly.example/hook".to_string()), ("TELEGRAM_WEBHOOK_SECRET", "hook-secret".to_string())]);
    let app = app_with_bot(&fake, &env).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let (_, code) = app.post(&kim.token, "/v1/telegram/link-codes", json!({})).await;
    let post = |body: Value| app.http.post(app.url("/hook")).header("x-telegram-bot-api-secret-token", "hook-secret").json(&body).send();
    let start = json!({ "update_id": 120, "message": tg::text(KIM, 120, &format!("/start {}", code["code"].as_str().unwrap())) });
    assert_eq!(post(start).await.unwrap().status(), StatusCode::OK);

    openai.fail_next_embed(&vec![common::fake_openai::Fault::ServerError; 12]);
    let question = json!({ "update_id": 121, "message": tg::text(KIM, 121, "When did Minji first swim?") });
    let statuses: Vec<u16> = {
        let mut s = Vec::new();
        for _ in 0..3 {
            s.push(post(question.clone()).await.unwrap().status().as_u16());
        }
        s
    };
    assert_eq!(statuses, vec![500, 500, 200], "retried by Telegram twice, then acknowledged");
    assert!(last_text(&fake.sent_to(KIM)).contains("set it aside"), "{:?}", fake.sent_to(KIM));
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"route="/hook",status="500""#), "the webhook is behind the API's metrics layer: {metrics}");
}
