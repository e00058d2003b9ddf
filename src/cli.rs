//! CLI commands besides `serve`: families, tokens. They work on the same
//! `DATABASE_URL` and data dir as the server, while it runs.

use anyhow::{Context, bail};
use chrono::NaiveDate;
use dadly_agent::store::NewMember;
use serde_json::json;
use uuid::Uuid;

use crate::app::open_store;
use crate::settings::Settings;

/// How long CLI-minted tokens last.
pub const TOKEN_DAYS: i64 = 30;

/// Parses `NAME[:BIRTH_DATE][:ALIAS,ALIAS]` (`Minji:2018-03-14:민지`, `Minji::민지`, `Minji:민지`).
pub fn parse_child(spec: &str) -> anyhow::Result<NewMember> {
    let parts: Vec<&str> = spec.splitn(3, ':').collect();
    let name = parts[0].trim();
    if name.is_empty() {
        bail!("--child `{spec}`: the name is empty (expected NAME[:BIRTH_DATE][:ALIAS,ALIAS])");
    }
    let aliases = |s: &str| s.split(',').map(str::trim).filter(|a| !a.is_empty()).map(String::from).collect::<Vec<_>>();
    let (birth_date, alias_list) = match parts.as_slice() {
        [_] => (None, Vec::new()),
        [_, second] => match NaiveDate::parse_from_str(second.trim(), "%Y-%m-%d") {
            Ok(d) => (Some(d), Vec::new()),
            Err(_) => (None, aliases(second)),
        },
        [_, date, third] => {
            let date = date.trim();
            let birth = if date.is_empty() {
                None
            } else {
                Some(NaiveDate::parse_from_str(date, "%Y-%m-%d").with_context(|| format!("--child `{spec}`: `{date}` is not a date like 2018-03-14"))?)
            };
            (birth, aliases(third))
        }
        _ => unreachable!("splitn(3) gives 1 to 3 parts"),
    };
    Ok(NewMember { name: name.to_string(), aliases: alias_list, birth_date })
}

pub async fn family_create(settings: &Settings, name: &str, parent: &str, children: &[String], as_json: bool) -> anyhow::Result<()> {
    if name.trim().is_empty() || parent.trim().is_empty() {
        bail!("the family name and --parent must not be empty");
    }
    let kids = children.iter().map(|c| parse_child(c)).collect::<anyhow::Result<Vec<_>>>()?;
    let store = open_store(settings).await?;
    let family = store.create_family(name.trim()).await?;
    let user = store.create_user(family.id, parent.trim()).await?;
    let mut created = Vec::new();
    for kid in kids {
        created.push(store.create_member(family.id, kid).await.context("adding a child (are two children named the same?)")?);
    }
    let auth = crate::app::auth(settings)?;
    let token = auth.mint(user.id, chrono::Duration::days(TOKEN_DAYS));
    let link = dadly_api::sign_in_link(&auth, &settings.public_url, user.id);
    if as_json {
        println!("{}", json!({ "family_id": family.id, "user_id": user.id, "token": token, "sign_in_link": link, "members": created }));
        return Ok(());
    }
    println!("Created family \"{}\" ({})", family.name, family.id);
    println!("Parent: {} (user id {})", user.name, user.id);
    for m in &created {
        let aliases = if m.aliases.is_empty() { String::new() } else { format!(" a.k.a. {}", m.aliases.join(", ")) };
        println!("Child:  {}{}{}", m.name, aliases, m.birth_date.map(|d| format!(", born {d}")).unwrap_or_default());
    }
    println!("\nOpen the app (this link signs {} in once, within 15 minutes):\n  {link}", user.name);
    println!("\nBearer token (valid {TOKEN_DAYS} days):\n{token}\n");
    println!("Try it:\n  export TOKEN={token}");
    println!(
        "  curl -s http://{}/v1/chat -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' -d '{{\"message\":\"Minji lost her first tooth today\"}}'",
        settings.bind
    );
    Ok(())
}

pub async fn token(settings: &Settings, user: &str, days: i64) -> anyhow::Result<()> {
    let user_id = Uuid::parse_str(user).with_context(|| format!("--user `{user}` is not a user id"))?;
    if !(1..=settings.token_max_days).contains(&days) {
        bail!("--days must be between 1 and {} (DADLY_TOKEN_MAX_DAYS)", settings.token_max_days);
    }
    let store = open_store(settings).await?;
    store.get_user(user_id).await.with_context(|| format!("no user with id {user_id}"))?;
    let auth = crate::app::auth(settings)?;
    println!("{}", auth.mint(user_id, chrono::Duration::days(days)));
    // The bare token stays alone on stdout for scripts; the link is for a person.
    eprintln!("sign in to the app (once, within 15 minutes): {}", dadly_api::sign_in_link(&auth, &settings.public_url, user_id));
    Ok(())
}

/// Refuses every token the user holds now (`dadly token --revoke USER`).
pub async fn revoke(settings: &Settings, user: &str) -> anyhow::Result<()> {
    let user_id = Uuid::parse_str(user).with_context(|| format!("--revoke `{user}` is not a user id"))?;
    let store = open_store(settings).await?;
    store.revoke_tokens(user_id, chrono::Utc::now()).await.with_context(|| format!("no user with id {user_id}"))?;
    println!("every token of user {user_id} issued until now is refused; mint a new one with `dadly token --user {user_id}`");
    Ok(())
}

/// On a laptop (SQLite, loopback), the family made on first start and a fresh
/// token for its parent, so the first `cargo run` is enough to start chatting.
/// The user id is kept in `<data dir>/local_user`.
/// Returns the token and a one-time sign-in link for the app.
pub async fn local_family_token(settings: &Settings, store: &std::sync::Arc<dyn dadly_agent::store::Store>) -> anyhow::Result<Option<(String, String)>> {
    let embedded = matches!(settings.store, crate::settings::StoreBackend::Sqlite(_)) && settings.bind.ip().is_loopback();
    if !embedded {
        return Ok(None);
    }
    let path = settings.data_dir.join("local_user");
    let existing = std::fs::read_to_string(&path).ok().and_then(|s| Uuid::parse_str(s.trim()).ok());
    let user = match existing {
        Some(id) => match store.get_user(id).await {
            Ok(u) => u,
            Err(_) => return Ok(None),
        },
        None => {
            let family = store.create_family("My family").await?;
            let user = store.create_user(family.id, "Me").await?;
            std::fs::write(&path, user.id.to_string())?;
            user
        }
    };
    let auth = crate::app::auth(settings)?;
    Ok(Some((auth.mint(user.id, chrono::Duration::days(TOKEN_DAYS)), dadly_api::sign_in_link(&auth, &settings.public_url, user.id))))
}

/// Prints a one-time Telegram link code for a parent.
pub async fn invite(settings: &Settings, user: &str) -> anyhow::Result<()> {
    let user_id = Uuid::parse_str(user).with_context(|| format!("--user `{user}` is not a user id"))?;
    let store = open_store(settings).await?;
    let parent = store.get_user(user_id).await.with_context(|| format!("no user with id {user_id}"))?;
    let agent_code = {
        // Same code path as the API: the agent makes and stores the code.
        let app = crate::app::App::build(settings.clone()).await?;
        app.agent.create_link_code(&parent).await?
    };
    println!("Send this to the Dadly bot on Telegram within 15 minutes (it works once):\n/start {}", agent_code.code);
    Ok(())
}

/// Queues re-embedding of every entry (e.g. after changing the embedding model);
/// running servers' workers pick the jobs up.
pub async fn reindex(settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let tag = chrono::Utc::now().format("%Y%m%dT%H%M%S").to_string();
    let queued = store.enqueue_reindex(&tag).await?;
    println!("queued {queued} entries for re-embedding; the server's workers process them (start `dadly serve` if it is not running)");
    Ok(())
}

/// Writes a family's export to `out` — the zip archive when it ends in
/// `.zip`, else the JSON document — or the JSON to stdout.
pub async fn export(settings: &Settings, family: &str, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let family_id = Uuid::parse_str(family).with_context(|| format!("--family `{family}` is not a family id"))?;
    let app = crate::app::App::build(settings.clone()).await?;
    if let Some(path) = out.filter(|p| p.extension().is_some_and(|x| x == "zip")) {
        let mut file = tokio::fs::File::create(path).await.with_context(|| format!("creating {}", path.display()))?;
        let mut rx = dadly_agent::pipeline::archive::stream_zip(app.agent.clone(), family_id);
        while let Some(chunk) = rx.recv().await {
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk?).await?;
        }
        tokio::io::AsyncWriteExt::flush(&mut file).await?;
        eprintln!("exported to {}", path.display());
        return Ok(());
    }
    let data = app.agent.export(family_id).await?;
    if data["entries"].as_array().is_none_or(|e| e.is_empty()) && data["members"].as_array().is_none_or(|m| m.is_empty()) {
        bail!("family {family_id} has no members and no entries (is the id right?)");
    }
    let text = serde_json::to_string_pretty(&data)?;
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("exported to {}", path.display());
        }
        None => println!("{text}"),
    }
    Ok(())
}

/// Restores an archive (`dadly export --out FILE.zip`) as a new family; prints
/// what was restored and a token for its owner.
pub async fn import(settings: &Settings, file: &std::path::Path, name: &str) -> anyhow::Result<()> {
    let reader = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let (manifest, media) = dadly_agent::pipeline::archive::read_zip(reader)?;
    let app = crate::app::App::build(settings.clone()).await?;
    let imported = app.agent.import(&manifest, &media, name).await?;
    let token = crate::app::auth(settings)?.mint(imported.owner_id, chrono::Duration::days(TOKEN_DAYS));
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "imported": imported, "token": token }))?);
    Ok(())
}

/// Prints the most recent traces from `<data dir>/traces/` as trees.
pub fn traces(settings: &Settings, limit: usize) -> anyhow::Result<()> {
    if settings.langsmith.is_some() {
        eprintln!("note: LANGCHAIN_API_KEY is set, so new traces go to LangSmith; showing what is on disk");
    }
    let runs = dadly_agent::trace::read_runs(&settings.data_dir.join("traces"))?;
    print!("{}", dadly_agent::trace::render_traces(&runs, limit));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_specs_parse_name_birth_date_and_aliases() {
        let c = parse_child("Minji:2018-03-14:민지,Minnie").unwrap();
        assert_eq!((c.name.as_str(), c.birth_date, c.aliases), ("Minji", NaiveDate::from_ymd_opt(2018, 3, 14), vec!["민지".to_string(), "Minnie".into()]));
        let c = parse_child("Junho::준호").unwrap();
        assert_eq!((c.birth_date, c.aliases), (None, vec!["준호".to_string()]));
        assert_eq!(parse_child("Junho:준호").unwrap().aliases, vec!["준호"]);
        assert_eq!(parse_child("Junho:2020-01-02").unwrap().birth_date, NaiveDate::from_ymd_opt(2020, 1, 2));
        assert!(parse_child(":2020-01-01").is_err());
        assert!(parse_child("Junho:2020-13-01:x").is_err());
    }
}
