//! Hybrid retrieval end to end: the lexical index beside the vectors finds an
//! entry by its words when the vectors alone would not (here: a similarity
//! floor no vector reaches), in English and Korean, on SQLite (FTS5) and on
//! Postgres (tsvector under row-level security), and never across families.

mod common;

use common::{TestApp, source_ids};
use dadly_testkit::services;

async fn found_by_words(app: &TestApp, expect_lexical: bool) {
    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Junho", &["준호"])]).await;
    let lee = app.family("Lee", &[("Sora", &[])]).await;
    let wheels = app.entry(&kim, "No more little wheels on the bike! Junho did it", "2026-05-03T10:00:00Z").await;
    let bike_ko = app.entry(&kim, "준호가 자전거를 혼자 탔다", "2026-05-04T10:00:00Z").await;
    let theirs = app.entry(&lee, "Sora rode her bike with no little wheels", "2026-05-05T10:00:00Z").await;
    for (family, id) in [(&kim, &wheels), (&kim, &bike_ko), (&lee, &theirs)] {
        app.wait_ready(family, id).await;
    }
    let en = app.chat(&kim, "Any little wheels on a bike?").await;
    let ko = app.chat(&kim, "준호 자전거 언제 탔어?").await;
    if expect_lexical {
        assert_eq!(source_ids(&en), vec![wheels.clone()], "{en}");
        assert_eq!(source_ids(&ko), vec![bike_ko.clone()], "{ko}");
    } else {
        assert!(source_ids(&en).is_empty() && source_ids(&ko).is_empty(), "vectors alone find nothing here: {en} {ko}");
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
