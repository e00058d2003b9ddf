//! Getting updates in and requests out: long polling, the webhook route, and
//! retries for Telegram's 429 (`retry_after`) and network errors.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use teloxide::RequestError;
use teloxide::payloads::setters::*;
use teloxide::prelude::Requester;
use teloxide::requests::Request;
use teloxide::types::Update;
use tokio::sync::watch;

use crate::{POLL_BACKOFF, TelegramBot};

const MAX_TRIES: u32 = 5;

/// Sends a request, waiting out 429s and retrying network errors with backoff.
pub(crate) async fn retry<R>(request: R) -> Result<<R::Payload as teloxide::requests::Payload>::Output, RequestError>
where
    R: Request<Err = RequestError>,
{
    let mut backoff = Duration::from_millis(300);
    let mut tries = 0;
    loop {
        tries += 1;
        match request.send_ref().await {
            Err(RequestError::RetryAfter(wait)) if tries < MAX_TRIES => {
                tracing::warn!(telegram.retry_after_s = wait.seconds(), "telegram rate limit; waiting");
                tokio::time::sleep(wait.duration().min(Duration::from_secs(60))).await;
            }
            Err(RequestError::Network(e)) if tries < MAX_TRIES => {
                tracing::warn!(error = %e, "telegram unreachable; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            other => return other,
        }
    }
}

/// Long polling until `shutdown`: the offset moves past an update only once
/// it has been handled, so a crash means redelivery, never loss.
pub(crate) async fn poll(bot: TelegramBot, mut shutdown: watch::Receiver<bool>) {
    let mut offset: i32 = 0;
    let mut failures_on_same: u32 = 0;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let request = bot.bot.get_updates().offset(offset).timeout(bot.settings.poll_timeout_secs);
        let updates = tokio::select! {
            r = retry(request) => r,
            _ = shutdown.changed() => break,
        };
        let updates = match updates {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "getUpdates failed");
                tokio::time::sleep(POLL_BACKOFF).await;
                continue;
            }
        };
        if updates.is_empty() && bot.settings.poll_timeout_secs == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for update in updates {
            let id = update.id.0 as i32;
            match bot.handle(update).await {
                Ok(()) => {
                    offset = id + 1;
                    failures_on_same = 0;
                }
                Err(e) if failures_on_same < 5 => {
                    failures_on_same += 1;
                    tracing::warn!(error = %e, telegram.update_id = id, "update not handled; will retry");
                    tokio::time::sleep(POLL_BACKOFF).await;
                    break;
                }
                Err(e) => {
                    // A poison update must not stop every later one.
                    tracing::error!(error = %e, telegram.update_id = id, "giving up on an update after retries");
                    offset = id + 1;
                    failures_on_same = 0;
                }
            }
        }
    }
    tracing::info!("telegram polling stopped");
}

/// Constant-time comparison, so the secret cannot be guessed byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn webhook(State(bot): State<TelegramBot>, headers: HeaderMap, body: String) -> StatusCode {
    let given = headers.get("x-telegram-bot-api-secret-token").map(|v| v.as_bytes()).unwrap_or_default();
    if !same(given, bot.settings.webhook_secret.as_bytes()) {
        tracing::warn!("telegram webhook call with a wrong secret token");
        return StatusCode::UNAUTHORIZED;
    }
    let update: Update = match serde_json::from_str(&body) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "telegram webhook body is not an update");
            return StatusCode::BAD_REQUEST;
        }
    };
    match bot.handle(update).await {
        Ok(()) => StatusCode::OK,
        // Telegram delivers it again later; the update id makes that safe.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub(crate) fn webhook_router(bot: TelegramBot, path: &str) -> axum::Router {
    let path = if path.is_empty() { "/" } else { path };
    axum::Router::new().route(path, post(webhook)).with_state(bot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_exactly() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"abc"));
    }
}
