//! The `Channel` port: what background jobs need from a messaging channel
//! (Telegram) — fetch media a message carried, and send a message back in
//! reply to one. Implemented by the channel's crate; the agent never names it.

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("the file is larger than the channel lets us download")]
    TooLarge,
    #[error("not found on the channel: {0}")]
    NotFound(String),
    #[error("channel unavailable: {0}")]
    Unavailable(String),
}

/// Where a channel message is: the chat key (`telegram:<chat id>`) and message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    pub chat_key: String,
    pub message_id: i64,
}

#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// The prefix of the references this channel understands (`telegram`).
    fn name(&self) -> &'static str;
    /// Downloads media by the reference given when it was recorded.
    async fn fetch(&self, source_ref: &str) -> Result<Vec<u8>, ChannelError>;
    /// Sends `text` in reply to the message `reply_to` names; returns where it went.
    async fn send(&self, reply_to: &str, text: &str) -> Result<MessageRef, ChannelError>;
    /// Sends `text` to a person (`telegram:<user id>`), not in reply to anything; returns where it went.
    async fn notify(&self, recipient: &str, text: &str) -> Result<MessageRef, ChannelError>;
}
