//! Dadly's Telegram channel. It turns Bot API updates into agent calls and
//! renders the agent's answers; all behaviour lives in `dadly-agent`.
//!
//! Updates arrive by long polling (default) or by webhook mounted in the API's
//! axum server. Either way an update is acknowledged only after it has been
//! handled: polling advances its offset afterwards, the webhook answers 200
//! afterwards (500 asks Telegram to redeliver). Redeliveries are harmless: the
//! update id is recorded in the same transaction as its effect.

mod channel;
mod commands;
mod handler;
mod i18n;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use dadly_agent::Agent;
use teloxide::Bot;
use teloxide::payloads::setters::*;
use teloxide::prelude::Requester;
use teloxide::types::BotCommand;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use channel::TelegramChannel;
pub use handler::HandleError;

/// Telegram's public Bot API.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

#[derive(Clone)]
pub struct TelegramSettings {
    pub token: String,
    /// A self-hosted Bot API server (which lifts the 20 MB download limit), or the public one.
    pub api_url: reqwest::Url,
    /// Webhook mode when set; long polling otherwise.
    pub webhook_url: Option<reqwest::Url>,
    /// Checked against `X-Telegram-Bot-Api-Secret-Token` in webhook mode.
    pub webhook_secret: String,
    /// Files larger than this get a polite refusal (20 MB on the public Bot API).
    pub max_file_bytes: u64,
    /// How long an empty poll waits before the next (long polling already waits server-side).
    pub poll_timeout_secs: u32,
}

impl std::fmt::Debug for TelegramSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramSettings")
            .field("token", &dadly_agent::REDACTED)
            .field("api_url", &self.api_url.as_str())
            .field("webhook_url", &self.webhook_url.as_ref().map(|u| u.as_str()))
            .field("webhook_secret", &dadly_agent::REDACTED)
            .field("max_file_bytes", &self.max_file_bytes)
            .field("poll_timeout_secs", &self.poll_timeout_secs)
            .finish()
    }
}

impl TelegramSettings {
    pub fn new(token: &str) -> Self {
        Self {
            token: token.to_string(),
            api_url: DEFAULT_API_URL.parse().expect("valid URL"),
            webhook_url: None,
            webhook_secret: default_secret(token),
            max_file_bytes: 20 * 1024 * 1024,
            poll_timeout_secs: 25,
        }
    }

    pub fn bot(&self) -> Bot {
        Bot::new(&self.token).set_api_url(self.api_url.clone())
    }
}

/// A webhook secret derived from the token, so instances agree without configuration.
pub fn default_secret(token: &str) -> String {
    dadly_agent::blob::sha256_hex(format!("dadly-webhook:{token}").as_bytes())[..48].to_string()
}

/// The running channel: a webhook router to merge into the API, or a polling task.
pub struct TelegramRuntime {
    pub router: Option<axum::Router>,
    pub task: Option<JoinHandle<()>>,
}

/// Everything the handlers need.
#[derive(Clone)]
pub struct TelegramBot {
    pub(crate) bot: Bot,
    pub(crate) agent: Arc<Agent>,
    pub(crate) settings: Arc<TelegramSettings>,
    /// Updates not yet handled: where to apologise if they turn out poison, and how often they failed.
    unfinished: Arc<std::sync::Mutex<std::collections::HashMap<i32, Unfinished>>>,
}

struct Unfinished {
    chat: Option<teloxide::types::ChatId>,
    lang: i18n::Lang,
    failures: u32,
}

impl TelegramBot {
    pub fn new(agent: Arc<Agent>, settings: TelegramSettings) -> Self {
        Self { bot: settings.bot(), agent, settings: Arc::new(settings), unfinished: Default::default() }
    }

    /// Notes where an update came from before handling it.
    pub(crate) fn remember_chat(&self, update: &teloxide::types::Update) {
        let lang = i18n::Lang::pick(None, update.from().and_then(|u| u.language_code.as_deref()));
        let chat = update.chat().map(|c| c.id);
        let mut map = self.unfinished.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(update.id.0 as i32).or_insert(Unfinished { chat, lang, failures: 0 });
    }

    /// Counts one more failure of the update; how many in a row.
    pub(crate) fn failed_again(&self, id: i32) -> u32 {
        let mut map = self.unfinished.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(id).or_insert(Unfinished { chat: None, lang: i18n::Lang::En, failures: 0 });
        entry.failures += 1;
        entry.failures
    }

    pub(crate) fn forget_failures(&self, id: i32) {
        self.unfinished.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// Tells the parent that their message was set aside after repeated failures.
    pub(crate) async fn apologise_for(&self, id: i32) {
        let gone = self.unfinished.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        if let Some(Unfinished { chat: Some(chat), lang, .. }) = gone
            && let Err(e) = transport::retry(self.bot.send_message(chat, i18n::set_aside(lang))).await
        {
            tracing::warn!(error = %e, "could not send the apology for a set-aside update");
        }
    }

    /// Registers the command menu and the delivery mode, then starts receiving.
    pub async fn start(self, shutdown: watch::Receiver<bool>) -> Result<TelegramRuntime, teloxide::RequestError> {
        self.set_commands().await?;
        match self.settings.webhook_url.clone() {
            Some(url) => {
                transport::retry(self.bot.set_webhook(url.clone()).secret_token(self.settings.webhook_secret.clone())).await?;
                tracing::info!(telegram.webhook = %url.path(), "telegram webhook registered");
                Ok(TelegramRuntime { router: Some(transport::webhook_router(self, url.path())), task: None })
            }
            None => {
                // Telegram refuses getUpdates while a webhook is set.
                transport::retry(self.bot.delete_webhook()).await?;
                tracing::info!("telegram long polling started");
                Ok(TelegramRuntime { router: None, task: Some(tokio::spawn(transport::poll(self, shutdown))) })
            }
        }
    }

    async fn set_commands(&self) -> Result<(), teloxide::RequestError> {
        for lang in [i18n::Lang::En, i18n::Lang::Ko] {
            let commands: Vec<BotCommand> = i18n::commands(lang).into_iter().map(|(c, d)| BotCommand::new(c, d)).collect();
            let mut req = self.bot.set_my_commands(commands);
            if lang == i18n::Lang::Ko {
                req = req.language_code("ko");
            }
            transport::retry(req).await?;
        }
        Ok(())
    }

    /// Handles one update; `Err` means "not handled, deliver it again".
    pub async fn handle(&self, update: teloxide::types::Update) -> Result<(), HandleError> {
        handler::handle(self, update).await
    }
}

/// Pause between failed polls.
pub(crate) const POLL_BACKOFF: Duration = Duration::from_secs(1);
