//! `TelegramChannel`: the agent's `Channel` port over the Bot API — fetch a
//! file by id (`getFile` + download) and reply to a message.

use async_trait::async_trait;
use dadly_agent::channel::{Channel, ChannelError, MessageRef};
use teloxide::Bot;
use teloxide::net::Download;
use teloxide::payloads::setters::*;
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, FileId, MessageId, ReplyParameters};

use crate::transport::retry;

pub struct TelegramChannel {
    bot: Bot,
    max_file_bytes: u64,
}

impl TelegramChannel {
    pub fn new(bot: Bot, max_file_bytes: u64) -> Self {
        Self { bot, max_file_bytes }
    }
}

fn unavailable(e: teloxide::RequestError) -> ChannelError {
    ChannelError::Unavailable(e.to_string())
}

/// Parses `telegram:<chat id>:<message id>`.
pub(crate) fn parse_reply_to(reference: &str) -> Option<(ChatId, MessageId)> {
    let mut parts = reference.strip_prefix("telegram:")?.split(':');
    let chat = parts.next()?.parse().ok()?;
    let message = parts.next()?.parse().ok()?;
    Some((ChatId(chat), MessageId(message)))
}

#[async_trait]
impl Channel for TelegramChannel {
    fn name(&self) -> &'static str {
        "telegram"
    }

    async fn fetch(&self, source_ref: &str) -> Result<Vec<u8>, ChannelError> {
        let file_id = source_ref.strip_prefix("telegram:").ok_or_else(|| ChannelError::NotFound(source_ref.into()))?;
        let file = retry(self.bot.get_file(FileId(file_id.to_string()))).await.map_err(|e| match e {
            teloxide::RequestError::Api(teloxide::ApiError::FileIdInvalid | teloxide::ApiError::WrongFileId) => ChannelError::NotFound(file_id.into()),
            teloxide::RequestError::Api(ref api) if api.to_string().contains("too big") => ChannelError::TooLarge,
            e => unavailable(e),
        })?;
        if u64::from(file.meta.size) > self.max_file_bytes && file.meta.size != u32::MAX {
            return Err(ChannelError::TooLarge);
        }
        let mut bytes = Vec::with_capacity(file.meta.size.min(64 << 20) as usize);
        self.bot.download_file(&file.path, &mut bytes).await.map_err(|e| ChannelError::Unavailable(e.to_string()))?;
        Ok(bytes)
    }

    async fn send(&self, reply_to: &str, text: &str) -> Result<MessageRef, ChannelError> {
        let (chat, message) = parse_reply_to(reply_to).ok_or_else(|| ChannelError::NotFound(reply_to.into()))?;
        let sent = retry(self.bot.send_message(chat, text).reply_parameters(ReplyParameters::new(message).allow_sending_without_reply()))
            .await
            .map_err(unavailable)?;
        Ok(MessageRef { chat_key: format!("telegram:{}", chat.0), message_id: i64::from(sent.id.0) })
    }

    async fn notify(&self, recipient: &str, text: &str) -> Result<MessageRef, ChannelError> {
        let chat: i64 = recipient.strip_prefix("telegram:").and_then(|c| c.parse().ok()).ok_or_else(|| ChannelError::NotFound(recipient.into()))?;
        let sent = retry(self.bot.send_message(ChatId(chat), text)).await.map_err(unavailable)?;
        Ok(MessageRef { chat_key: format!("telegram:{chat}"), message_id: i64::from(sent.id.0) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_references_round_trip() {
        assert_eq!(parse_reply_to("telegram:-100123:42"), Some((ChatId(-100123), MessageId(42))));
        assert_eq!(parse_reply_to("web:1:2"), None);
        assert_eq!(parse_reply_to("telegram:x:2"), None);
    }
}
