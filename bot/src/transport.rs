//! Getting updates in and requests out: long polling, the webhook route, and
//! retries for Telegram's 429 (`retry_after`) and network errors.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use teloxide::RequestError;
use teloxide::payloads::setters::*;
use teloxide::prelude::Requester;
use teloxide::requests::Request;
use teloxide::types::Update;
use tokio::sync::{mpsc, watch};

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

/// Long polling until `shutdown`.
///
/// Updates of different chats are handled concurrently (one slow answer never
/// holds up another family); updates of one chat in order. The offset only
/// moves past an update once it and every earlier one are finished, so a
/// crash means redelivery, never loss. An update that fails `POISON_AFTER`
/// times in a row is set aside with an apology to its chat, not retried forever.
pub(crate) async fn poll(bot: TelegramBot, mut shutdown: watch::Receiver<bool>) {
    let mut state = PollState::default();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(i32, Result<(), String>)>();
    loop {
        if *shutdown.borrow() {
            break;
        }
        while let Ok((id, result)) = done_rx.try_recv() {
            state.finish(&bot, id, result).await;
        }
        let request = bot.bot.get_updates().offset(state.offset()).timeout(bot.settings.poll_timeout_secs);
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
        let mut dispatched = 0;
        for update in updates {
            let id = update.id.0 as i32;
            if !state.should_dispatch(id) {
                continue;
            }
            dispatched += 1;
            state.dispatch(&bot, update, done_tx.clone());
        }
        if dispatched == 0 {
            // Nothing new: everything returned is in hand or waiting to retry.
            // Wait for a finished update (or a moment) instead of polling hot.
            tokio::select! {
                Some((id, result)) = done_rx.recv() => state.finish(&bot, id, result).await,
                _ = tokio::time::sleep(Duration::from_millis(if state.in_flight.is_empty() && state.retry_at.is_empty() { 100 } else { 250 })) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
    // Let what is in hand finish (its result is durable either way; unfinished ones are redelivered).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !state.in_flight.is_empty() {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some((id, result))) => state.finish(&bot, id, result).await,
            _ => break,
        }
    }
    tracing::info!("telegram polling stopped");
}

/// How many failures in a row make an update poison.
pub(crate) const POISON_AFTER: u32 = 3;

#[derive(Default)]
struct PollState {
    /// Updates being handled now.
    in_flight: BTreeSet<i32>,
    /// Updates finished while an earlier one is not: Telegram still returns
    /// them (the offset cannot pass the earlier one), and they must not run twice.
    finished: BTreeSet<i32>,
    /// The highest update id seen; the offset passes it once nothing is unfinished.
    max_seen: Option<i32>,
    /// When a failed update may run again.
    retry_at: HashMap<i32, tokio::time::Instant>,
    /// Per chat: a signal that the chat's previous update is finished.
    chat_tail: HashMap<i64, watch::Receiver<bool>>,
}

impl PollState {
    /// The lowest update not yet finished (Telegram forgets everything below it).
    fn offset(&self) -> i32 {
        let unfinished = self.in_flight.iter().chain(self.retry_at.keys()).min().copied();
        match (unfinished, self.max_seen) {
            (Some(id), _) => id,
            (None, Some(max)) => max + 1,
            (None, None) => 0,
        }
    }

    fn should_dispatch(&self, id: i32) -> bool {
        if self.in_flight.contains(&id) || self.finished.contains(&id) {
            return false;
        }
        match self.retry_at.get(&id) {
            Some(at) => tokio::time::Instant::now() >= *at,
            None => true,
        }
    }

    fn dispatch(&mut self, bot: &TelegramBot, update: Update, done: mpsc::UnboundedSender<(i32, Result<(), String>)>) {
        let id = update.id.0 as i32;
        self.in_flight.insert(id);
        self.retry_at.remove(&id);
        self.max_seen = Some(self.max_seen.map_or(id, |m| m.max(id)));
        let chat = update.chat().map(|c| c.id.0);
        bot.remember_chat(&update);
        let (finished_tx, finished_rx) = watch::channel(false);
        let previous = chat.and_then(|c| self.chat_tail.insert(c, finished_rx));
        let bot = bot.clone();
        tokio::spawn(async move {
            if let Some(mut previous) = previous {
                // Same chat: wait for its earlier update (a dropped sender means it ended too).
                let _ = previous.wait_for(|done| *done).await;
            }
            // Its own task: a panic in handling is this update's failure, not the poller's.
            let result = match tokio::spawn(async move { bot.handle(update).await }).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) if e.is_panic() => Err("the handler panicked".to_string()),
                Err(e) => Err(e.to_string()),
            };
            let _ = finished_tx.send(true);
            let _ = done.send((id, result));
        });
    }

    async fn finish(&mut self, bot: &TelegramBot, id: i32, result: Result<(), String>) {
        self.in_flight.remove(&id);
        match result {
            Ok(()) => {
                bot.forget_failures(id);
                self.finished.insert(id);
            }
            Err(e) => {
                let n = bot.failed_again(id);
                if n >= POISON_AFTER {
                    tracing::error!(error = %e, telegram.update_id = id, failures = n, "setting aside an update that keeps failing");
                    bot.apologise_for(id).await;
                    self.finished.insert(id);
                } else {
                    tracing::warn!(error = %e, telegram.update_id = id, failures = n, "update not handled; will retry");
                    self.retry_at.insert(id, tokio::time::Instant::now() + POLL_BACKOFF * n);
                }
            }
        }
        // Forget chats whose last update is finished, and what the offset now confirms.
        self.chat_tail.retain(|_, rx| !*rx.borrow());
        let offset = self.offset();
        self.finished.retain(|done| *done >= offset);
    }
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
    let id = update.id.0 as i32;
    bot.remember_chat(&update);
    // Its own task: a panic is this update's failure, counted like any other.
    let handled = {
        let bot = bot.clone();
        tokio::spawn(async move { bot.handle(update).await }).await
    };
    match handled {
        Ok(Ok(())) => {
            bot.forget_failures(id);
            StatusCode::OK
        }
        Ok(Err(_)) | Err(_) => {
            if bot.failed_again(id) >= POISON_AFTER {
                tracing::error!(telegram.update_id = id, "setting aside a webhook update that keeps failing");
                bot.apologise_for(id).await;
                return StatusCode::OK;
            }
            // Telegram delivers it again later; the update id makes that safe.
            StatusCode::INTERNAL_SERVER_ERROR
        }
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
