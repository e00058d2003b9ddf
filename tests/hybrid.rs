//! Hybrid retrieval end to end: the lexical index beside the vectors finds an
//! entry by its words when the vectors alone would not (here: a similarity
//! floor no vector reaches), in English and Korean, on SQLite (FTS5), on
//! Postgres (tsvector under row-level security) and in Qdrant (sparse
//! vectors), and never across families.
//! Counts over a period are taken over the entries about the question's topic.

mod common;

use common::{TestApp, source_ids};
use dadly_testkit::qdrant::QdrantStandIn;
use dadly_testkit::services;

async fn found_by_words(app: &TestApp, expect_lexical: bool) {
    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Junho", &["준호"])]).await;
    let lee = app.family("Lee", &[("Sora", &[])]).await;
    let wheels = app.entry(&kim, "No more little wheels on the bike! Junho did it", "2026-05-03T10:00:00Z").await;
    let bike_ko = app.entry(&kim, "준호가 자전거를 혼자 탔다", "2026-05-04T10:00:00Z").await;
    let theirs = app.entry(&lee, "Sora rode her bike with no little wheels", "2026-05-05T10:00:00Z").await;
    // "태권도" ends in a syllable that is also a particle ("도"): it is matched as written too.
    let taekwondo = app.entry(&kim, "오늘 민지 태권도 갔다. 열심히 했다.", "2026-05-06T10:00:00Z").await;
    for (family, id) in [(&kim, &wheels), (&kim, &bike_ko), (&lee, &theirs), (&kim, &taekwondo)] {
        app.wait_ready(family, id).await;
    }
    let en = app.chat(&kim, "Any little wheels on a bike?").await;
    let ko = app.chat(&kim, "준호 자전거 언제 탔어?").await;
    let how = app.chat(&kim, "민지 태권도는 어때?").await;
    if expect_lexical {
        assert_eq!(source_ids(&en), vec![wheels.clone()], "{en}");
        assert_eq!(source_ids(&ko), vec![bike_ko.clone()], "{ko}");
        assert_eq!(source_ids(&how), vec![taekwondo.clone()], "{how}");
    } else {
        assert!(source_ids(&en).is_empty() && source_ids(&ko).is_empty() && source_ids(&how).is_empty(), "vectors alone find nothing here: {en} {ko} {how}");
    }
    // The other family's entry shares the words and is never a source.
    let mine = app.chat(&lee, "Any little wheels on a bike?").await;
    if expect_lexical {
        assert_eq!(source_ids(&mine), vec![theirs], "{mine}");
    }
    assert!(!source_ids(&mine).contains(&wheels));
}

/// No vector reaches this similarity: what is found was found by its words.
const FLOOR: (&str, &str) = ("DADLY_MIN_SCORE", "0.999");

#[tokio::test]
async fn the_lexical_index_finds_entries_by_their_words_on_sqlite() {
    found_by_words(&TestApp::spawn_with(&[FLOOR]).await, true).await;
}

#[tokio::test]
async fn with_a_lexical_weight_of_zero_only_the_vectors_search() {
    found_by_words(&TestApp::spawn_with(&[FLOOR, ("DADLY_LEXICAL_WEIGHT", "0")]).await, false).await;
}

#[tokio::test]
async fn the_lexical_index_finds_entries_by_their_words_on_postgres() {
    let Some(db) = services::postgres_database().await else { return };
    found_by_words(&TestApp::spawn_with(&[FLOOR, ("DATABASE_URL", &db)]).await, true).await;
}

/// With Qdrant as the vector index, the lexical side is Qdrant's too: the
/// entries' terms are its sparse vectors, searched through the Query API,
/// always confined to the asking family.
#[tokio::test]
async fn the_lexical_index_finds_entries_by_their_words_in_qdrant() {
    let qdrant = QdrantStandIn::start(None).await;
    let app = TestApp::spawn_with(&[FLOOR, ("QDRANT_URL", &qdrant.url)]).await;
    let probe = app.family("Probe", &[]).await;
    let (_, status) = app.get(&probe.token, "/v1/status").await;
    assert_eq!((status["vector_index"].as_str(), status["retrieval"]["lexical_index"].as_str()), (Some("qdrant"), Some("qdrant")), "{status}");
    found_by_words(&app, true).await;
    let queries: Vec<_> = qdrant.calls().into_iter().filter(|c| c.method == "query").collect();
    assert!(queries.len() >= 4, "each question's lexical side went to Qdrant: {queries:?}");
    assert!(queries.iter().all(|c| c.must_owner.is_some()), "{queries:?}");
}

/// "How many times was Junho sick this winter?" counts the winter's entries
/// about health, not every entry that clears the similarity floor (a
/// multilingual embedder puts every entry of the question's language over
/// it; here the floor is 0, so every entry does). A count whose topic no
/// entry has falls back to the floor.
async fn counted_by_topic(app: &TestApp) {
    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Junho", &["준호"])]).await;
    let lee = app.family("Lee", &[("Sora", &[])]).await;
    let fever = app.entry(&kim, "Junho had a fever of 38.8 tonight", "2025-12-10T20:00:00Z").await;
    let cat = app.entry(&kim, "Junho fed the neighbour's cat", "2025-12-20T10:00:00Z").await;
    let tummy = app.entry(&kim, "준호 장염인지 두 번 토했다", "2026-01-05T19:00:00Z").await;
    let snowman = app.entry(&kim, "Junho built a snowman in the yard", "2026-01-10T10:00:00Z").await;
    let autumn = app.entry(&kim, "Junho has a cough again", "2025-10-01T10:00:00Z").await;
    let theirs = app.entry(&lee, "Sora had a fever all night", "2026-01-06T10:00:00Z").await;
    for (family, id) in [(&kim, &fever), (&kim, &cat), (&kim, &tummy), (&kim, &snowman), (&kim, &autumn), (&lee, &theirs)] {
        app.wait_ready(family, id).await;
    }
    const SENT: Option<&str> = Some("2026-01-20T12:00:00Z");
    for (question, says) in [("How many times was Junho sick this winter?", "2 times in your journal:"), ("이번 겨울에 준호가 몇 번 아팠어?", "일기에서 2번 찾았어요:")] {
        let answer = app.chat_at(&kim, question, SENT).await;
        assert_eq!(source_ids(&answer), vec![fever.clone(), tummy.clone()], "{question}: {answer}");
        // The offline answer counts them and lists both.
        let reply = answer["reply"].as_str().unwrap();
        assert!(reply.starts_with(says) && reply.contains("[1]") && reply.contains("[2]"), "{reply}");
    }
    // No entry is about the zoo: what clears the floor is counted, as before
    // (the winter's entries the offline embedder finds similar at all).
    let zoo = app.chat_at(&kim, "How many times did Junho go to the zoo this winter?", SENT).await;
    assert_eq!(source_ids(&zoo), vec![fever, snowman], "{zoo}");
    assert!(zoo["reply"].as_str().unwrap().starts_with("Here is what your journal says:"), "no count without the topic: {zoo}");
    // The other family's count is its own.
    let mine = app.chat_at(&lee, "How many times was Sora sick this winter?", SENT).await;
    assert_eq!(source_ids(&mine), vec![theirs], "{mine}");
}

const NO_FLOOR: (&str, &str) = ("DADLY_MIN_SCORE", "0");

#[tokio::test]
async fn a_count_is_over_the_entries_about_its_topic_on_sqlite() {
    counted_by_topic(&TestApp::spawn_with(&[NO_FLOOR]).await).await;
}

#[tokio::test]
async fn a_count_is_over_the_entries_about_its_topic_on_postgres() {
    let Some(db) = services::postgres_database().await else { return };
    counted_by_topic(&TestApp::spawn_with(&[NO_FLOOR, ("DATABASE_URL", &db)]).await).await;
}

/// A count that names a feeling takes it too: "how many nightmares" is
/// sleep and fear (not a nap, not a fright by day), "how many times did he
/// cry" is sadness, with no topic at all.
#[tokio::test]
async fn a_count_takes_the_feeling_it_names_too() {
    let app = TestApp::spawn_with(&[NO_FLOOR]).await;
    let kim = app.family("Kim", &[("Junho", &["준호"])]).await;
    let nightmare = app.entry(&kim, "Junho had a nightmare and slept in our bed", "2025-12-10T03:00:00Z").await;
    let nap = app.entry(&kim, "Junho took a long nap after lunch", "2025-12-12T14:00:00Z").await;
    let dog = app.entry(&kim, "Junho was scared of the big dog at the park", "2025-12-15T10:00:00Z").await;
    let scary_dream = app.entry(&kim, "준호가 악몽을 꿔서 무서웠다고 울면서 잤다", "2026-01-04T03:00:00Z").await;
    let cried = app.entry(&kim, "Junho cried when grandma left", "2026-01-08T18:00:00Z").await;
    let fell = app.entry(&kim, "준호가 놀이터에서 넘어져서 울었다", "2026-01-10T11:00:00Z").await;
    for id in [&nightmare, &nap, &dog, &scary_dream, &cried, &fell] {
        app.wait_ready(&kim, id).await;
    }
    const SENT: Option<&str> = Some("2026-01-20T12:00:00Z");
    for question in ["How many nightmares did Junho have this winter?", "이번 겨울에 준호 악몽 몇 번 꿨어?"] {
        let answer = app.chat_at(&kim, question, SENT).await;
        assert_eq!(source_ids(&answer), vec![nightmare.clone(), scary_dream.clone()], "{question}: {answer}");
    }
    let cry = app.chat_at(&kim, "How many times did Junho cry this winter?", SENT).await;
    assert_eq!(source_ids(&cry), vec![cried.clone(), fell.clone()], "{cry}");
    assert!(cry["reply"].as_str().unwrap().starts_with("2 times in your journal:"), "{cry}");
    assert!(!source_ids(&cry).contains(&nap) && !source_ids(&cry).contains(&dog));
}

/// A count takes every entry of its period about its topic from the store,
/// not only those among the nearest hits: here 55 notes worded like the
/// question ("times", "winter") fill the search, and the two illnesses are
/// still counted.
#[tokio::test]
async fn a_count_reaches_entries_beyond_the_nearest_hits() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Junho", &["준호"])]).await;
    let fever = app.entry(&kim, "Junho had a fever of 38.8 tonight", "2025-12-10T20:00:00Z").await;
    let tummy = app.entry(&kim, "준호 장염인지 두 번 토했다", "2026-01-05T19:00:00Z").await;
    let mut last = tummy.clone();
    for i in 0..55 {
        last = app.entry(&kim, &format!("Junho laughed so many times this winter, time {i}"), &format!("2026-01-{:02}T10:00:00Z", 6 + i % 20)).await;
    }
    for id in [&fever, &tummy, &last] {
        app.wait_ready(&kim, id).await;
    }
    let answer = app.chat_at(&kim, "How many times was Junho sick this winter?", Some("2026-01-30T12:00:00Z")).await;
    assert_eq!(source_ids(&answer), vec![fever, tummy], "{answer}");
}

/// A count about two children reaches their entries even when another
/// child has more entries about the topic than a count draws on: each child
/// is asked for on its own.
#[tokio::test]
async fn a_count_about_two_children_is_not_crowded_out_by_a_third() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Junho", &["준호"]), ("Sora", &[])]).await;
    let minji = app.entry(&kim, "Minji had a fever at school", "2025-12-05T10:00:00Z").await;
    let junho = app.entry(&kim, "준호 감기 걸려서 병원 갔다", "2025-12-08T10:00:00Z").await;
    let mut last = junho.clone();
    for i in 0..52 {
        last = app.entry(&kim, &format!("Sora has a fever again ({i})"), &format!("2026-01-{:02}T10:00:00Z", 1 + i % 28)).await;
    }
    for id in [&minji, &junho, &last] {
        app.wait_ready(&kim, id).await;
    }
    let answer = app.chat_at(&kim, "How many times were Minji and Junho sick this winter?", Some("2026-01-30T12:00:00Z")).await;
    assert_eq!(source_ids(&answer), vec![minji, junho], "{answer}");
    assert!(answer["reply"].as_str().unwrap().starts_with("2 times in your journal:"), "{answer}");
}

/// A period with more entries about the topic than a count draws on (50)
/// is answered "more than 50", never with a number it did not count.
#[tokio::test]
async fn a_count_past_its_limit_says_more_than() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Junho", &["준호"])]).await;
    let mut fevers = Vec::new();
    for i in 0..53 {
        fevers.push(app.entry(&kim, &format!("Junho has a fever again ({i})"), &format!("2026-01-{:02}T10:00:00Z", 1 + i % 28)).await);
    }
    for id in &fevers {
        app.wait_ready(&kim, id).await;
    }
    let answer = app.chat_at(&kim, "How many times was Junho sick this winter?", Some("2026-01-30T12:00:00Z")).await;
    let reply = answer["reply"].as_str().unwrap();
    assert!(reply.starts_with("More than 50 times in your journal"), "{reply}");
    assert_eq!(source_ids(&answer).len(), 50, "{answer}");
}
