//! One update in, agent calls out, replies back. Decisions are the agent's;
//! this module only reads Telegram's shapes and writes Telegram's replies.

use chrono::{FixedOffset, TimeZone, Utc};
use dadly_agent::AgentError;
use dadly_agent::agent::{Message as AgentMessage, Outcome};
use dadly_agent::domain::{PendingMedia, Source, User as Parent};
use dadly_agent::pipeline::{EntryPatch, MediaMessage, MediaOutcome, RecordInput};
use teloxide::payloads::setters::*;
use teloxide::prelude::Requester;
use teloxide::types::{
    CallbackQuery, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters, Update, UpdateKind,
};

use crate::TelegramBot;
use crate::i18n::{self, Lang};
use crate::transport::retry;

/// An update that could not be handled now and should be delivered again.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("backend unavailable: {0}")]
    Unavailable(String),
}

fn transient(e: &AgentError) -> bool {
    matches!(e, AgentError::Unavailable(_) | AgentError::Internal(_))
}

fn chat_key(chat: ChatId) -> String {
    format!("telegram:{}", chat.0)
}

/// The message's own time, in the configured offset (Telegram gives no time zone).
fn sent_at(bot: &TelegramBot, msg: &Message) -> chrono::DateTime<FixedOffset> {
    let offset = bot.agent.local_now().timezone();
    Utc.timestamp_opt(msg.date.timestamp(), 0).single().unwrap_or_else(Utc::now).with_timezone(&offset)
}

/// A command and its argument, if the text is one (`/ask@DadlyBot when…`).
fn command(text: &str) -> Option<(String, String)> {
    let rest = text.trim().strip_prefix('/')?;
    let (cmd, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let cmd = cmd.split('@').next().unwrap_or(cmd).to_lowercase();
    Some((cmd, arg.trim().to_string()))
}

pub(crate) async fn handle(bot: &TelegramBot, update: Update) -> Result<(), HandleError> {
    let key = format!("tg:{}", update.id.0);
    match update.kind {
        UpdateKind::Message(msg) => on_message(bot, &key, msg).await,
        UpdateKind::EditedMessage(msg) => on_edit(bot, msg).await,
        UpdateKind::CallbackQuery(q) => on_callback(bot, q).await,
        _ => Ok(()),
    }
}

impl TelegramBot {
    pub(crate) async fn reply(&self, msg: &Message, text: &str) -> Option<Message> {
        self.reply_with(msg, text, None).await
    }

    async fn reply_with(&self, msg: &Message, text: &str, keyboard: Option<InlineKeyboardMarkup>) -> Option<Message> {
        let mut req = self.bot.send_message(msg.chat.id, text).reply_parameters(ReplyParameters::new(msg.id).allow_sending_without_reply());
        if let Some(k) = keyboard {
            req = req.reply_markup(k);
        }
        match retry(req).await {
            Ok(sent) => Some(sent),
            Err(e) => {
                // The parent's message is already safe; a lost reply is logged, not retried forever.
                tracing::warn!(error = %e, "could not send a telegram reply");
                None
            }
        }
    }

    /// The linked parent and the language to answer in.
    async fn parent(&self, from: &teloxide::types::User) -> Result<Option<(Parent, Lang)>, HandleError> {
        match self.agent.telegram_user(from.id.0 as i64).await {
            Ok(Some((user, lang))) => Ok(Some((user, Lang::pick(lang.as_deref(), from.language_code.as_deref())))),
            Ok(None) => Ok(None),
            Err(e) => Err(HandleError::Unavailable(e.to_string())),
        }
    }
}

async fn on_message(bot: &TelegramBot, key: &str, msg: Message) -> Result<(), HandleError> {
    let Some(from) = msg.from.clone() else { return Ok(()) };
    if from.is_bot {
        return Ok(());
    }
    let device_lang = Lang::pick(None, from.language_code.as_deref());
    let text = msg.text().map(str::to_string);

    // Linking is the one thing an unlinked account may do.
    if let Some((cmd, arg)) = text.as_deref().and_then(command)
        && (cmd == "start" || cmd == "link")
        && !arg.is_empty()
    {
        match bot.agent.link_telegram(&arg, from.id.0 as i64, from.language_code.as_deref()).await {
            Ok(user) => bot.reply(&msg, &i18n::linked(device_lang, &user.name)).await,
            // Not a link code: perhaps an invite to join a family as another parent.
            Err(AgentError::Invalid(_)) => match bot.agent.redeem_invite(&arg, &from.first_name, Some((from.id.0 as i64, from.language_code.as_deref()))).await {
                Ok(user) => bot.reply(&msg, &i18n::joined(device_lang, &user.name)).await,
                Err(AgentError::Invalid(_)) => bot.reply(&msg, i18n::bad_code(device_lang)).await,
                Err(e) => return Err(HandleError::Unavailable(e.to_string())),
            },
            Err(e) => return Err(HandleError::Unavailable(e.to_string())),
        };
        return Ok(());
    }

    let Some((parent, lang)) = bot.parent(&from).await? else {
        // Nothing is stored and nothing goes to a model for an unknown account.
        let reply = if text.as_deref().and_then(command).is_some_and(|(c, _)| c == "start" || c == "link") { i18n::need_code(device_lang) } else { i18n::not_linked(device_lang) };
        bot.reply(&msg, reply).await;
        return Ok(());
    };

    if msg.voice().is_some() || msg.audio().is_some() {
        return on_voice(bot, key, &msg, &parent, lang).await;
    }
    if msg.photo().is_some() {
        return on_photo(bot, key, &msg, &parent, lang).await;
    }
    let Some(text) = text else {
        bot.reply(&msg, i18n::unsupported(lang)).await;
        return Ok(());
    };
    if let Some((cmd, arg)) = command(&text) {
        return crate::commands::on_command(bot, key, &msg, &parent, lang, &cmd, &arg, &text).await;
    }
    // A reply to a daily prompt becomes an entry about the prompt's child.
    if let Some(replied) = msg.reply_to_message() {
        let input = RecordInput {
            text: text.clone(),
            source: Source::Telegram,
            occurred_at: None,
            member_ids: None,
            sent_at: sent_at(bot, &msg),
            dedupe_key: Some(key.to_string()),
            reply_to: Some(format!("telegram:{}:{}", msg.chat.id.0, msg.id.0)),
        };
        match bot.agent.answer_prompt(&parent, &chat_key(msg.chat.id), i64::from(replied.id.0), input).await {
            Ok(Some(_)) => {
                bot.reply(&msg, i18n::prompt_kept(lang)).await;
                return Ok(());
            }
            Ok(None) | Err(AgentError::AlreadyHandled) => {}
            Err(AgentError::Invalid(why)) => {
                bot.reply(&msg, &why).await;
                return Ok(());
            }
            Err(e) => return Err(HandleError::Unavailable(e.to_string())),
        }
    }
    // A reply to a transcript (or to a recorded message) corrects that entry.
    if let Some(replied) = msg.reply_to_message() {
        let found = bot.agent.entry_for_message(&parent, &chat_key(msg.chat.id), i64::from(replied.id.0)).await;
        if let Ok(Some((entry_id, kind))) = found
            && kind == "transcript"
        {
            return apply_edit(bot, &msg, &parent, lang, entry_id, &text).await;
        }
    }
    converse(bot, key, &msg, &parent, &text).await
}

pub(crate) async fn converse(bot: &TelegramBot, key: &str, msg: &Message, parent: &Parent, text: &str) -> Result<(), HandleError> {
    let message = AgentMessage {
        chat_id: chat_key(msg.chat.id),
        text: text.to_string(),
        sent_at: sent_at(bot, msg),
        source: Source::Telegram,
        dedupe_key: Some(key.to_string()),
        reply_to: Some(format!("telegram:{}:{}", msg.chat.id.0, msg.id.0)),
    };
    match bot.agent.handle(parent, message).await {
        Ok(Outcome::Duplicate) => {}
        Ok(Outcome::Recorded { reply, entry }) => {
            bot.agent.remember_message(parent, &chat_key(msg.chat.id), i64::from(msg.id.0), entry.id, "source").await;
            bot.reply(msg, &reply).await;
        }
        Ok(Outcome::Answered { reply, sources }) => {
            // Each cited entry is a button labelled with its date: tap to read it.
            let buttons: Vec<Vec<InlineKeyboardButton>> = sources
                .iter()
                .take(6)
                .enumerate()
                .map(|(i, s)| vec![InlineKeyboardButton::callback(format!("[{}] {}", i + 1, s.occurred_at.format("%Y-%m-%d")), format!("e:{}", s.entry_id))])
                .collect();
            let keyboard = (!buttons.is_empty()).then(|| InlineKeyboardMarkup::new(buttons));
            bot.reply_with(msg, &reply, keyboard).await;
        }
        Ok(Outcome::Help { reply }) | Ok(Outcome::Capsule { reply, .. }) => {
            bot.reply(msg, &reply).await;
        }
        Err(AgentError::Invalid(why)) => {
            bot.reply(msg, &why).await;
        }
        Err(AgentError::RateLimited(wait)) => {
            // Acknowledged, not kept: the parent is told to send it again shortly.
            let lang = Lang::pick(None, msg.from.as_ref().and_then(|u| u.language_code.as_deref()));
            bot.reply(msg, &i18n::slow_down(lang, wait.as_secs().max(1))).await;
        }
        Err(e) if transient(&e) => return Err(HandleError::Unavailable(e.to_string())),
        Err(e) => {
            tracing::warn!(error = %e, "telegram message not handled");
        }
    }
    Ok(())
}

/// Sets an entry's text from a channel message (an edit, or a reply to a
/// transcript). Idempotent without claiming the update: a redelivery finds the
/// text already set, changes nothing and sends no second reply — and an edit
/// that failed half-way is simply done again.
async fn apply_edit(bot: &TelegramBot, msg: &Message, parent: &Parent, lang: Lang, entry_id: uuid::Uuid, text: &str) -> Result<(), HandleError> {
    let before = match bot.agent.entry(parent.family_id, entry_id).await {
        Ok(view) => view.entry.version,
        Err(AgentError::NotFound) => {
            bot.reply(msg, i18n::entry_gone(lang)).await;
            return Ok(());
        }
        Err(e) => return Err(HandleError::Unavailable(e.to_string())),
    };
    match bot.agent.edit_entry(parent, entry_id, EntryPatch { text: Some(text.to_string()), member_ids: None }).await {
        Ok(entry) if entry.version != before => {
            bot.reply(msg, i18n::corrected(lang)).await;
        }
        Ok(_) => {}
        Err(AgentError::NotFound) => {
            bot.reply(msg, i18n::entry_gone(lang)).await;
        }
        Err(AgentError::Invalid(why)) => {
            bot.reply(msg, &why).await;
        }
        Err(e) => return Err(HandleError::Unavailable(e.to_string())),
    }
    Ok(())
}

async fn on_voice(bot: &TelegramBot, key: &str, msg: &Message, parent: &Parent, lang: Lang) -> Result<(), HandleError> {
    let (file, mime) = match (msg.voice(), msg.audio()) {
        (Some(v), _) => (&v.file, v.mime_type.as_ref().map(|m| m.to_string()).unwrap_or_else(|| "audio/ogg".into())),
        (None, Some(a)) => (&a.file, a.mime_type.as_ref().map(|m| m.to_string()).unwrap_or_else(|| "audio/mpeg".into())),
        _ => return Ok(()),
    };
    if u64::from(file.size) > bot.settings.max_file_bytes && file.size != u32::MAX {
        bot.reply(msg, &i18n::too_large(lang, bot.settings.max_file_bytes >> 20)).await;
        return Ok(());
    }
    let media = MediaMessage {
        media: PendingMedia { kind: "voice".into(), source_ref: format!("telegram:{}", file.id.0), content_type: mime },
        caption: msg.caption().map(str::to_string),
        album_key: None,
        dedupe_key: Some(key.to_string()),
        reply_to: Some(format!("telegram:{}:{}", msg.chat.id.0, msg.id.0)),
        sent_at: sent_at(bot, msg),
        chat_id: Some(chat_key(msg.chat.id)),
        korean: lang == Lang::Ko,
    };
    match bot.agent.record_media(parent, media).await {
        Ok(MediaOutcome::Recorded(entry)) => {
            bot.agent.remember_message(parent, &chat_key(msg.chat.id), i64::from(msg.id.0), entry.id, "source").await;
            let transcriber = bot.agent.backends().transcriber.provider() != "none";
            bot.reply(msg, i18n::voice_received(lang, transcriber)).await;
        }
        Ok(MediaOutcome::Capsule { reply }) => {
            bot.reply(msg, &reply).await;
        }
        Ok(_) => {}
        Err(e) if transient(&e) => return Err(HandleError::Unavailable(e.to_string())),
        Err(e) => {
            bot.reply(msg, &e.to_string()).await;
        }
    }
    Ok(())
}

async fn on_photo(bot: &TelegramBot, key: &str, msg: &Message, parent: &Parent, lang: Lang) -> Result<(), HandleError> {
    let Some(largest) = msg.photo().and_then(|sizes| sizes.iter().max_by_key(|p| u64::from(p.width) * u64::from(p.height))) else { return Ok(()) };
    if u64::from(largest.file.size) > bot.settings.max_file_bytes && largest.file.size != u32::MAX {
        bot.reply(msg, &i18n::too_large(lang, bot.settings.max_file_bytes >> 20)).await;
        return Ok(());
    }
    let media = MediaMessage {
        media: PendingMedia { kind: "photo".into(), source_ref: format!("telegram:{}", largest.file.id.0), content_type: "image/jpeg".into() },
        caption: msg.caption().map(str::to_string),
        album_key: msg.media_group_id().map(|g| format!("tg-album:{}:{}", msg.chat.id.0, g.0)),
        dedupe_key: Some(key.to_string()),
        reply_to: Some(format!("telegram:{}:{}", msg.chat.id.0, msg.id.0)),
        sent_at: sent_at(bot, msg),
        chat_id: Some(chat_key(msg.chat.id)),
        korean: lang == Lang::Ko,
    };
    let album = media.album_key.is_some();
    match bot.agent.record_media(parent, media).await {
        Ok(MediaOutcome::Recorded(entry)) => {
            bot.agent.remember_message(parent, &chat_key(msg.chat.id), i64::from(msg.id.0), entry.id, "source").await;
            bot.reply(msg, i18n::photo_saved(lang, album)).await;
        }
        Ok(MediaOutcome::JoinedAlbum(entry)) => {
            bot.agent.remember_message(parent, &chat_key(msg.chat.id), i64::from(msg.id.0), entry.id, "source").await;
        }
        Ok(MediaOutcome::Duplicate) => {}
        Ok(MediaOutcome::Capsule { reply }) => {
            bot.reply(msg, &reply).await;
        }
        Err(e) if transient(&e) => return Err(HandleError::Unavailable(e.to_string())),
        Err(e) => {
            bot.reply(msg, &e.to_string()).await;
        }
    }
    Ok(())
}

async fn on_edit(bot: &TelegramBot, msg: Message) -> Result<(), HandleError> {
    let Some(from) = msg.from.clone() else { return Ok(()) };
    let Some((parent, lang)) = bot.parent(&from).await? else { return Ok(()) };
    let Some(text) = msg.text().or(msg.caption()).map(str::to_string) else { return Ok(()) };
    let found = bot.agent.entry_for_message(&parent, &chat_key(msg.chat.id), i64::from(msg.id.0)).await;
    let entry_id = match found {
        Ok(Some((id, kind))) if kind == "source" => id,
        Ok(_) => return Ok(()),
        Err(e) => return Err(HandleError::Unavailable(e.to_string())),
    };
    apply_edit(bot, &msg, &parent, lang, entry_id, &text).await
}

async fn on_callback(bot: &TelegramBot, q: CallbackQuery) -> Result<(), HandleError> {
    let _ = retry(bot.bot.answer_callback_query(q.id.clone())).await;
    let Some((parent, lang)) = bot.parent(&q.from).await? else { return Ok(()) };
    let Some(entry_id) = q.data.as_deref().and_then(|d| d.strip_prefix("e:")).and_then(|id| id.parse().ok()) else { return Ok(()) };
    let chat = ChatId(q.from.id.0 as i64);
    let text = match bot.agent.entry(parent.family_id, entry_id).await {
        Ok(view) => format!("🗓 {}\n{}", view.entry.occurred_at.format("%Y-%m-%d"), view.entry.raw_text),
        // Another family's id (or a deleted entry) looks the same: gone.
        Err(AgentError::NotFound) => i18n::entry_gone(lang).to_string(),
        Err(e) => return Err(HandleError::Unavailable(e.to_string())),
    };
    let _ = retry(bot.bot.send_message(chat, text)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_with_or_without_the_bot_name() {
        assert_eq!(command("/start AB3DEF7H"), Some(("start".into(), "AB3DEF7H".into())));
        assert_eq!(command("/ask@DadlyBot when did she walk?"), Some(("ask".into(), "when did she walk?".into())));
        assert_eq!(command("/KIDS"), Some(("kids".into(), "".into())));
        assert_eq!(command("hello"), None);
    }
}
