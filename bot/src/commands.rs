//! Bot commands besides plain chat: `/kids`, `/recent`, `/export`, `/lang`,
//! `/unlink` (and `/ask`, `/record`, `/help`, `/capsule`, `/seal`, `/cancel`,
//! which go through chat).

use dadly_agent::AgentError;
use dadly_agent::domain::User as Parent;
use dadly_agent::pipeline::ListQuery;
use dadly_agent::store::NewMember;
use teloxide::types::Message;

use crate::TelegramBot;
use crate::handler::{HandleError, converse};
use crate::i18n::{self, Lang};

#[allow(clippy::too_many_arguments)]
pub(crate) async fn on_command(bot: &TelegramBot, key: &str, msg: &Message, parent: &Parent, lang: Lang, cmd: &str, arg: &str, text: &str) -> Result<(), HandleError> {
    let agent = &bot.agent;
    match cmd {
        "ask" | "record" | "help" | "start" | "capsule" | "seal" | "cancel" => return converse(bot, key, msg, parent, if cmd == "start" { "/help" } else { text }).await,
        _ => {}
    }
    // The remaining commands change nothing that a redelivery could duplicate,
    // except `/kids add`; claim the update so none replies twice.
    match agent.store().claim_update(parent.family_id, key).await {
        Ok(true) => {}
        Ok(false) => return Ok(()),
        Err(e) => return Err(HandleError::Unavailable(e.to_string())),
    }
    let reply = match cmd {
        "unlink" => match msg.from.as_ref() {
            Some(from) => {
                agent.unlink_telegram(from.id.0 as i64, parent).await.map_err(|e| HandleError::Unavailable(e.to_string()))?;
                i18n::unlinked(lang).to_string()
            }
            None => return Ok(()),
        },
        "lang" => {
            let choice = match arg.to_lowercase().as_str() {
                "ko" | "kr" | "korean" | "한국어" => Some("ko"),
                "en" | "english" | "영어" => Some("en"),
                _ => None,
            };
            if let Some(from) = msg.from.as_ref() {
                agent.set_telegram_language(from.id.0 as i64, parent, choice).await.map_err(|e| HandleError::Unavailable(e.to_string()))?;
            }
            i18n::language_set(Lang::pick(choice, msg.from.as_ref().and_then(|f| f.language_code.as_deref()))).to_string()
        }
        "kids" => {
            let mut words = arg.split_whitespace();
            if words.next().is_some_and(|w| w.eq_ignore_ascii_case("add")) {
                let Some(name) = words.next() else { bot.reply(msg, i18n::kids_usage(lang)).await; return Ok(()) };
                let aliases = words.map(str::to_string).collect();
                let added = match agent.require_owner(parent, "add children") {
                    Ok(()) => agent.add_member(parent.family_id, NewMember { name: name.to_string(), aliases, birth_date: None }).await,
                    Err(e) => Err(e),
                };
                match added {
                    Ok(m) => format!("👶 {}", m.name),
                    Err(AgentError::Conflict(why) | AgentError::Invalid(why) | AgentError::Forbidden(why)) => why,
                    Err(e) => return Err(HandleError::Unavailable(e.to_string())),
                }
            } else {
                let kids = agent.members(parent.family_id).await.map_err(|e| HandleError::Unavailable(e.to_string()))?;
                let mut out: Vec<String> = kids
                    .iter()
                    .map(|k| if k.aliases.is_empty() { format!("• {}", k.name) } else { format!("• {} ({})", k.name, k.aliases.join(", ")) })
                    .collect();
                out.push(i18n::kids_usage(lang).to_string());
                out.join("\n")
            }
        }
        "recent" => {
            let entries = agent.entries(parent.family_id, ListQuery { limit: Some(5), ..Default::default() }).await.map_err(|e| HandleError::Unavailable(e.to_string()))?;
            if entries.is_empty() {
                i18n::no_entries(lang).to_string()
            } else {
                entries
                    .iter()
                    .map(|e| format!("🗓 {} — {}", e.occurred_at.format("%Y-%m-%d"), dadly_agent::text::snippet(if e.raw_text.is_empty() { "📷/🎙️" } else { &e.raw_text }, 120)))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
        "prompts" => {
            let mut words = arg.split_whitespace();
            let (time, ko) = (words.next(), lang == Lang::Ko);
            let result = match (time, words.next()) {
                (Some("off"), _) => agent.set_prompts(parent, None, None).await.map(|_| if ko { "매일 질문을 끌게요.".to_string() } else { "Daily prompts are off.".to_string() }),
                (Some("on"), Some(at)) => agent.set_prompts(parent, Some(at), None).await.map(|_| {
                    if ko { format!("매일 {at}에 질문 하나를 보내 드릴게요. 답장하면 일기에 남겨요.") } else { format!("I'll send you one question a day at {at}. Reply to it and I'll keep your answer.") }
                }),
                _ => Ok(if ko { "사용법: /prompts on 20:30 또는 /prompts off".to_string() } else { "Usage: /prompts on 20:30, or /prompts off".to_string() }),
            };
            match result {
                Ok(text) => text,
                Err(AgentError::Invalid(why)) => why,
                Err(e) => return Err(HandleError::Unavailable(e.to_string())),
            }
        }
        "export" => match agent.export_link(parent.family_id).await {
            Ok(url) => i18n::export_link(lang, &url),
            Err(e) => {
                tracing::warn!(error = %e, "export failed");
                i18n::retry_later(lang).to_string()
            }
        },
        _ => {
            // Unknown commands get the help text.
            return converse(bot, &format!("{key}:help"), msg, parent, "/help").await;
        }
    };
    bot.reply(msg, &reply).await;
    Ok(())
}

