//! The OpenAI-compatible path against a local fake server that speaks the
//! real JSON: structured-output enrichment, embeddings, routing, answers, and
//! outages (500, timeout, malformed JSON) that delay work but lose nothing.

mod common;

use std::time::Duration;

use common::fake_openai::{CHAT_MODEL, DIMS, EMBED_MODEL, FakeOpenAi, Fault};
use common::{TestApp, source_ids};
use serde_json::json;

/// Waits until the entry is searchable (enriched or not); the entry as the API shows it.
async fn wait_indexed(app: &TestApp, family: &common::Family, id: &str) -> serde_json::Value {
    for _ in 0..400 {
        let (_, v) = app.get(&family.token, &format!("/v1/entries/{id}")).await;
        if v["indexed"] == true {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("entry {id} never became searchable");
}

async fn app_with(fake: &FakeOpenAi) -> TestApp {
    let env = fake.env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::spawn_with(&pairs).await
}

#[tokio::test]
async fn entries_are_enriched_embedded_and_answered_by_the_model_server() {
    let fake = FakeOpenAi::start().await;
    let app = app_with(&fake).await;
    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Junho", &[])]).await;

    let tooth = app.chat(&kim, "Minji lost her first tooth today").await["entry_id"].as_str().unwrap().to_string();
    let lego = app.chat(&kim, "Junho built a lego castle with grandpa").await["entry_id"].as_str().unwrap().to_string();
    let ready = app.wait_ready(&kim, &tooth).await;
    app.wait_ready(&kim, &lego).await;

    let insights = &ready["insights"];
    assert_eq!(insights["model"], CHAT_MODEL);
    assert_eq!(insights["prompt_name"], "enrich");
    assert_eq!(insights["prompt_version"], "2026-11-26.1");
    assert_eq!(insights["summary"], "Model summary: Minji lost her first tooth today");
    assert_eq!(insights["topics"], json!(["milestone", "health"]));
    assert_eq!(insights["member_ids"], json!([kim.member("Minji").id]));

    let enrich = fake.chat_requests(Some("entry_insights"));
    assert_eq!(enrich.len(), 2, "one structured-output call per entry");
    let format = &enrich[0]["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["strict"], true);
    assert_eq!(format["json_schema"]["schema"]["required"], json!(["summary", "topics", "emotions", "members"]));
    assert_eq!(enrich[0]["model"], CHAT_MODEL);
    assert!(enrich.iter().any(|r| r["messages"][1]["content"].as_str().unwrap().contains("Minji (also 민지)")));

    // Embedding runs in batches: one call or two, depending on when each entry arrived (a
    // retry after a slow call may add one); what counts is that each entry's text went.
    let embeds = fake.requests("/v1/embeddings");
    let inputs: Vec<String> = embeds.iter().flat_map(|b| b["input"].as_array().cloned().unwrap_or_default()).filter_map(|i| i.as_str().map(String::from)).collect();
    for text in ["Minji lost her first tooth today", "Junho built a lego castle with grandpa"] {
        assert!(inputs.iter().any(|i| i == text), "{text} was embedded: {inputs:?}");
    }
    assert!(embeds.iter().all(|b| b["model"] == EMBED_MODEL));
    let stored = app.app_state.agent.store().load_vectors(kim.id, None, None).await.unwrap();
    assert!(stored.iter().all(|v| v.vector.len() == DIMS && v.model == EMBED_MODEL));

    let answer = app.chat(&kim, "When did Minji lose her first tooth?").await;
    assert_eq!(answer["kind"], "answered");
    assert_eq!(source_ids(&answer), vec![tooth.clone()], "{answer}");
    assert_eq!(answer["sources"][0]["cited"], true);
    assert!(answer["reply"].as_str().unwrap().starts_with("According to your journal: ("), "{answer}");
    let answer_call = fake.chat_requests(None).pop().expect("an answer call");
    let prompt = answer_call["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    assert!(prompt.contains("[1] (") && prompt.contains("Minji lost her first tooth today"), "{prompt}");
    assert!(!prompt.contains("lego"), "only retrieved entries reach the model: {prompt}");

    // An unclear message goes to the model to route.
    let unclear = app.chat(&kim, "pizza night").await;
    assert_eq!(unclear["kind"], "recorded");
    assert_eq!(fake.chat_requests(Some("route")).len(), 1);

    // Every call bounds what the model may write, so a model that loops
    // cannot hold a worker until the timeout.
    let bound = |schema: Option<&str>| fake.chat_requests(schema).iter().map(|r| r["max_completion_tokens"].as_u64()).collect::<Vec<_>>();
    assert!(bound(Some("entry_insights")).iter().all(|b| *b == Some(512)), "{:?}", bound(Some("entry_insights")));
    assert_eq!(bound(Some("route")), vec![Some(32)]);
    assert!(!bound(Some("query_plan")).is_empty() && bound(Some("query_plan")).iter().all(|b| *b == Some(256)));
    assert_eq!(answer_call["max_completion_tokens"], 1024);

    let (_, status) = app.get(&kim.token, "/v1/status").await;
    assert_eq!(status["offline"], false);
    assert_eq!(status["models"]["chat"], json!({"provider": "openai", "model": CHAT_MODEL, "reachable": true}));
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(&format!("dadly_model_tokens_total{{model=\"{CHAT_MODEL}\",direction=\"input\"}}")), "{metrics}");
}

#[tokio::test]
async fn model_outages_delay_enrichment_but_never_lose_or_duplicate_entries() {
    let fake = FakeOpenAi::start().await;
    // async-openai retries a 5xx three times in-process; a fourth makes the job fail and retry.
    let server_down = [Fault::ServerError, Fault::ServerError, Fault::ServerError, Fault::ServerError];
    fake.fail_next_enrich(&server_down);
    fake.fail_next_enrich(&[Fault::Hang(Duration::from_secs(3)), Fault::Malformed]);
    fake.fail_next_embed(&server_down);
    let app = app_with(&fake).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;

    let recorded = app.chat(&kim, "Minji lost her first tooth today").await;
    assert_eq!(recorded["kind"], "recorded", "the entry is stored before any model call");
    let id = recorded["entry_id"].as_str().unwrap().to_string();
    let (_, right_away) = app.get(&kim.token, &format!("/v1/entries/{id}")).await;
    assert_eq!(right_away["raw_text"], "Minji lost her first tooth today");

    let ready = app.wait_ready(&kim, &id).await;
    assert_eq!(ready["insights"]["model"], CHAT_MODEL);
    assert_eq!(fake.chat_requests(Some("entry_insights")).len(), 7, "4 × 500, a timeout, malformed JSON, then success");
    assert_eq!(fake.requests("/v1/embeddings").len(), 5, "4 × 500, then success");
    app.settle(&kim).await;
    let (_, status) = app.get(&kim.token, "/v1/status").await;
    assert_eq!(status["jobs"]["failed"], 0);
    assert_eq!(status["jobs"]["done"], 2);
    let (_, list) = app.get(&kim.token, "/v1/entries").await;
    assert_eq!(list["entries"].as_array().unwrap().len(), 1, "retries never duplicate the entry");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    // The 500s and the timeout are outages (no attempt spent); the malformed answer is the model's fault.
    assert!(metrics.contains("dadly_jobs_total{kind=\"enrich\",outcome=\"transient\"} 2"), "{metrics}");
    assert!(metrics.contains("dadly_jobs_total{kind=\"enrich\",outcome=\"retry\"} 1"), "{metrics}");
    assert!(metrics.contains("dadly_jobs_total{kind=\"embed\",outcome=\"transient\"} 1"), "{metrics}");
    assert!(metrics.contains("dadly_model_calls_total{capability=\"chat\",model=\"fake-gpt-1\",outcome=\"unavailable\"} 2"), "{metrics}");
}

#[tokio::test]
async fn an_outage_longer_than_the_retry_budget_still_ends_with_the_entry_searchable() {
    let fake = FakeOpenAi::start().await;
    // Twelve failed job attempts (each is 4 calls: async-openai retries a 5xx three
    // times), more than the 8 attempts a job has: an outage must not use them up.
    fake.fail_next_enrich(&vec![Fault::ServerError; 4 * 12]);
    fake.fail_next_embed(&vec![Fault::ServerError; 4 * 12]);
    let mut env = fake.env();
    env.push(("DADLY_JOB_BACKOFF_MAX_MS", "100".into()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&pairs).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;

    let id = app.chat(&kim, "Minji lost her first tooth today").await["entry_id"].as_str().unwrap().to_string();
    let ready = app.wait_ready(&kim, &id).await;
    assert_eq!(ready["insights"]["model"], CHAT_MODEL);
    assert_eq!(fake.chat_requests(Some("entry_insights")).len(), 4 * 12 + 1);
    let (_, status) = app.get(&kim.token, "/v1/status").await;
    assert_eq!(status["jobs"]["failed"], 0, "{status}");
    let answer = app.chat(&kim, "When did Minji lose her first tooth?").await;
    assert_eq!(source_ids(&answer).first(), Some(&id));
}

#[tokio::test]
async fn a_request_the_model_refuses_fails_at_once_instead_of_retrying() {
    let fake = FakeOpenAi::start().await;
    fake.fail_next_enrich(&[Fault::Rejected]);
    let app = app_with(&fake).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let id = app.chat(&kim, "Minji wrote a very long story").await["entry_id"].as_str().unwrap().to_string();
    app.settle(&kim).await;
    assert_eq!(fake.chat_requests(Some("entry_insights")).len(), 1, "a 400 is not retried");
    let (_, status) = app.get(&kim.token, "/v1/status").await;
    assert_eq!((status["jobs"]["failed"].as_i64(), status["jobs"]["done"].as_i64()), (Some(1), Some(1)), "{status}");
    let (_, entry) = app.get(&kim.token, &format!("/v1/entries/{id}")).await;
    assert_eq!(entry["indexed"], true, "embedding does not depend on enrichment");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("dadly_jobs_total{kind=\"enrich\",outcome=\"failed\"} 1"), "{metrics}");
}

#[tokio::test]
async fn a_long_entry_is_embedded_in_pieces_and_found_by_any_of_them() {
    let fake = FakeOpenAi::start().await;
    let mut env = fake.env();
    env.push(("DADLY_EMBEDDING_MAX_TOKENS", "300".into()));
    // The fake embeds bags of words: a 300-token piece shares few with a short question.
    env.push(("DADLY_MIN_SCORE", "0.05".into()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&pairs).await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    // Near the 10,000-character limit, Korean and English; the detail asked about is at the very end.
    let mut text = String::new();
    while text.chars().count() < 9_000 {
        text.push_str("민지는 오늘 유치원에서 친구들과 블록을 쌓고 노래를 불렀다. Minji built towers with her friends and sang songs. ");
    }
    text.push_str("At bedtime Minji whispered that a purple giraffe lives under her bed.");
    assert!(text.chars().count() <= 10_000);
    let (status, v) = app.post(&kim.token, "/v1/entries", json!({ "text": text, "occurred_at": "2026-11-20T20:00:00+09:00" })).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{v}");
    let id = v["entry_id"].as_str().unwrap().to_string();
    let ready = app.wait_ready(&kim, &id).await;
    assert_eq!(ready["indexed"], true);
    let embed_calls = fake.requests("/v1/embeddings");
    let inputs = embed_calls.last().unwrap()["input"].as_array().unwrap().len();
    assert!(inputs > 5, "one call with every piece ({inputs})");
    let answer = app.chat(&kim, "Where does the purple giraffe live?").await;
    assert_eq!(source_ids(&answer), vec![id.clone()], "found by its last piece, listed once: {answer}");
    let (_, status) = app.get(&kim.token, "/v1/status").await;
    assert_eq!(status["jobs"]["failed"], 0, "{status}");
}

#[tokio::test]
async fn readiness_and_status_say_when_a_model_server_is_down() {
    let fake = FakeOpenAi::start().await;
    let app = app_with(&fake).await;
    let r: serde_json::Value = app.http.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["status"], "ready");
    assert_eq!(r["models"], json!({ "chat": "up", "embeddings": "up", "transcription": "up" }));
    assert_eq!(r["backends"], json!({
        "store": { "backend": "sqlite", "state": "up" },
        "vector_index": { "backend": "embedded", "state": "up" },
        "blob_store": { "backend": "local", "state": "up" },
    }));
    assert_eq!((r["down"].clone(), r["degraded"].clone()), (json!([]), json!([])));

    // A model server nobody listens on: the service stays ready (entries are
    // kept and wait), and says which capability is down.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let app = TestApp::spawn_with(&[("OPENAI_BASE_URL", dead.as_str()), ("DADLY_EMBEDDING_DIMENSIONS", "64"), ("DADLY_MODEL_TIMEOUT_SECS", "1")]).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let r: serde_json::Value = r.json().await.unwrap();
    assert_eq!(r["status"], "degraded");
    assert_eq!(r["models"]["embeddings"], "down");
    assert_eq!(r["degraded"], json!(["chat", "embeddings", "transcription"]));
    assert_eq!(r["down"], json!([]));
    let recorded = app.chat(&kim, "/record Minji planted beans").await;
    assert_eq!(recorded["kind"], "recorded", "recording does not need the model server");
    let (_, status) = app.get(&kim.token, "/v1/status").await;
    assert_eq!(status["models"]["embeddings"]["reachable"], false, "{status}");
    assert!(status["models"]["embeddings"]["last_error"].as_str().unwrap().contains("unavailable"), "{status}");
    assert!(status["models"]["embeddings"]["down_since"].is_string());

    // An operator who wants a model outage to take the instance out of rotation says so.
    let strict = TestApp::spawn_with(&[("OPENAI_BASE_URL", dead.as_str()), ("DADLY_EMBEDDING_DIMENSIONS", "64"), ("DADLY_MODEL_TIMEOUT_SECS", "1"), ("DADLY_READY_REQUIRES_MODELS", "true")]).await;
    let r = strict.http.get(strict.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let r: serde_json::Value = r.json().await.unwrap();
    assert_eq!(r["down"], json!(["chat", "embeddings", "transcription"]), "{r}");
}

#[tokio::test]
async fn an_answer_survives_a_chat_model_outage_by_quoting_the_entries() {
    let fake = FakeOpenAi::start().await;
    let app = app_with(&fake).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let id = app.chat(&kim, "Minji lost her first tooth today").await["entry_id"].as_str().unwrap().to_string();
    app.wait_ready(&kim, &id).await;
    fake.fail_next_answer(&[Fault::ServerError, Fault::ServerError, Fault::ServerError, Fault::ServerError]);
    let answer = app.chat(&kim, "When did Minji lose her first tooth?").await;
    assert_eq!(answer["kind"], "answered");
    assert_eq!(source_ids(&answer), vec![id]);
    let reply = answer["reply"].as_str().unwrap();
    assert!(reply.contains("Minji lost her first tooth today") && reply.contains("unavailable right now"), "{reply}");
}

#[tokio::test]
async fn questions_get_a_clear_503_when_embeddings_are_down_and_recording_still_works() {
    let dead = TestApp::spawn_with(&[
        ("OPENAI_API_KEY", "sk-test-fake"),
        ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
        ("DADLY_EMBEDDING_MODEL", "fake-embed-1"),
        ("DADLY_EMBEDDING_DIMENSIONS", "64"),
        ("DADLY_MODEL_TIMEOUT_SECS", "1"),
    ])
    .await;
    let kim = dead.family("Kim", &[("Minji", &[])]).await;
    let recorded = dead.chat(&kim, "Minji went to bed early, tired from school.").await;
    assert_eq!(recorded["kind"], "recorded", "recording needs no model");
    let (status, body) = dead.post(&kim.token, "/v1/chat", json!({"message": "When did Minji lose her first tooth?"})).await;
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "without embeddings nothing can be retrieved: {body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let (_, entry) = dead.get(&kim.token, &format!("/v1/entries/{}", recorded["entry_id"].as_str().unwrap())).await;
    assert_eq!(entry["raw_text"], "Minji went to bed early, tired from school.");
}

/// A family server with a fast local embedding model and no chat model:
/// embeddings go to that server (with the prefixes an e5 model expects),
/// chat stays offline, and `/v1/status` says which is which.
#[tokio::test]
async fn only_an_embeddings_server_gives_real_embeddings_and_offline_chat() {
    let fake = FakeOpenAi::start().await;
    fake.keyless();
    let app = TestApp::spawn_with(&[
        ("OPENAI_EMBEDDINGS_BASE_URL", fake.base.as_str()),
        ("DADLY_EMBEDDING_MODEL", "multilingual-e5-small"),
        ("DADLY_EMBEDDING_DIMENSIONS", "64"),
        ("DADLY_MIN_SCORE", "0.2"),
    ])
    .await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let id = app.entry(&kim, "Minji rode her bike without training wheels", "2026-11-20T10:00:00Z").await;
    app.wait_ready(&kim, &id).await;
    let answer = app.chat(&kim, "When did Minji ride her bike without training wheels?").await;
    assert_eq!(source_ids(&answer), vec![id.clone()], "{answer}");
    let inputs: Vec<String> = fake.requests("/v1/embeddings").iter().flat_map(|r| r["input"].as_array().cloned().unwrap_or_default()).map(|i| i.as_str().unwrap().to_string()).collect();
    assert!(inputs.contains(&"passage: Minji rode her bike without training wheels".to_string()), "{inputs:?}");
    assert!(inputs.iter().any(|i| i.starts_with("query: ") && i.contains("training wheels")), "{inputs:?}");
    assert!(fake.chat_requests(None).is_empty(), "chat stayed offline");
    let (_, status) = app.get(&kim.token, "/v1/status").await;
    assert_eq!(status["models"]["chat"]["provider"], "offline", "{status}");
    assert_eq!(status["models"]["embeddings"]["provider"], "openai", "{status}");
    assert_eq!(status["models"]["embeddings"]["model"], "multilingual-e5-small", "{status}");
    assert_eq!(status["models"]["transcription"]["provider"], "none", "{status}");
}

/// With a real chat model, the question is planned by one structured call
/// (traced as its own run): "the last time" puts the latest matching entry first.
#[tokio::test]
async fn a_chat_model_plans_the_search_and_last_time_means_the_latest() {
    let fake = FakeOpenAi::start().await;
    let app = app_with(&fake).await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    let older = app.entry(&kim, "We took Minji to the zoo and saw the giraffes", "2025-05-10T10:00:00Z").await;
    let newer = app.entry(&kim, "Zoo trip again: Minji fed the goats at the zoo", "2026-08-02T10:00:00Z").await;
    let middle = app.entry(&kim, "Minji loved the penguins at the zoo", "2025-11-15T10:00:00Z").await;
    for id in [&older, &newer, &middle] {
        app.wait_ready(&kim, id).await;
    }
    let answer = app.chat(&kim, "When was the last time Minji went to the zoo?").await;
    assert_eq!(source_ids(&answer).first(), Some(&newer), "{answer}");
    let plans = fake.chat_requests(Some("query_plan"));
    assert_eq!(plans.len(), 1, "one planning call per question");
    assert!(plans[0]["messages"][0]["content"].as_str().unwrap().contains("Minji / 민지"), "the model sees the children");
    let first = app.chat(&kim, "When did Minji first go to the zoo?").await;
    assert_eq!(source_ids(&first).first(), Some(&older), "{first}");
    // The model's plan is what the search uses: a period only it resolves narrows the answer.
    let summer = app.entry(&kim, "Minji watched the sea lions at the zoo", "2025-08-10T10:00:00Z").await;
    app.wait_ready(&kim, &summer).await;
    let holidays = app.chat(&kim, "When was the last time Minji went to the zoo during the school holidays of 2025?").await;
    assert_eq!(source_ids(&holidays), vec![summer.clone()], "only the planned period counts: {holidays}");
}

#[tokio::test]
async fn answers_cite_their_sources_and_earlier_answers_are_never_shown_to_the_model() {
    let fake = FakeOpenAi::start().await;
    let app = app_with(&fake).await;
    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Junho", &["준호"])]).await;
    let minji_zoo = app.entry(&kim, "Minji fed the goats at the zoo", "2026-05-10T10:00:00Z").await;
    let junho_zoo = app.entry(&kim, "Junho rode the little train at the zoo", "2026-06-10T10:00:00Z").await;
    let junho_park = app.entry(&kim, "Junho played football in the park", "2026-07-10T10:00:00Z").await;
    for id in [&minji_zoo, &junho_zoo, &junho_park] {
        app.wait_ready(&kim, id).await;
    }
    let answers = |fake: &FakeOpenAi| fake.chat_requests(None).into_iter().filter(|b| b["stream"] != true).collect::<Vec<_>>();

    // An answer that cites nothing is asked again once, and the cited one is kept.
    fake.fail_next_answer(&[Fault::Uncited]);
    let first = app.chat(&kim, "What did Minji do at the zoo?").await;
    let reply = first["reply"].as_str().unwrap();
    assert!(reply.contains("[1]") && !reply.contains("lovely day"), "{reply}");
    assert_eq!(source_ids(&first).first(), Some(&minji_zoo), "{first}");
    let sent = answers(&fake);
    let reask = sent.last().unwrap()["messages"].as_array().unwrap().clone();
    assert_eq!(reask.len(), 4, "system, question, the uncited answer, the request to cite: {reask:?}");
    assert_eq!(reask[2]["content"], "Sounds like a lovely day out!");

    // A follow-up takes the earlier question's subject; no earlier answer reaches the model.
    let before = answers(&fake).len();
    let follow = app.chat(&kim, "and what about Junho?").await;
    assert_eq!(source_ids(&follow).first(), Some(&junho_zoo), "the zoo, for Junho: {follow}");
    let sent = answers(&fake);
    assert_eq!(sent.len(), before + 1);
    let messages = sent.last().unwrap()["messages"].as_array().unwrap().clone();
    assert!(messages.iter().all(|m| m["role"] != "assistant"), "no earlier answer in the prompt: {messages:?}");
    let user = messages.last().unwrap()["content"].as_str().unwrap();
    assert!(user.contains("earlier question: \"What did Minji do at the zoo?\""), "{user}");
    let plan = fake.chat_requests(Some("query_plan")).last().unwrap().clone();
    assert!(plan["messages"][1]["content"].as_str().unwrap().contains("What did Minji do at the zoo?"), "the planner sees the earlier question");

    // Uncited twice: the entries are quoted instead of passing on an ungrounded answer.
    fake.fail_next_answer(&[Fault::Uncited, Fault::Uncited]);
    let quoted = app.chat(&kim, "What did Junho do in the park?").await;
    let reply = quoted["reply"].as_str().unwrap();
    assert!(!reply.contains("lovely day") && reply.contains("Junho played football in the park"), "{reply}");
    assert!(quoted["sources"].as_array().unwrap().iter().any(|s| s["cited"] == true), "{quoted}");
}

/// The nearest entries do not always answer: a model that says so (ending
/// with `[0]`, as the prompt asks) gets "nothing found", with no sources,
/// first time or when asked again after an uncited answer.
#[tokio::test]
async fn a_model_that_finds_no_answer_in_the_sources_says_nothing_was_found() {
    let fake = FakeOpenAi::start().await;
    let app = app_with(&fake).await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    let piano = app.entry(&kim, "Minji played the piano at her first recital", "2026-05-10T10:00:00Z").await;
    app.wait_ready(&kim, &piano).await;
    let prompt = fake.chat_requests(None).into_iter().filter(|b| b["stream"] != true).count();

    fake.fail_next_answer(&[Fault::NothingThere]);
    let violin = app.chat(&kim, "What did Minji play at her first violin recital?").await;
    assert!(source_ids(&violin).is_empty() && violin["sources"].as_array().is_some_and(|s| s.is_empty()), "no sources: {violin}");
    assert_eq!(violin["reply"], "Your journal doesn't mention a violin recital.", "{violin}");
    // The model was shown the nearest entry and told how to say it has no answer.
    let sent = fake.chat_requests(None).into_iter().filter(|b| b["stream"] != true).collect::<Vec<_>>();
    assert_eq!(sent.len(), prompt + 1);
    let system = sent.last().unwrap()["messages"][0]["content"].as_str().unwrap().to_string();
    assert!(system.contains("[0]"), "{system}");
    assert!(sent.last().unwrap()["messages"][1]["content"].as_str().unwrap().contains("piano"));

    // Uncited first, then "nothing" when asked again: still nothing found, not the quoted entries.
    fake.fail_next_answer(&[Fault::Uncited, Fault::NothingThere]);
    let again = app.chat(&kim, "What did Minji play at her first violin recital?").await;
    assert!(source_ids(&again).is_empty(), "{again}");
    assert!(!again["reply"].as_str().unwrap().contains("piano"), "the entry is not quoted: {again}");

    // An answer that cites an entry is kept with its sources as before.
    let found = app.chat(&kim, "When was Minji's piano recital?").await;
    assert_eq!(source_ids(&found), vec![piano.clone()], "{found}");
    // One that also says what is missing keeps its sources, without the mark.
    fake.fail_next_answer(&[Fault::PartlyThere]);
    let partly = app.chat(&kim, "What did Minji play at her first violin recital?").await;
    assert_eq!(partly["reply"], "She played the piano [1]; nothing about a violin.", "{partly}");
    assert_eq!(source_ids(&partly).first(), Some(&piano), "{partly}");
}

/// A model's reply with NUL characters is passed on without them and kept as
/// chat memory on Postgres too (whose `text` cannot hold NUL): the follow-up
/// still knows what the earlier question was about.
#[tokio::test]
async fn a_reply_with_nul_characters_is_answered_and_remembered_on_postgres() {
    let Some(db) = dadly_testkit::services::postgres_database().await else { return };
    let fake = FakeOpenAi::start().await;
    let mut env = fake.env();
    env.push(("DATABASE_URL", db));
    let app = app_with_env(&env).await;
    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Junho", &["준호"])]).await;
    let zoo = app.entry(&kim, "Minji fed the goats at the zoo", "2026-05-10T10:00:00Z").await;
    app.wait_ready(&kim, &zoo).await;

    fake.fail_next_answer(&[Fault::Nul]);
    let first = app.chat(&kim, "What did Minji do at the zoo?").await;
    let reply = first["reply"].as_str().unwrap();
    assert_eq!(reply, "According to your journal: the zoo [1]", "{first}");
    assert_eq!(source_ids(&first), vec![zoo], "{first}");

    app.chat(&kim, "and what about Junho?").await;
    let plan = fake.chat_requests(Some("query_plan")).last().unwrap().clone();
    let asked = plan["messages"][1]["content"].as_str().unwrap();
    assert!(asked.contains("What did Minji do at the zoo?"), "the turn was remembered: {asked}");
}

#[tokio::test]
async fn entries_become_searchable_in_batches_while_enrichment_is_stuck() {
    let fake = FakeOpenAi::start().await;
    let app = app_with_env(&fake.env_with(&[("DADLY_MODEL_TIMEOUT_SECS", "5")])).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    // A chat model that hangs on every enrichment (both general workers stuck
    // in it), and an embeddings server slow on its first call.
    fake.fail_next_enrich(&vec![Fault::Hang(Duration::from_secs(60)); 40]);
    fake.fail_next_embed(&[Fault::Hang(Duration::from_secs(2))]);
    let first = app.entry(&kim, "Minji found a snail in the garden", "2026-10-01T10:00:00Z").await;
    // While that first call is out, more entries arrive: the next batch takes them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ids = vec![first];
    for i in 0..10 {
        ids.push(app.entry(&kim, &format!("Minji counted {i} ladybirds on the fence"), "2026-10-02T10:00:00Z").await);
    }
    for id in &ids {
        let v = wait_indexed(&app, &kim, id).await;
        assert!(v["insights"].is_null(), "searchable before enrichment finished: {v}");
    }
    let calls = fake.requests("/v1/embeddings");
    let sizes: Vec<usize> = calls.iter().map(|b| b["input"].as_array().map_or(1, |a| a.len())).collect();
    assert_eq!(sizes, vec![1, 10], "one call for the first entry, one for the ten that came meanwhile");
    let answer = app.chat(&kim, "How many ladybirds did Minji count?").await;
    assert!(!source_ids(&answer).is_empty(), "{answer}");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("dadly_index_lag_seconds_count 11"), "freshness is measured per entry");
}

#[tokio::test]
async fn an_embeddings_server_that_applies_prefixes_gets_the_role_instead() {
    let fake = FakeOpenAi::start().await;
    let mut env = fake.env_with(&[("DADLY_EMBEDDING_MODEL", "multilingual-e5-small")]);
    let plain = app_with_env(&env).await;
    env.push(("DADLY_EMBEDDING_INPUT_TYPE", "true".into()));
    let typed = app_with_env(&env).await;
    for (app, input_type) in [(&plain, false), (&typed, true)] {
        let kim = app.family("Kim", &[("Minji", &[])]).await;
        let id = app.entry(&kim, "Minji planted sunflowers", "2026-06-01T10:00:00Z").await;
        app.wait_ready(&kim, &id).await;
        let before = fake.requests("/v1/embeddings").len();
        let answer = app.chat(&kim, "What did Minji plant?").await;
        assert_eq!(source_ids(&answer), vec![id.clone()], "{answer}");
        let calls = fake.requests("/v1/embeddings");
        let entry_call = calls[..before].iter().rev().find(|b| b["input"].to_string().contains("sunflowers")).unwrap();
        let question_call = &calls[before];
        if input_type {
            assert_eq!((entry_call["input_type"].as_str(), question_call["input_type"].as_str()), (Some("passage"), Some("query")));
            assert_eq!(entry_call["input"][0], "Minji planted sunflowers", "no prefix in the text: the server adds it");
        } else {
            assert!(entry_call.get("input_type").is_none() && question_call.get("input_type").is_none());
            assert_eq!(entry_call["input"][0], "passage: Minji planted sunflowers");
            assert!(question_call["input"][0].as_str().unwrap().starts_with("query: "), "{question_call}");
        }
    }
}

async fn app_with_env(env: &[(&'static str, String)]) -> TestApp {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::spawn_with(&pairs).await
}

#[tokio::test]
async fn a_photo_is_described_by_the_vision_model_and_found_by_what_is_in_it() {
    let fake = FakeOpenAi::start().await;
    let mut env = fake.env();
    env.push(("DADLY_VISION_MODEL", "fake-vision-1".into()));
    let app = app_with_env(&env).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), b"seaside-pixels"].concat();
    let form = reqwest::multipart::Form::new()
        .text("text", "Minji on Saturday")
        .part("photo", reqwest::multipart::Part::bytes(png).file_name("p.png").mime_str("application/octet-stream").unwrap());
    let r = app.http.post(app.url("/v1/entries")).bearer_auth(&kim.token).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["entry_id"].as_str().unwrap().to_string();
    // The description lands and the entry is re-embedded with it.
    let mut described = false;
    for _ in 0..400 {
        let calls = fake.requests("/v1/embeddings");
        if calls.iter().any(|b| b["input"].to_string().contains("sandcastle")) {
            described = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(described, "the photo's description was embedded with its entry");
    app.settle(&kim).await;
    let vision = fake.chat_requests(None).into_iter().find(|b| b["model"] == "fake-vision-1").expect("a vision request");
    let user = &vision["messages"][1]["content"];
    assert_eq!(user[0]["type"], "text");
    assert!(user[0]["text"].as_str().unwrap().contains("Caption: Minji on Saturday"), "{user}");
    assert!(user[1]["image_url"]["url"].as_str().unwrap().starts_with("data:image/png;base64,"));
    let answer = app.chat(&kim, "Where did Minji build a sandcastle?").await;
    assert_eq!(source_ids(&answer), vec![id.clone()], "{answer}");
    let (_, status) = app.get(&kim.token, "/v1/status").await;
    assert_eq!(status["models"]["vision"]["model"], "fake-vision-1", "{status}");
    // Embedded twice (before and after the description), but one parent wait: freshness counts the first.
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("dadly_index_lag_seconds_count 1\n"), "{}", metrics.lines().filter(|l| l.contains("index_lag")).collect::<Vec<_>>().join("\n"));
    let (_, view) = app.get(&kim.token, &format!("/v1/entries/{id}")).await;
    assert_eq!(view["indexed"], true);
}

#[tokio::test]
async fn without_a_vision_model_a_photo_keeps_its_caption_and_the_status_says_so() {
    let app = TestApp::spawn_with(&[]).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), b"pixels"].concat();
    let form = reqwest::multipart::Form::new()
        .text("text", "Minji at the zoo")
        .part("photo", reqwest::multipart::Part::bytes(png).file_name("p.png").mime_str("application/octet-stream").unwrap());
    let r = app.http.post(app.url("/v1/entries")).bearer_auth(&kim.token).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 201);
    app.settle(&kim).await;
    let (_, status) = app.get(&kim.token, "/v1/status").await;
    assert_eq!((status["models"]["vision"]["provider"].as_str(), status["models"]["vision"]["model"].as_str()), (Some("none"), Some("captions only")), "{status}");
    assert_eq!(status["jobs"]["failed"], 0, "describing without a vision model is not a failure: {status}");
    let answer = app.chat(&kim, "When was Minji at the zoo?").await;
    assert!(!source_ids(&answer).is_empty(), "{answer}");
}

#[tokio::test]
async fn without_a_configured_floor_relevance_is_measured_on_the_embedder() {
    let fake = FakeOpenAi::start().await;
    let mut env = fake.env();
    env.retain(|(k, _)| *k != "DADLY_MIN_SCORE");
    let app = app_with_env(&env).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let id = app.entry(&kim, "Minji planted sunflowers in the garden", "2026-06-01T10:00:00Z").await;
    app.wait_ready(&kim, &id).await;
    let before = fake.requests("/v1/embeddings").len();
    let found = app.chat(&kim, "Which sunflowers did Minji plant in the garden?").await;
    assert_eq!(source_ids(&found), vec![id.clone()], "{found}");
    // The floor was measured once: the calibration texts went to the embedder, as questions and as entries.
    let calls = fake.requests("/v1/embeddings")[before..].to_vec();
    let calibration: Vec<_> = calls.iter().filter(|b| b["input"].to_string().contains("capital of Australia") || b["input"].to_string().contains("pillow fort")).collect();
    assert_eq!(calibration.len(), 2, "{calls:?}");
    let unrelated = app.chat(&kim, "What time does the hardware store close on holidays?").await;
    assert!(source_ids(&unrelated).is_empty(), "unrelated questions find nothing: {unrelated}");
    let again = fake.requests("/v1/embeddings")[before..].iter().filter(|b| b["input"].to_string().contains("capital of Australia")).count();
    assert_eq!(again, 1, "measured once, not per question");
}

#[tokio::test]
async fn enrichment_waiting_behind_a_slow_call_is_taken_as_one_batch() {
    let fake = FakeOpenAi::start().await;
    let app = app_with_env(&fake.env_with(&[("DADLY_MODEL_TIMEOUT_SECS", "5"), ("DADLY_WORKERS", "1")])).await;
    let kim = app.family("Kim", &[("Minji", &[]), ("Junho", &[])]).await;
    // The one general worker is held by a slow first enrichment while ten more entries arrive.
    fake.fail_next_enrich(&[Fault::Hang(Duration::from_millis(1500))]);
    let first = app.entry(&kim, "Minji found a snail in the garden", "2026-10-01T10:00:00Z").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ids = vec![first];
    for i in 0..10 {
        let who = if i % 2 == 0 { "Minji" } else { "Junho" };
        ids.push(app.entry(&kim, &format!("{who} counted {i} ladybirds on the fence"), "2026-10-02T10:00:00Z").await);
    }
    for id in &ids {
        let mut enriched = false;
        for _ in 0..400 {
            let (_, v) = app.get(&kim.token, &format!("/v1/entries/{id}")).await;
            if !v["insights"].is_null() {
                assert!(!v["insights"]["summary"].as_str().unwrap_or("").is_empty(), "{v}");
                enriched = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(enriched, "entry {id} was never enriched");
    }
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("dadly_job_batches_total{kind=\"enrich\"} 2"), "the first alone, then the ten that came meanwhile:\n{metrics}");
    assert!(metrics.contains("dadly_job_batch_jobs_total{kind=\"enrich\"} 11"), "{metrics}");
    // Each entry was asked about once, with its own text.
    let asked: Vec<String> = fake.chat_requests(Some("entry_insights")).iter().map(|r| r["messages"][1]["content"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(asked.len(), 11, "{asked:?}");
    for i in 0..10 {
        assert_eq!(asked.iter().filter(|text| text.contains(&format!("counted {i} ladybirds"))).count(), 1, "{asked:?}");
    }
}

#[tokio::test]
async fn a_batch_too_large_for_one_embeddings_call_is_sent_as_several() {
    use dadly_agent::models::{EMBED_CHARS_PER_CALL, EMBED_INPUTS_PER_CALL};
    let fake = FakeOpenAi::start().await;
    let app = app_with(&fake).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    // The first call is slow, so the long entries that arrive meanwhile wait
    // for the next batch together: more characters than one call may carry.
    fake.fail_next_embed(&[Fault::Hang(Duration::from_secs(2))]);
    let mut ids = vec![app.entry(&kim, "Minji found a snail in the garden", "2026-10-01T10:00:00Z").await];
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..30 {
        let day: String = (0..600).map(|j| format!("민지 {i} {j} ")).collect::<String>().chars().take(8_900).collect();
        ids.push(app.entry(&kim, &format!("Minji's long day number{i}xyz. {day}"), "2026-10-02T10:00:00Z").await);
    }
    for id in &ids {
        wait_indexed(&app, &kim, id).await;
    }
    let calls = fake.requests("/v1/embeddings");
    let sizes: Vec<(usize, usize)> = calls
        .iter()
        .map(|b| {
            let inputs = b["input"].as_array().cloned().unwrap_or_default();
            (inputs.len(), inputs.iter().map(|i| i.as_str().unwrap_or("").chars().count()).sum())
        })
        .collect();
    assert!(sizes.iter().all(|&(n, chars)| n <= EMBED_INPUTS_PER_CALL && chars <= EMBED_CHARS_PER_CALL), "{sizes:?}");
    let total: usize = sizes[1..].iter().map(|s| s.1).sum();
    assert!(total > EMBED_CHARS_PER_CALL, "the test's batch needs more than one call: {sizes:?}");
    assert!(sizes.len() >= 3, "the first entry's call, then the batch in at least two: {sizes:?}");
    // Every piece came back to its own entry: each long entry is found by its own word.
    let answer = app.chat(&kim, "When was Minji's long day number7xyz?").await;
    assert_eq!(source_ids(&answer).first(), Some(&ids[8]), "{answer}");
}

#[tokio::test]
async fn an_answer_cut_at_its_output_bound_is_marked_counted_and_traced() {
    let fake = FakeOpenAi::start().await;
    let app = app_with(&fake).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let id = app.entry(&kim, "Minji went to the zoo and saw a giraffe", "2026-10-01T10:00:00Z").await;
    app.wait_ready(&kim, &id).await;
    fake.fail_next_answer(&[Fault::Truncated]);
    let answer = app.chat(&kim, "What did Minji do at the zoo?").await;
    let reply = answer["reply"].as_str().unwrap();
    assert!(reply.ends_with("and then she…"), "a cut answer says so: {reply}");
    assert!(!source_ids(&answer).is_empty(), "{answer}");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("dadly_model_truncated_total{task=\"answer\"} 1"), "{}", metrics.lines().filter(|l| l.contains("truncated")).collect::<Vec<_>>().join("\n"));
    // An answer that ended by itself is left as it is.
    let whole = app.chat(&kim, "What did Minji do at the zoo?").await;
    assert!(!whole["reply"].as_str().unwrap().ends_with('…'), "{whole}");
}

#[tokio::test]
async fn a_server_that_refuses_max_completion_tokens_gets_max_tokens_from_then_on() {
    let fake = FakeOpenAi::start().await;
    fake.refuse_max_completion_tokens();
    let app = app_with(&fake).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let id = app.entry(&kim, "Minji went to the zoo and saw a giraffe", "2026-10-01T10:00:00Z").await;
    // The enrichment that met the refusal is not lost: it is asked again with max_tokens.
    let ready = app.wait_ready(&kim, &id).await;
    assert!(ready["insights"]["summary"].as_str().unwrap_or("").starts_with("Model summary"), "{ready}");
    let answer = app.chat(&kim, "What did Minji do at the zoo?").await;
    assert!(answer["reply"].as_str().unwrap().contains("[1]"), "answered by the model: {answer}");
    let calls = fake.requests("/v1/chat/completions");
    let refused = calls.iter().filter(|b| b.get("max_completion_tokens").is_some()).count();
    assert_eq!(refused, 1, "refused once, then remembered");
    let bounded: Vec<u64> = calls.iter().filter_map(|b| b["max_tokens"].as_u64()).collect();
    assert_eq!(bounded.len(), calls.len() - 1, "every other call is bounded with max_tokens");
    assert!(bounded.contains(&1024) && bounded.contains(&512), "answer and enrichment bounds: {bounded:?}");
}

/// A count the model planned ("how many", a period only it resolves) is
/// taken over the period's entries about its topic, and the answer model is
/// told the numbered entries are all that was found, oldest first; a lookup
/// is not.
#[tokio::test]
async fn a_counted_question_tells_the_model_its_sources_are_the_whole_count() {
    let fake = FakeOpenAi::start().await;
    let app = app_with(&fake).await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    let first = app.entry(&kim, "Minji lost a tooth at breakfast", "2025-07-20T10:00:00Z").await;
    let apple = app.entry(&kim, "Minji ate a whole apple at breakfast", "2025-08-01T10:00:00Z").await;
    let second = app.entry(&kim, "Minji lost another tooth, the top one", "2025-08-12T10:00:00Z").await;
    let later = app.entry(&kim, "Minji lost a tooth in the autumn", "2025-10-02T10:00:00Z").await;
    for id in [&first, &apple, &second, &later] {
        wait_indexed(&app, &kim, id).await;
    }
    let hint = "every entry found about this in that period";
    let last_answer = |fake: &FakeOpenAi| fake.chat_requests(None).into_iter().rev().find(|b| b["response_format"].is_null()).expect("an answer call");
    let answer = app.chat(&kim, "How many times did Minji lose a tooth during the school holidays of 2025?").await;
    assert_eq!(source_ids(&answer), vec![first, second], "the period's tooth entries, oldest first: {answer}");
    let asked = last_answer(&fake);
    let user = asked["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string();
    assert!(user.contains(hint), "{user}");
    app.chat(&kim, "What did Minji eat for breakfast?").await;
    let asked = last_answer(&fake);
    assert!(!asked["messages"].to_string().contains(hint), "a lookup is no count: {asked}");
}
