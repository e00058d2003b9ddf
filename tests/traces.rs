//! Traces in LangSmith's run format: one trace per message with the right
//! tree, ids, dotted orders and token usage, sent to a local LangSmith
//! stand-in; outages never touch replies; the privacy switch removes what a
//! parent wrote.

mod common;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use common::fake_langsmith::FakeLangSmith;
use common::fake_openai::{CHAT_MODEL, FakeOpenAi};
use common::{TestApp, source_ids};
use serde_json::Value;
use uuid::Uuid;

const KEY: &str = "ls-test-key";

async fn traced_app(fake: &FakeOpenAi, ls: &FakeLangSmith) -> TestApp {
    let mut env: Vec<(&str, String)> = fake.env();
    env.push(("LANGCHAIN_API_KEY", KEY.into()));
    env.push(("LANGCHAIN_ENDPOINT", ls.endpoint.clone()));
    env.push(("LANGCHAIN_PROJECT", "dadly-test".into()));
    env.push(("DADLY_TRACE_BACKOFF_MS", "20".into()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::spawn_with(&pairs).await
}

/// Splits a dotted_order into (start time, run id) segments, checking the format.
fn segments(dotted: &str) -> Vec<(DateTime<Utc>, Uuid)> {
    dotted
        .split('.')
        .map(|seg| {
            assert_eq!(seg.len(), 22 + 36, "segment `{seg}`");
            let (ts, id) = seg.split_at(22);
            let t = NaiveDateTime::parse_from_str(ts, "%Y%m%dT%H%M%S%6fZ").unwrap_or_else(|e| panic!("`{ts}`: {e}")).and_utc();
            (t, Uuid::parse_str(id).unwrap())
        })
        .collect()
}

fn check_run_shape(run: &Value, by_id: &HashMap<String, Value>) {
    let id = Uuid::parse_str(run["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7, "run ids are UUIDv7");
    let segs = segments(run["dotted_order"].as_str().unwrap());
    let start: DateTime<Utc> = run["start_time"].as_str().unwrap().parse().unwrap();
    assert_eq!(segs.last().unwrap(), &(start, id), "the last segment is this run's start and id");
    assert_eq!(segs[0].1.to_string(), run["trace_id"].as_str().unwrap(), "the first segment is the trace");
    let end: DateTime<Utc> = run["end_time"].as_str().unwrap().parse().unwrap();
    assert!(end >= start);
    assert_eq!(run["session_name"], "dadly-test");
    assert!(run["extra"]["metadata"].is_object());
    assert!(run["tags"].is_array());
    match run["parent_run_id"].as_str() {
        None => assert_eq!(segs.len(), 1, "a root has one segment"),
        Some(parent) => {
            assert_eq!(segs[segs.len() - 2].1.to_string(), parent, "the segment before last is the parent");
            let p = by_id.get(parent).expect("the parent run was sent too");
            assert_eq!(format!("{}.", p["dotted_order"].as_str().unwrap()), run["dotted_order"].as_str().unwrap().rsplit_once('.').map(|(a, _)| format!("{a}.")).unwrap());
            assert_eq!(p["trace_id"], run["trace_id"]);
        }
    }
}

#[tokio::test]
async fn one_message_is_one_langsmith_trace_with_usage_from_the_model_server() {
    let fake = FakeOpenAi::start().await;
    let ls = FakeLangSmith::start().await;
    let app = traced_app(&fake, &ls).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let entry_id = app.chat(&kim, "Minji lost her first tooth today").await["entry_id"].as_str().unwrap().to_string();
    app.wait_ready(&kim, &entry_id).await;
    let question = "When did Minji lose her first tooth?";
    let answer = app.chat(&kim, question).await;
    assert_eq!(source_ids(&answer), vec![entry_id.clone()]);

    let runs = ls.wait_for(|runs| runs.iter().any(|r| r["name"] == "message" && r["inputs"]["text"] == question)).await;
    let by_id: HashMap<String, Value> = runs.iter().map(|r| (r["id"].as_str().unwrap().to_string(), r.clone())).collect();
    for run in &runs {
        check_run_shape(run, &by_id);
    }
    for (key, _) in ls.batches() {
        assert_eq!(key.as_deref(), Some(KEY));
    }

    let root = runs.iter().find(|r| r["name"] == "message" && r["inputs"]["text"] == question).unwrap();
    let trace: Vec<&Value> = runs.iter().filter(|r| r["trace_id"] == root["id"]).collect();
    assert_eq!(trace.iter().filter(|r| r["parent_run_id"].is_null()).count(), 1, "one root per trace");
    assert_eq!(root["run_type"], "chain");
    assert_eq!(root["outputs"]["kind"], "answered");
    let kinds: Vec<(&str, &str)> = trace.iter().map(|r| (r["name"].as_str().unwrap(), r["run_type"].as_str().unwrap())).collect();
    for expected in [("retrieve", "retriever"), ("embed", "embedding"), ("answer_prompt", "prompt"), ("answer", "llm")] {
        assert!(kinds.contains(&expected), "{expected:?} in {kinds:?}");
    }
    let retrieve = trace.iter().find(|r| r["name"] == "retrieve").unwrap();
    assert_eq!(retrieve["outputs"]["documents"][0]["entry_id"], entry_id.as_str());
    assert!(retrieve["outputs"]["documents"][0]["score"].as_f64().unwrap() > 0.0);
    let embed = trace.iter().find(|r| r["name"] == "embed").unwrap();
    assert_eq!(embed["parent_run_id"], retrieve["id"], "the query embedding is part of retrieval");

    let llm = trace.iter().find(|r| r["name"] == "answer").unwrap();
    assert_eq!(llm["extra"]["metadata"]["ls_provider"], "openai");
    assert_eq!(llm["extra"]["metadata"]["ls_model_name"], CHAT_MODEL);
    assert_eq!(llm["extra"]["metadata"]["ls_temperature"], 0.2);
    assert_eq!(llm["inputs"]["messages"][0]["role"], "system");
    assert_eq!(llm["outputs"]["choices"][0]["message"]["role"], "assistant");
    let served = fake.usages().last().cloned().unwrap();
    let usage = &llm["outputs"]["usage_metadata"];
    assert_eq!(usage["input_tokens"], served["prompt_tokens"]);
    assert_eq!(usage["output_tokens"], served["completion_tokens"]);
    assert_eq!(usage["total_tokens"], served["total_tokens"]);

    // Background work has its own traces, linked to the entry.
    let enrich = runs.iter().find(|r| r["name"] == "enrich" && r["parent_run_id"].is_null()).expect("an enrich trace");
    assert_eq!(enrich["extra"]["metadata"]["entry_id"], entry_id.as_str());
    let enrich_llm = runs.iter().find(|r| r["trace_id"] == enrich["id"] && r["run_type"] == "llm").unwrap();
    assert!(enrich_llm["outputs"]["usage_metadata"]["total_tokens"].as_u64().unwrap() > 0);
    // Embedding runs in batches: the batch's trace lists the entries it indexed.
    assert!(runs.iter().any(|r| r["name"] == "embed"
        && r["parent_run_id"].is_null()
        && r["extra"]["metadata"]["entry_ids"].as_array().is_some_and(|ids| ids.iter().any(|id| id == entry_id.as_str()))));

    // The family's spend is visible without LangSmith.
    let (_, usage) = app.get(&kim.token, "/v1/usage").await;
    let chat_row = usage["models"].as_array().unwrap().iter().find(|m| m["capability"] == "chat").unwrap().clone();
    let served_total: u64 = fake.usages().iter().map(|u| u["prompt_tokens"].as_u64().unwrap()).sum();
    assert_eq!(chat_row["input_tokens"].as_u64().unwrap(), served_total);
}

#[tokio::test]
async fn langsmith_outages_are_retried_and_never_touch_replies() {
    let fake = FakeOpenAi::start().await;
    let ls = FakeLangSmith::start().await;
    ls.fail_next(&[503, 429]);
    let app = traced_app(&fake, &ls).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let reply = app.chat(&kim, "Minji sang a song about rain.").await;
    assert_eq!(reply["kind"], "recorded");
    let runs = ls.wait_for(|runs| runs.iter().any(|r| r["name"] == "record" || r["name"] == "message")).await;
    assert!(!runs.is_empty());
    let batches = ls.batches();
    assert!(batches.len() >= 3, "a 503 and a 429, then the same batch again");
    assert_eq!(batches[0].1["post"], batches[2].1["post"], "a refused batch is resent, not lost");

    // Now LangSmith is down for good: replies are unaffected, the batch is retried then dropped and counted.
    ls.fail_always(503);
    let before = ls.batches().len();
    let reply = app.chat(&kim, "Minji drew the rain as purple stripes.").await;
    assert_eq!(reply["kind"], "recorded");
    for _ in 0..400 {
        let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        if metrics.contains("dadly_traces_dropped_total{reason=\"unreachable\"}") {
            let sent_after: Vec<_> = ls.batches().into_iter().skip(before).collect();
            assert!(sent_after.iter().all(|(_, b)| b["_accepted"] == false));
            assert!(sent_after.len() >= 5, "every batch is tried 5 times: {}", sent_after.len());
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("dropped runs were never counted");
}

async fn trace_text_after(marker: &str, content: bool) -> String {
    let app = TestApp::spawn_with(&[("DADLY_TRACE_CONTENT", if content { "true" } else { "false" })]).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let id = app.chat(&kim, &format!("Minji told us {marker} at breakfast")).await["entry_id"].as_str().unwrap().to_string();
    app.wait_ready(&kim, &id).await;
    let answer = app.chat(&kim, &format!("What did Minji say about {marker}?")).await;
    assert_eq!(source_ids(&answer), vec![id]);
    let dir = app.stop().await; // graceful stop flushes the trace file
    let mut text = String::new();
    for f in std::fs::read_dir(dir.path().join("traces")).unwrap() {
        text.push_str(&std::fs::read_to_string(f.unwrap().path()).unwrap());
    }
    text
}

#[tokio::test]
async fn the_privacy_switch_removes_every_byte_of_the_parents_text() {
    let marker = "zebulon marmalade";
    let open = trace_text_after(marker, true).await;
    assert!(open.contains(marker), "with content on, the text is traced (so this test can fail)");
    let private = trace_text_after(marker, false).await;
    assert!(!private.contains("zebulon") && !private.contains("marmalade") && !private.contains("breakfast"), "{private}");
    assert!(private.contains("[redacted len="), "structure is kept");
    let runs: Vec<Value> = private.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(runs.iter().any(|r| r["name"] == "retrieve" && r["outputs"]["documents"][0]["entry_id"].is_string()), "ids survive redaction");
}

#[tokio::test]
async fn queued_runs_are_flushed_to_langsmith_on_shutdown() {
    let fake = FakeOpenAi::start().await;
    let ls = FakeLangSmith::start().await;
    let app = traced_app(&fake, &ls).await;
    let kim = app.family("Kim", &[]).await;
    let reply = app.chat(&kim, "We built a blanket fort in the living room.").await;
    assert_eq!(reply["kind"], "recorded");
    // Stop at once: the batch interval has not passed, so only the shutdown flush can send it.
    app.stop().await;
    let runs = ls.runs();
    assert!(runs.iter().any(|r| r["name"] == "message" && r["parent_run_id"].is_null()), "the message's trace was flushed: {} runs", runs.len());
}
