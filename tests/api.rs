//! The HTTP API end to end on the embedded defaults: the real app on a random
//! port, a real HTTP client, SQLite, the embedded index and offline models.

mod common;

use common::{TestApp, source_ids};
use reqwest::StatusCode;
use serde_json::{Value, json};

const NOW: &str = "2026-11-26T20:00:00+09:00";

#[tokio::test]
async fn recorded_statements_are_answered_with_citations() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Junho", &["준호"])]).await;

    let tooth = app.chat_at(&kim, "Minji lost her first tooth today", Some(NOW)).await;
    assert_eq!(tooth["kind"], "recorded");
    assert_eq!(tooth["entry"]["raw_text"], "Minji lost her first tooth today");
    assert_eq!(tooth["entry"]["member_ids"], json!([kim.member("Minji").id]));
    assert!(tooth["entry"]["occurred_at"].as_str().unwrap().starts_with("2026-11-26T11:00:00"));
    let bike = app.chat_at(&kim, "준호가 어제 처음 자전거를 탔다", Some(NOW)).await;
    assert_eq!(bike["kind"], "recorded");
    assert_eq!(bike["entry"]["member_ids"], json!([kim.member("Junho").id]));
    assert_eq!(bike["entry"]["occurred_at"], "2026-11-25T03:00:00Z", "yesterday at local noon (+09:00)");
    assert!(bike["reply"].as_str().unwrap().contains("기록"), "a Korean message gets a Korean reply: {}", bike["reply"]);
    let lego = app.chat_at(&kim, "Junho built a huge lego castle with grandpa", Some(NOW)).await;
    let ids: Vec<String> = [&tooth, &bike, &lego].iter().map(|v| v["entry_id"].as_str().unwrap().to_string()).collect();
    for id in &ids {
        app.wait_ready(&kim, id).await;
    }

    let answer = app.chat_at(&kim, "When did Minji lose her first tooth?", Some(NOW)).await;
    assert_eq!(answer["kind"], "answered");
    assert_eq!(source_ids(&answer), vec![ids[0].clone()], "{answer}");
    assert_eq!(answer["sources"][0]["cited"], true);
    assert!(answer["sources"][0]["score"].as_f64().unwrap() > 0.0);
    assert!(answer["reply"].as_str().unwrap().contains("Minji lost her first tooth today"));

    let answer = app.chat_at(&kim, "준호 자전거 언제 탔지?", Some(NOW)).await;
    assert_eq!(answer["kind"], "answered");
    assert_eq!(source_ids(&answer), vec![ids[1].clone()], "{answer}");
    assert!(answer["sources"][0]["occurred_at"].as_str().unwrap().starts_with("2026-11-25"));

    let nothing = app.chat_at(&kim, "What did Junho eat at the zoo?", Some(NOW)).await;
    assert_eq!(nothing["kind"], "answered");
    assert!(source_ids(&nothing).is_empty(), "{nothing}");
    assert!(nothing["reply"].as_str().unwrap().contains("couldn't find"), "{nothing}");
}

#[tokio::test]
async fn time_bounded_and_per_child_questions_filter_entries() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Junho", &["준호"])]).await;
    let oct_paint = app.entry(&kim, "Minji painted a rainbow at school", "2026-10-05T10:00:00+09:00").await;
    let oct_fever = app.entry(&kim, "Junho had a fever and stayed home", "2026-10-20T10:00:00+09:00").await;
    let nov_paint = app.entry(&kim, "Minji painted a dragon at school", "2026-11-10T10:00:00+09:00").await;
    let nov_swim = app.entry(&kim, "Minji went swimming with her class", "2026-11-20T10:00:00+09:00").await;
    // Names no child: about the whole family, so about each child too.
    let nov_fort = app.entry(&kim, "Rainy Sunday, built a blanket fort in the living room and read stories inside", "2026-11-15T10:00:00+09:00").await;
    for id in [&oct_paint, &oct_fever, &nov_paint, &nov_swim, &nov_fort] {
        app.wait_ready(&kim, id).await;
    }

    let in_october = app.chat_at(&kim, "What did Minji paint in October?", Some(NOW)).await;
    assert_eq!(source_ids(&in_october), vec![oct_paint.clone()], "{in_october}");
    let last_month = app.chat_at(&kim, "What did Minji paint last month?", Some(NOW)).await;
    assert_eq!(source_ids(&last_month), vec![oct_paint.clone()], "{last_month}");
    let unbounded = app.chat_at(&kim, "What did Minji paint at school?", Some(NOW)).await;
    let mut both = source_ids(&unbounded);
    both.sort();
    let mut expected = vec![oct_paint.clone(), nov_paint.clone()];
    expected.sort();
    assert_eq!(both, expected, "{unbounded}");

    // Only a child and a period: every entry in it counts, newest first,
    // the family's own entries (no child named) with the child's.
    let this_month = app.chat_at(&kim, "What did Minji do this month?", Some(NOW)).await;
    assert_eq!(source_ids(&this_month), vec![nov_swim.clone(), nov_fort.clone(), nov_paint.clone()], "{this_month}");
    let korean_month = app.chat_at(&kim, "이번 달에 민지는 뭐 했어?", Some(NOW)).await;
    assert_eq!(source_ids(&korean_month), vec![nov_swim.clone(), nov_fort.clone(), nov_paint.clone()], "{korean_month}");
    let junho = app.chat_at(&kim, "What did Junho do last month?", Some(NOW)).await;
    assert_eq!(source_ids(&junho), vec![oct_fever.clone()], "{junho}");
    let korean = app.chat_at(&kim, "지난달 준호는 뭐 했지?", Some(NOW)).await;
    assert_eq!(source_ids(&korean), vec![oct_fever.clone()], "{korean}");
    let empty_period = app.chat_at(&kim, "What did Junho do last week?", Some(NOW)).await;
    assert!(source_ids(&empty_period).is_empty(), "{empty_period}");
    assert!(empty_period["reply"].as_str().unwrap().contains("for that period"));
}

#[tokio::test]
async fn families_never_see_each_others_entries() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    let lee = app.family("Lee", &[("Sora", &[])]).await;
    let secret = app.chat(&kim, "Minji is scared of the dark and sleeps with a dinosaur lamp").await;
    let secret_id = secret["entry_id"].as_str().unwrap().to_string();
    app.wait_ready(&kim, &secret_id).await;
    let lee_entry = app.chat(&lee, "Sora is scared of thunder").await["entry_id"].as_str().unwrap().to_string();
    app.wait_ready(&lee, &lee_entry).await;

    let answer = app.chat(&lee, "Who sleeps with a dinosaur lamp because of the dark?").await;
    assert!(!source_ids(&answer).contains(&secret_id), "{answer}");
    assert!(!answer["reply"].as_str().unwrap().contains("dinosaur lamp"));
    let answer = app.chat(&lee, "Who is scared?").await;
    assert_eq!(source_ids(&answer), vec![lee_entry.clone()], "{answer}");

    let path = format!("/v1/entries/{secret_id}");
    assert_eq!(app.get(&lee.token, &path).await.0, StatusCode::NOT_FOUND);
    let patch = app.http.patch(app.url(&path)).bearer_auth(&lee.token).json(&json!({"text": "hijacked"})).send().await.unwrap();
    assert_eq!(patch.status(), StatusCode::NOT_FOUND);
    let delete = app.http.delete(app.url(&path)).bearer_auth(&lee.token).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::NOT_FOUND);
    let (_, list) = app.get(&lee.token, "/v1/entries").await;
    assert_eq!(list["entries"].as_array().unwrap().len(), 1);
    assert_eq!(list["entries"][0]["id"], lee_entry);
    let minji = kim.member("Minji").id;
    let (status, body) = app.post(&lee.token, "/v1/entries", json!({"text": "borrowed child", "member_ids": [minji]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(app.get(&lee.token, &format!("/v1/entries?member={minji}")).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, members) = app.get(&lee.token, "/v1/members").await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    let (_, export) = app.get(&lee.token, "/v1/export?format=json").await;
    assert_eq!(export["entries"].as_array().unwrap().len(), 1, "an export holds only the family's own entries");
    assert!(!export.to_string().contains("dinosaur lamp"));
    let (_, kim_export) = app.get(&kim.token, "/v1/export?format=json").await;
    assert!(kim_export.to_string().contains("dinosaur lamp"));

    let (status, still) = app.get(&kim.token, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(still["raw_text"], "Minji is scared of the dark and sleeps with a dinosaur lamp");
    assert_eq!(still["version"], 1);
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let chat = app.url("/v1/chat");
    let error_code = |v: &Value| v["error"]["code"].as_str().unwrap_or("").to_string();

    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (app.http.post(&chat).bearer_auth(&kim.token).json(&json!({"message": ""})), StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        (app.http.post(&chat).bearer_auth(&kim.token).json(&json!({"message": "   \n "})), StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        (app.http.post(&chat).bearer_auth(&kim.token).json(&json!({"message": "가".repeat(20_000)})), StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        (app.http.post(&chat).bearer_auth(&kim.token).json(&json!({"message": "hi", "family_id": "x"})), StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        (app.http.post(&chat).bearer_auth(&kim.token).json(&json!({"text": "wrong field"})), StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        (app.http.post(&chat).bearer_auth(&kim.token).header("content-type", "application/json").body("{not json"), StatusCode::BAD_REQUEST, "bad_request"),
        (app.http.post(&chat).bearer_auth(&kim.token).header("content-type", "application/json").body(vec![b'{', b'"', b'm', 0xff, 0xfe, b'"', b'}']), StatusCode::BAD_REQUEST, "bad_request"),
        (app.http.post(&chat).bearer_auth(&kim.token).body("message=hi"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (app.http.post(&chat).bearer_auth(&kim.token).header("content-type", "application/json").body(vec![b' '; 300 * 1024]), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        (app.http.post(&chat).json(&json!({"message": "hi"})), StatusCode::UNAUTHORIZED, "unauthorized"),
        (app.http.post(&chat).bearer_auth("garbage").json(&json!({"message": "hi"})), StatusCode::UNAUTHORIZED, "unauthorized"),
        (app.http.post(&chat).header("authorization", "Basic abc").json(&json!({"message": "hi"})), StatusCode::UNAUTHORIZED, "unauthorized"),
        (app.http.post(&chat).bearer_auth(app.app_state.auth.mint(kim.user_id, chrono::Duration::hours(-2))).json(&json!({"message": "hi"})), StatusCode::UNAUTHORIZED, "unauthorized"),
        (app.http.post(&chat).bearer_auth(app.app_state.auth.mint(uuid::Uuid::now_v7(), chrono::Duration::hours(1))).json(&json!({"message": "hi"})), StatusCode::UNAUTHORIZED, "unauthorized"),
        (app.http.get(app.url("/v1/entries/not-a-uuid")).bearer_auth(&kim.token), StatusCode::BAD_REQUEST, "bad_request"),
        (app.http.get(app.url(&format!("/v1/entries/{}", uuid::Uuid::now_v7()))).bearer_auth(&kim.token), StatusCode::NOT_FOUND, "not_found"),
        (app.http.get(app.url("/v1/entries?limit=0")).bearer_auth(&kim.token), StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        (app.http.get(app.url("/v1/entries?from=yesterday")).bearer_auth(&kim.token), StatusCode::BAD_REQUEST, "bad_request"),
        (app.http.get(app.url("/v1/entries?cursor=zzz")).bearer_auth(&kim.token), StatusCode::BAD_REQUEST, "bad_request"),
        (app.http.get(app.url("/v1/entries?colour=red")).bearer_auth(&kim.token), StatusCode::BAD_REQUEST, "bad_request"),
        (app.http.post(app.url("/v1/entries")).bearer_auth(&kim.token).json(&json!({"text": "x", "occurred_at": "last tuesday"})), StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        (app.http.post(app.url("/v1/entries")).bearer_auth(&kim.token).json(&json!({"text": "x", "source": "telegram"})), StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        (app.http.post(app.url("/v1/entries")).bearer_auth(&kim.token).json(&json!({"text": "x", "member_ids": [uuid::Uuid::now_v7()]})), StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        (app.http.post(app.url("/v1/members")).bearer_auth(&kim.token).json(&json!({"name": " "})), StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        (app.http.get(app.url("/v1/nope")).bearer_auth(&kim.token), StatusCode::NOT_FOUND, "not_found"),
    ];
    for (i, (request, status, code)) in cases.into_iter().enumerate() {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "case {i}");
        let body: Value = response.json().await.unwrap_or_else(|e| panic!("case {i}: body is not JSON: {e}"));
        assert_eq!(error_code(&body), code, "case {i}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty(), "case {i}");
    }

    let (_, list) = app.get(&kim.token, "/v1/entries").await;
    assert_eq!(list["entries"], json!([]), "nothing was half-written");
    let (_, status) = app.get(&kim.token, "/v1/status").await;
    assert_eq!(status["jobs"], json!({"queued": 0, "running": 0, "done": 0, "failed": 0}));
    let (_, members) = app.get(&kim.token, "/v1/members").await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn editing_keeps_history_and_recomputes_insights_and_vectors() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &[]), ("Junho", &[])]).await;
    let id = app.chat(&kim, "Minji planted tomatoes in the garden").await["entry_id"].as_str().unwrap().to_string();
    let v1 = app.wait_ready(&kim, &id).await;
    assert_eq!(v1["insights"]["entry_version"], 1);

    let r = app.http.patch(app.url(&format!("/v1/entries/{id}"))).bearer_auth(&kim.token).json(&json!({"text": "Junho visited the aquarium and saw sharks"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let patched: Value = r.json().await.unwrap();
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["raw_text"], "Junho visited the aquarium and saw sharks");
    assert_eq!(patched["member_ids"], json!([kim.member("Junho").id]), "children are re-detected from the new text");
    assert_eq!(patched["history"][0]["raw_text"], "Minji planted tomatoes in the garden");

    let v2 = app.wait_ready(&kim, &id).await;
    assert_eq!(v2["insights"]["entry_version"], 2);
    assert!(v2["insights"]["topics"].as_array().unwrap().contains(&json!("outing")), "{v2}");
    let sharks = app.chat(&kim, "When did we see sharks at the aquarium?").await;
    assert_eq!(source_ids(&sharks), vec![id.clone()]);
    let tomatoes = app.chat(&kim, "When were the tomatoes planted in the garden?").await;
    assert!(source_ids(&tomatoes).is_empty(), "the old text is no longer retrieved: {tomatoes}");
    let (_, list) = app.get(&kim.token, "/v1/entries").await;
    assert_eq!(list["entries"].as_array().unwrap().len(), 1, "an edit does not duplicate the entry");
}

#[tokio::test]
async fn deleting_removes_the_entry_its_insight_and_its_vector() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let keep = app.chat(&kim, "Minji baked banana bread with grandma").await["entry_id"].as_str().unwrap().to_string();
    let gone = app.chat(&kim, "Minji baked chocolate cookies for school").await["entry_id"].as_str().unwrap().to_string();
    app.wait_ready(&kim, &keep).await;
    app.wait_ready(&kim, &gone).await;

    let r = app.http.delete(app.url(&format!("/v1/entries/{gone}"))).bearer_auth(&kim.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get(&kim.token, &format!("/v1/entries/{gone}")).await.0, StatusCode::NOT_FOUND);
    app.settle(&kim).await;
    let answer = app.chat(&kim, "What did Minji bake?").await;
    assert_eq!(source_ids(&answer), vec![keep.clone()], "{answer}");
    let vectors = app.app_state.agent.store().load_vectors(kim.id, None, None).await.unwrap();
    assert_eq!(vectors.iter().map(|v| v.entry_id.to_string()).collect::<Vec<_>>(), vec![keep]);
    assert!(app.app_state.agent.store().get_insight(kim.id, gone.parse().unwrap()).await.unwrap().is_none());
}

#[tokio::test]
async fn entries_are_listed_with_filters_and_cursor_pages() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &[]), ("Junho", &[])]).await;
    let texts = [
        ("Minji laughed all through her school play", "2026-11-01T09:00:00Z"),
        ("Junho cried at the dentist", "2026-11-02T09:00:00Z"),
        ("Minji read a whole book by herself", "2026-11-03T09:00:00Z"),
        ("Junho was happy at the park", "2026-11-04T09:00:00Z"),
        ("We all had dinner at grandma's", "2026-11-05T09:00:00Z"),
    ];
    let mut ids = Vec::new();
    for (t, at) in texts {
        ids.push(app.entry(&kim, t, at).await);
    }
    app.settle(&kim).await;

    let mut seen = Vec::new();
    let mut path = "/v1/entries?limit=2".to_string();
    loop {
        let (status, page) = app.get(&kim.token, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["entries"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/entries?limit=2&cursor={c}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let junho = kim.member("Junho").id;
    let (_, by_member) = app.get(&kim.token, &format!("/v1/entries?member={junho}")).await;
    let got: Vec<&str> = by_member["entries"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(got, vec![ids[3].as_str(), ids[1].as_str()]);
    let (_, joy) = app.get(&kim.token, "/v1/entries?emotion=joy").await;
    let got: Vec<&str> = joy["entries"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(got, vec![ids[3].as_str(), ids[0].as_str()]);
    let (_, school) = app.get(&kim.token, "/v1/entries?topic=School").await;
    assert_eq!(school["entries"].as_array().unwrap().len(), 1);
    let (_, range) = app.get(&kim.token, "/v1/entries?from=2026-11-02&to=2026-11-04").await;
    let got: Vec<&str> = range["entries"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[1].as_str()]);
}

#[tokio::test]
async fn members_can_be_listed_and_added() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &["민지"])]).await;
    let (status, junho) = app.post(&kim.token, "/v1/members", json!({"name": "Junho", "aliases": ["준호"], "birth_date": "2020-05-01"})).await;
    assert_eq!(status, StatusCode::CREATED, "{junho}");
    assert_eq!(junho["aliases"], json!(["준호"]));
    let (status, dup) = app.post(&kim.token, "/v1/members", json!({"name": "junho"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{dup}");
    let (_, list) = app.get(&kim.token, "/v1/members").await;
    let names: Vec<&str> = list["members"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["Minji", "Junho"]);
    let recorded = app.chat(&kim, "준호가 오늘 노래를 불렀다").await;
    assert_eq!(recorded["entry"]["member_ids"], json!([junho["id"]]), "a new child's alias is recognised at once");
}

#[tokio::test]
async fn vectors_persist_across_restarts() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let id = app.chat(&kim, "Minji learned to whistle today").await["entry_id"].as_str().unwrap().to_string();
    app.wait_ready(&kim, &id).await;
    // (An entry is searchable a moment before its batch's jobs are marked done.)
    app.settle(&kim).await;
    let token = kim.token.clone();
    let (_, before) = app.get(&token, "/v1/status").await;
    let dir = app.stop().await;

    let app = TestApp::spawn_in(dir, &[]).await;
    let answer = app.chat(&kim, "When did Minji learn to whistle?").await;
    assert_eq!(source_ids(&answer), vec![id]);
    let (_, after) = app.get(&token, "/v1/status").await;
    assert_eq!(before["jobs"], after["jobs"], "nothing was re-embedded");
}

#[tokio::test]
async fn health_readiness_metrics_and_status_are_served() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[]).await;
    app.chat(&kim, "We went to the beach and built sandcastles").await;
    app.settle(&kim).await;
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.http.get(app.url("/readyz")).send().await.unwrap().status(), StatusCode::OK);
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("dadly_entries_recorded_total{source=\"web\"} 1"), "{metrics}");
    assert!(metrics.contains("dadly_http_requests_total{method=\"POST\",route=\"/v1/chat\",status=\"200\"} 1"), "{metrics}");
    let (status, body) = app.get(&kim.token, "/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["offline"], true);
    assert_eq!(body["models"]["chat"]["provider"], "offline");
    assert_eq!(body["store"], "sqlite");
    assert_eq!(body["vector_index"], "embedded");
    assert_eq!(app.http.get(app.url("/v1/status")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert!(metrics.contains("dadly_jobs{state=\"queued\"}") && metrics.contains("dadly_jobs_oldest_queued_seconds"), "{metrics}");
    // Latency histograms per route and per model call; the index's memory.
    assert!(metrics.contains("# TYPE dadly_http_request_duration_seconds histogram"), "{metrics}");
    assert!(metrics.contains("dadly_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/chat\"} 1"), "{metrics}");
    assert!(metrics.contains("dadly_model_call_duration_seconds_bucket{capability=\"embeddings\""), "{metrics}");
    assert!(metrics.contains("# TYPE dadly_index_cache_bytes gauge"), "{metrics}");
    assert!(metrics.contains("dadly_index_loads_total "), "{metrics}");
}

#[tokio::test]
async fn readiness_names_the_backend_that_is_down() {
    let app = TestApp::spawn().await;
    let r: Value = app.http.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["backends"]["blob_store"], json!({ "backend": "local", "state": "up" }), "{r}");
    // The media folder disappears (a volume that came unmounted).
    let media = app.dir.path().join("media");
    std::fs::remove_dir_all(&media).unwrap();
    std::fs::write(&media, b"not a folder").unwrap();
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r: Value = r.json().await.unwrap();
    assert_eq!(r["status"], "unavailable");
    assert_eq!(r["down"], json!(["blob_store"]), "{r}");
    assert_eq!(r["backends"]["blob_store"]["state"], "down");
    assert_eq!(r["backends"]["store"]["state"], "up");
}

#[tokio::test]
async fn metrics_can_require_a_bearer_token() {
    let app = TestApp::spawn_with(&[("DADLY_METRICS_TOKEN", "scrape-secret-1")]).await;
    let get = |token: Option<&str>| {
        let mut r = app.http.get(app.url("/metrics"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    for refused in [None, Some("scrape-secret-2"), Some("scrape-secret-")] {
        let r = get(refused).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{refused:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let r = get(Some("scrape-secret-1")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("dadly_http_requests_total"));
}

#[tokio::test]
async fn local_media_is_served_only_through_valid_unexpired_signed_links() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[]).await;
    let lee = app.family("Lee", &[]).await;
    let blobs = app.app_state.local_blobs.clone().expect("embedded setup serves local media");
    use dadly_agent::blob::BlobStore;
    let mine = blobs.put(kim.id, b"kim photo".to_vec(), "image/jpeg", "jpg").await.unwrap();
    let theirs = blobs.put(lee.id, b"lee photo".to_vec(), "image/jpeg", "jpg").await.unwrap();
    let url = blobs.signed_url(kim.id, &mine.key, std::time::Duration::from_secs(60)).await.unwrap();
    let path = url.split_once("/media/").map(|(_, p)| format!("/media/{p}")).unwrap();

    let r = app.http.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"kim photo");

    let other_object = path.replace(&mine.key, &theirs.key);
    let expired_sig = path.replace("expires=", "expires=1");
    let no_sig = path.split('?').next().unwrap().to_string();
    for (bad, status) in [(other_object, 403), (expired_sig, 403), (path.replace("sig=", "sig=00"), 403), (no_sig, 400)] {
        let r = app.http.get(app.url(&bad)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"]["code"].is_string());
    }
    let short = blobs.signed_url(kim.id, &mine.key, std::time::Duration::from_secs(1)).await.unwrap();
    let short_path = short.split_once("/media/").map(|(_, p)| format!("/media/{p}")).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = app.http.get(app.url(&short_path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn concurrent_writes_beside_busy_workers_never_fail() {
    // Deletes and edits read before they write; beside workers writing
    // insights and vectors they once failed with SQLite's "database is locked".
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    let mut ids = Vec::new();
    for i in 0..24 {
        ids.push(app.entry(&kim, &format!("Minji drew picture number {i} today"), "2026-11-01T10:00:00Z").await);
    }
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (http, token, url) = (app.http.clone(), kim.token.clone(), app.url(&format!("/v1/entries/{id}")));
        tasks.push(tokio::spawn(async move {
            let r = if i % 2 == 0 { http.delete(&url).bearer_auth(&token).send().await } else { http.patch(&url).bearer_auth(&token).json(&json!({"text": format!("edited {i}")})).send().await };
            r.unwrap().status()
        }));
    }
    for t in tasks {
        let status = t.await.unwrap();
        assert!(status == StatusCode::NO_CONTENT || status == StatusCode::OK, "{status}");
    }
    app.settle(&kim).await;
    let (_, list) = app.get(&kim.token, "/v1/entries?limit=100").await;
    assert_eq!(list["entries"].as_array().unwrap().len(), 12);
}

#[tokio::test]
async fn the_openapi_document_describes_every_v1_route_with_bearer_auth_and_errors() {
    let app = TestApp::spawn().await;
    let doc: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let expected = [
        ("/v1/chat", "post"),
        ("/v1/chat/stream", "post"),
        ("/v1/entries", "post"),
        ("/v1/entries", "get"),
        ("/v1/entries/{id}", "get"),
        ("/v1/entries/{id}", "patch"),
        ("/v1/entries/{id}", "delete"),
        ("/v1/members", "get"),
        ("/v1/members", "post"),
        ("/v1/telegram/link-codes", "post"),
        ("/v1/status", "get"),
        ("/v1/usage", "get"),
        ("/v1/export", "get"),
        ("/v1/capsules", "post"),
        ("/v1/capsules", "get"),
        ("/v1/capsules/{id}", "delete"),
        ("/v1/invites", "post"),
        ("/v1/invites/redeem", "post"),
        ("/v1/parents", "get"),
        ("/v1/parents/{id}", "delete"),
        ("/v1/members/{id}", "patch"),
        ("/v1/members/{id}/merge", "post"),
        ("/v1/members/{id}", "delete"),
        ("/v1/family", "delete"),
        ("/v1/erasures", "get"),
        ("/v1/prompts", "get"),
        ("/v1/prompts", "put"),
        ("/v1/widget-tokens", "post"),
        ("/v1/sign-in", "post"),
    ];
    for (path, method) in expected {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        for status in ["401", "422", "500"] {
            assert_eq!(op["responses"][status]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody", "{method} {path} {status}");
        }
    }
    let documented: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, expected.len(), "no route left out, none invented");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(doc["security"], json!([{ "bearer": [] }]));
    // The document matches what the API sends: an error body, and a chat reply.
    assert!(doc["components"]["schemas"]["ChatResponse"]["properties"]["kind"].is_object());
}
