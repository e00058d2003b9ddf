//! Cross-language retrieval end to end, with an OpenAI-compatible embedder
//! that behaves like a multilingual model (the fake's `multilingual` mode):
//! it places a Korean question near its English answer but nearer still to
//! every Korean entry. One search never reaches the English entry; the
//! second search, moved along the embedder's measured language direction,
//! does — and only ever within the asking family.

mod common;

use common::fake_openai::FakeOpenAi;
use common::{TestApp, source_ids};

async fn app(fake: &FakeOpenAi, extra: &[(&'static str, &str)]) -> TestApp {
    let env = fake.env_with(extra);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::spawn_with(&pairs).await
}

/// Forty Korean entries about other things and one English entry about the
/// bike; a Korean question about the bike. Returns the answer's sources,
/// the English entry and the other family's English entry about the bike.
async fn ask_about_the_bike(app: &TestApp) -> (Vec<String>, String, String) {
    let kim = app.family("Kim", &[]).await;
    let lee = app.family("Lee", &[]).await;
    let mut ids = Vec::new();
    // More than the other-language search takes (4 × k): without the move
    // along the language direction the English entry would be past its end.
    let places = ["집에서", "할머니 댁에서", "도서관에서", "동물원에서", "친구 집에서"];
    let things = ["퍼즐을 했다", "김치전을 만들었다", "그림책을 읽었다", "낮잠을 잤다", "노래를 불렀다", "블록을 쌓았다", "팬케이크를 먹었다", "그림을 그렸다"];
    for (i, (place, thing)) in places.iter().flat_map(|p| things.iter().map(move |t| (p, t))).enumerate() {
        ids.push(app.entry(&kim, &format!("오늘 {place} {thing}"), &format!("2026-03-{:02}T{:02}:00:00Z", i % 28 + 1, i / 28 + 8)).await);
    }
    let english = app.entry(&kim, "No more training wheels: a whole bike ride around the park", "2026-05-03T10:00:00Z").await;
    let theirs = app.entry(&lee, "Our bike ride around the park, no wheels wobbling", "2026-05-04T10:00:00Z").await;
    ids.push(english.clone());
    for id in &ids {
        app.wait_ready(&kim, id).await;
    }
    app.wait_ready(&lee, &theirs).await;
    let answer = app.chat(&kim, "공원에서 자전거 보조바퀴 없이 탄 게 언제야?").await;
    (source_ids(&answer), english, theirs)
}

#[tokio::test]
async fn a_korean_question_finds_the_english_entry_through_the_other_language_search() {
    let fake = FakeOpenAi::start().await;
    fake.multilingual();
    let app = app(&fake, &[]).await;
    let (sources, english, theirs) = ask_about_the_bike(&app).await;
    assert!(sources.contains(&english), "the English entry is a source: {sources:?}");
    let someone = app.family("Park", &[]).await;
    let (_, status) = app.get(&someone.token, "/v1/status").await;
    assert_eq!(status["retrieval"]["cross_language"], true, "{status}");
    assert!(!sources.contains(&theirs), "never another family's entry: {sources:?}");
}

#[tokio::test]
async fn one_search_alone_ranks_every_korean_entry_above_it() {
    let fake = FakeOpenAi::start().await;
    fake.multilingual();
    let app = app(&fake, &[("DADLY_CROSS_LANGUAGE", "false")]).await;
    let (sources, english, _) = ask_about_the_bike(&app).await;
    let someone = app.family("Park", &[]).await;
    let (_, status) = app.get(&someone.token, "/v1/status").await;
    assert_eq!(status["retrieval"]["cross_language"], false, "{status}");
    assert!(!sources.is_empty() && !sources.contains(&english), "without the second search the English entry is out of reach: {sources:?}");
}

/// An other-language entry that the first search also found ranks by both
/// searches (reciprocal rank fusion rewards agreement): the English answer
/// to a Korean question comes first, not behind the Korean entries that
/// only share the question's language.
#[tokio::test]
async fn an_entry_both_searches_found_ranks_first() {
    let fake = FakeOpenAi::start().await;
    fake.multilingual();
    let app = app(&fake, &[("DADLY_MIN_SCORE", "0")]).await;
    let kim = app.family("Kim", &[]).await;
    let puzzle = app.entry(&kim, "오늘 집에서 퍼즐을 했다", "2026-05-01T10:00:00Z").await;
    let pancake = app.entry(&kim, "오늘 할머니 댁에서 팬케이크를 먹었다", "2026-05-02T10:00:00Z").await;
    let bike = app.entry(&kim, "No more training wheels: a whole bike ride around the park", "2026-05-03T10:00:00Z").await;
    let mut ids = vec![puzzle, pancake, bike.clone()];
    for (i, text) in ["We had a picnic in the park", "Grandma came to the park with us", "Walked the dog to the park", "Fed the ducks at the park pond"].iter().enumerate() {
        ids.push(app.entry(&kim, text, &format!("2026-05-{:02}T10:00:00Z", 4 + i)).await);
    }
    for id in &ids {
        app.wait_ready(&kim, id).await;
    }
    let answer = app.chat(&kim, "공원에서 자전거 보조바퀴 없이 탄 게 언제야?").await;
    assert_eq!(source_ids(&answer).first(), Some(&bike), "{answer}");
}

/// Odd questions through the two-search path: Hangul with CJK punctuation,
/// emoji, NUL, invisible-only text and a very long number are answered or
/// refused with a JSON error — never a 5xx.
#[tokio::test]
async fn odd_questions_never_fail_the_two_searches() {
    let fake = FakeOpenAi::start().await;
    fake.multilingual();
    let app = app(&fake, &[]).await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    let en = app.entry(&kim, "Minji rode her bike in the park", "2026-05-03T10:00:00Z").await;
    let ko = app.entry(&kim, "민지가 공원에서 자전거를 탔다。", "2026-05-04T10:00:00Z").await;
    for id in [&en, &ko] {
        app.wait_ready(&kim, id).await;
    }
    let long_number = format!("/ask {} 자전거?", "9".repeat(400));
    let odd = [
        "/ask 민지、자전거。언제？",
        "/ask 🚲🚲🚲?",
        "/ask 자전거\u{0}bike?",
        "/ask \u{200b}\u{200b}\u{2060}",
        long_number.as_str(),
        "/ask 9999-12-31에 자전거 탔어?",
        "/ask 0001-01-01 bike?",
    ];
    for message in odd {
        let (status, body) = app.post(&kim.token, "/v1/chat", serde_json::json!({ "message": message, "chat_id": "odd" })).await;
        assert!(status.is_success() || status.is_client_error(), "{message:?}: {status} {body}");
        assert!(body.is_object(), "{message:?}: a JSON body: {body}");
    }
}
