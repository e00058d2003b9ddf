//! Property tests over every function that a parent's text reaches: dates,
//! routing and commands, children's names, snippets, the offline models,
//! citations and model-output parsing. Arbitrary Unicode — Hangul, CJK
//! punctuation, emoji, combining marks, right-to-left text, NUL — huge
//! numbers and long inputs: never a panic, and each output keeps its promise.

use chrono::{Datelike, NaiveDate};
use proptest::prelude::*;

use crate::domain::Member;
use crate::models::offline::{OfflineModels, embed_text};
use crate::models::{ChatModel, ChatRequest, SourceNote, Task};
use crate::pipeline::{answer, enrich};
use crate::text::{dates, is_korean, lexicon, members, route, snippet, tokens};

/// Pieces parents' messages are made of, including the awkward ones.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("999999999".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("days ago ".to_string()),
        Just("weeks ago ".to_string()),
        Just("in the last ".to_string()),
        Just(" days".to_string()),
        Just("주 전".to_string()),
        Just("일 전".to_string()),
        Just("최근 ".to_string()),
        Just("yesterday ".to_string()),
        Just("tomorrow ".to_string()),
        Just("last month ".to_string()),
        Just("last week ".to_string()),
        Just("지난주 일요일".to_string()),
        Just("지난달".to_string()),
        Just("작년".to_string()),
        Just("년 ".to_string()),
        Just("월 ".to_string()),
        Just("일".to_string()),
        Just("october 3 ".to_string()),
        Just("9999-12-31 ".to_string()),
        Just("0000-01-01 ".to_string()),
        Just("민지가 ".to_string()),
        Just("Minji ".to_string()),
        Just("/ask ".to_string()),
        Just("/record ".to_string()),
        Just("/kids@dadly_bot add ".to_string()),
        Just("[1] [2, 3] [99999999999999999999] [".to_string()),
        Just("]".to_string()),
        Just("。".to_string()),
        Just("、".to_string()),
        Just("？".to_string()),
        Just("！".to_string()),
        Just("🦖".to_string()),
        Just("👨‍👩‍👧".to_string()),
        Just("e\u{0301}\u{0302}".to_string()),
        Just("שלום مرحبا".to_string()),
        Just("\u{202E}".to_string()),
        Just("\u{200B}\u{FEFF}".to_string()),
        Just("\0".to_string()),
        Just("\n".to_string()),
        Just("ǅ İ ß ﬃ".to_string()),
        Just("th birthday".to_string()),
        Just(" years ".to_string()),
        Just("turns ".to_string()),
        Just("번째 생일".to_string()),
        Just("살이 되면".to_string()),
        Just("년 후".to_string()),
        Just("time capsule: ".to_string()),
        Just("：".to_string()),
        Just("٣ ١٢".to_string()),
        "[0-9]{1,25}",
        "[a-z ]{0,12}",
        "[가-힣 ]{0,8}",
        any::<char>().prop_map(String::from),
        ".{0,6}",
    ]
}

fn message() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..24).prop_map(|parts| parts.concat())
}

/// Any day chrono can represent, the calendar's ends included.
fn any_day() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        Just(NaiveDate::MIN),
        Just(NaiveDate::MAX),
        (NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce())
            .prop_map(|d| NaiveDate::from_num_days_from_ce_opt(d).expect("in range")),
        (1900i32..2200, 1u32..=365).prop_map(|(y, d)| NaiveDate::from_yo_opt(y, d).expect("in range")),
    ]
}

fn family() -> Vec<Member> {
    let member = |name: &str, aliases: &[&str]| Member {
        id: uuid::Uuid::now_v7(),
        family_id: uuid::Uuid::nil(),
        name: name.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        birth_date: None,
        created_at: chrono::Utc::now(),
        age_notice_at: None,
    };
    vec![member("Minji", &["민지", "Minnie"]), member("준호", &["Junho"]), member("É\u{0301}lodie", &["🦖"])]
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn dates_resolve_without_panicking_and_stay_on_the_calendar(text in message(), today in any_day()) {
        if let Some(d) = dates::resolve_date(&text, today) {
            prop_assert!(NaiveDate::MIN <= d && d <= NaiveDate::MAX);
        }
        if let Some(r) = dates::resolve_range(&text, today) {
            prop_assert!(r.start < r.end, "{r:?}");
        }
    }

    #[test]
    fn huge_counts_of_days_and_weeks_never_panic(n in any::<u64>(), today in any_day(), unit in prop::sample::select(vec!["days ago", "weeks ago", "일 전", "주 전", "주일 전"])) {
        let _ = dates::resolve_date(&format!("{n} {unit}"), today);
        let _ = dates::resolve_range(&format!("in the last {n} days"), today);
        let _ = dates::resolve_range(&format!("최근 {n}일"), today);
    }

    #[test]
    fn routing_returns_a_slice_of_the_message(text in message()) {
        let (_, body) = route::route(&text);
        prop_assert!(text.contains(body));
    }

    #[test]
    fn members_are_detected_without_panicking(text in message()) {
        let family = family();
        for id in members::detect_members(&text, &family) {
            prop_assert!(family.iter().any(|m| m.id == id));
        }
        let _ = tokens::words(&text);
        let _ = tokens::content_tokens(&text);
        let _ = is_korean(&text);
        let _ = lexicon::topics(&text);
        let _ = lexicon::emotions(&text);
    }

    #[test]
    fn snippets_stay_within_their_bound(text in message(), max in 0usize..300) {
        let s = snippet(&text, max);
        // Bound is in characters; a cut snippet ends with one ellipsis.
        prop_assert!(s.chars().count() <= max.max(1), "{} > {max}", s.chars().count());
        prop_assert!(text.trim().starts_with(s.trim_end_matches('…').trim_end()));
    }

    #[test]
    fn the_offline_embedding_is_finite_and_normalised(text in message()) {
        let v = embed_text(&text);
        prop_assert!(v.iter().all(|x| x.is_finite()));
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        prop_assert!(norm == 0.0 || (norm - 1.0).abs() < 1e-3);
    }

    #[test]
    fn the_offline_chat_model_answers_every_task(text in message()) {
        let chat = OfflineModels::chat();
        let tasks = vec![
            Task::Route { message: text.clone() },
            Task::Enrich { text: text.clone(), member_names: vec!["Minji".into(), "민지".into()] },
            Task::Answer { question: text.clone(), sources: vec![SourceNote { n: 1, date: "2026-11-27".into(), text: text.clone() }], korean: is_korean(&text), counted: None },
            Task::Answer { question: text.clone(), sources: vec![SourceNote { n: 1, date: "2026-11-27".into(), text: text.clone() }], korean: is_korean(&text), counted: Some(crate::models::Counted::All) },
        ];
        for task in tasks {
            let enrich = matches!(task, Task::Enrich { .. });
            let request = ChatRequest { task, messages: vec![], schema: None, temperature: 0.0, deltas: None };
            let done = block_on(chat.complete(&request));
            prop_assert!(done.is_ok());
            if enrich {
                // What the offline model writes, the enrichment parser takes.
                let content = done.expect("ok").content;
                prop_assert!(enrich::parse_enrich(&content).is_ok() || text.trim().is_empty() || content.contains("\"summary\":\"\""), "{content}");
            }
        }
    }

    #[test]
    fn citations_and_model_output_parse_without_panicking(text in message()) {
        for n in answer::cited_numbers(&text) {
            prop_assert!(text.contains(&n.to_string()));
        }
        let _ = enrich::parse_enrich(&text);
        let _ = crate::pipeline::parse_json(&text);
        let _ = answer::plan(&text, &family(), NaiveDate::from_ymd_opt(2026, 11, 27).expect("date"));
        let _ = answer::without_names(&text, &family(), &family().iter().map(|m| m.id).collect::<Vec<_>>());
    }

    #[test]
    fn plans_stay_on_the_calendar_for_any_today(text in message(), today in any_day()) {
        let plan = answer::plan(&text, &family(), today);
        if let Some(r) = plan.range {
            prop_assert!(r.start < r.end);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn capsule_requests_parse_without_panicking_and_open_in_the_future(text in message(), today in any_day(), born in prop::option::of(any_day())) {
        let mut child = family().remove(0);
        child.birth_date = born;
        if let Some(day) = crate::capsule::when::opening_date(&text, Some(&child), today) {
            prop_assert!(day > today);
        }
        let _ = crate::capsule::when::age_on(&child, today);
        let _ = crate::capsule::mentions_capsule(&text);
        let _ = crate::capsule::is_confirmation(&text);
        let body = crate::capsule::capsule_body(&text);
        prop_assert!(text.contains(body));
    }

    #[test]
    fn prompt_times_and_offsets_parse_or_refuse(text in message(), day in any_day()) {
        if let Ok(t) = crate::pipeline::prompts::parse_time(&text) {
            prop_assert_eq!(crate::pipeline::prompts::parse_time(&t.format("%H:%M").to_string()).ok(), Some(t));
        }
        if let Ok(o) = crate::pipeline::prompts::parse_offset(&text) {
            prop_assert!(o.local_minus_utc().abs() <= 14 * 3600 + 59 * 60);
        }
        let picked = crate::pipeline::prompts::pick_question(day, &[]);
        prop_assert!(picked.is_some());
    }
}

#[test]
fn the_inputs_that_once_crashed_dadly_are_handled() {
    let today = NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
    assert_eq!(dates::resolve_date("999999999 days ago", today), None);
    assert_eq!(dates::resolve_date("18446744073709551615 weeks ago", today), None);
    assert_eq!(dates::resolve_date("yesterday", NaiveDate::MIN), None);
    assert_eq!(dates::resolve_date("tomorrow", NaiveDate::MAX), None);
    let all = dates::resolve_range("in the last 999999999 days", today).expect("a range");
    assert_eq!((all.start, all.end), (NaiveDate::MIN, today.succ_opt().expect("date")));
    assert_eq!(dates::resolve_range("last month", NaiveDate::MIN), None);
    let request = ChatRequest {
        task: Task::Enrich { text: "민지。오늘은 즐거웠다".into(), member_names: vec![] },
        messages: vec![],
        schema: None,
        temperature: 0.0,
        deltas: None,
    };
    let done = block_on(OfflineModels::chat().complete(&request)).expect("offline enrichment");
    assert_eq!(enrich::parse_enrich(&done.content).expect("parses").summary, "민지。");
}
