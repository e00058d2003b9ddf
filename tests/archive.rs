//! The family archive: `GET /v1/export` streams one zip (manifest, its JSON
//! schema, every media file's bytes); importing it into an empty instance and
//! exporting again gives the same content.

mod common;

use std::io::Cursor;

use common::{Family, TestApp};
use dadly_agent::domain::PendingMedia;
use dadly_agent::pipeline::archive::{Manifest, read_zip};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn export_zip(app: &TestApp, family: &Family) -> (Manifest, std::collections::HashMap<String, Vec<u8>>) {
    let r = app.http.get(app.url("/v1/export")).bearer_auth(&family.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert!(r.headers().get("content-length").is_none(), "streamed, not buffered whole");
    let bytes = r.bytes().await.unwrap();
    read_zip(Cursor::new(bytes.to_vec())).unwrap()
}

/// The archive's content without what an instance assigns itself (ids, creation times).
fn content(m: &Manifest, media: &std::collections::HashMap<String, Vec<u8>>) -> Value {
    let parent = |id: &uuid::Uuid| m.parents.iter().find(|p| p.id == *id).map(|p| p.name.clone());
    let child = |id: &uuid::Uuid| m.members.iter().find(|c| c.id == *id).map(|c| c.name.clone());
    json!({
        "parents": m.parents.iter().map(|p| json!([p.name, p.role])).collect::<Vec<_>>(),
        "members": m.members.iter().map(|c| json!([c.name, c.aliases, c.birth_date])).collect::<Vec<_>>(),
        "entries": m.entries.iter().map(|e| json!({
            "author": parent(&e.author_id),
            "source": e.source,
            "occurred_at": e.occurred_at,
            "children": e.member_ids.iter().map(child).collect::<Vec<_>>(),
            "versions": e.versions,
            "insight": e.insight.as_ref().map(|i| json!([i.summary, i.topics, i.emotions, i.member_ids.iter().map(child).collect::<Vec<_>>()])),
            "media": e.media.iter().map(|x| json!([x.kind, x.content_type, x.sha256, media[&x.file].len(), x.description])).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn an_archive_round_trips_into_an_empty_instance() {
    let app = TestApp::spawn().await;
    let kim = app.family("Kim", &[("Minji", &["민지"]), ("Junho", &[])]).await;
    let (_, invite) = app.post(&kim.token, "/v1/invites", json!({})).await;
    let joined: Value = app.http.post(app.url("/v1/invites/redeem")).json(&json!({ "code": invite["code"], "name": "Jiwoo" })).send().await.unwrap().json().await.unwrap();
    let jiwoo = Family { token: joined["token"].as_str().unwrap().into(), ..app.family("unused", &[]).await };
    let a = app.entry(&kim, "Minji and Junho built a snowman", "2026-01-05T10:00:00+09:00").await;
    let (_, b) = app.post(&jiwoo.token, "/v1/entries", json!({ "text": "민지가 처음으로 수영을 했다", "occurred_at": "2026-07-01T10:00:00+09:00" })).await;
    let b = b["entry_id"].as_str().unwrap().to_string();
    app.http.patch(app.url(&format!("/v1/entries/{a}"))).bearer_auth(&kim.token).json(&json!({ "text": "Minji and Junho built a huge snowman" })).send().await.unwrap();
    let store = app.app_state.agent.store();
    let photo = b"\xff\xd8\xff\xe0 a real photo's bytes".to_vec();
    let id: uuid::Uuid = b.parse().unwrap();
    store.add_pending_media(kim.id, id, &PendingMedia { kind: "photo".into(), source_ref: "t:p".into(), content_type: "image/jpeg".into() }, None).await.unwrap();
    let stored = app.app_state.agent.backends().blobs.put(kim.id, photo.clone(), "image/jpeg", "jpg").await.unwrap();
    let photo_id = store.entry_media(kim.id, id).await.unwrap()[0].id;
    store.media_fetched(kim.id, photo_id, &stored).await.unwrap();
    store.describe_media(kim.id, photo_id, "A girl in a pool with orange armbands").await.unwrap();
    for e in [&a, &b] {
        app.wait_ready(&kim, e).await;
    }

    let (manifest, media) = export_zip(&app, &kim).await;
    assert_eq!(manifest.schema, "dadly-export/1");
    assert_eq!(manifest.entries.len(), 2);
    assert_eq!(manifest.entries[0].versions, vec!["Minji and Junho built a snowman", "Minji and Junho built a huge snowman"], "every version, oldest first");
    let file = &manifest.entries[1].media[0].file;
    assert_eq!(media[file], photo, "the original bytes");
    assert_eq!(manifest.entries[1].media[0].description.as_deref(), Some("A girl in a pool with orange armbands"), "what the vision model saw");

    // Restored into an empty instance, then exported again: the same content.
    let empty = TestApp::spawn().await;
    let imported = empty.app_state.agent.import(&manifest, &media, "Kim").await.unwrap();
    assert_eq!((imported.parents, imported.members, imported.entries, imported.media), (2, 2, 2, 1));
    let owner = Family {
        id: imported.family_id,
        user_id: imported.owner_id,
        token: empty.app_state.auth.mint(imported.owner_id, chrono::Duration::hours(1)),
        members: vec![],
    };
    for e in &empty.get(&owner.token, "/v1/entries").await.1["entries"].as_array().unwrap().clone() {
        empty.wait_ready(&owner, e["id"].as_str().unwrap()).await;
    }
    let (again, again_media) = export_zip(&empty, &owner).await;
    assert_eq!(content(&again, &again_media), content(&manifest, &media));
    // The restored family works: it is searchable.
    let answer = empty.chat(&owner, "민지가 언제 처음 수영을 했지?").await;
    assert_eq!(answer["sources"].as_array().unwrap().len(), 1, "{answer}");
}
