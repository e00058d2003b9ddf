//! Chat: one message in, one outcome out. Routes the message (rules first,
//! the chat model for unclear ones), then records or answers, and remembers
//! the turn. Every message is one trace.

use serde_json::json;

use crate::agent::{Agent, AgentError, Message, Outcome};
use crate::domain::*;
use crate::models::{ChatMessage, ChatRequest, OutputSchema, Task};
use crate::text::{is_korean, route::{Intent, route}};
use crate::trace::{RunType, Span};

use super::record::RecordInput;

fn route_schema() -> OutputSchema {
    OutputSchema {
        name: "route",
        schema: json!({
            "type": "object",
            "properties": { "kind": { "type": "string", "enum": ["record", "ask"] } },
            "required": ["kind"],
            "additionalProperties": false,
        }),
    }
}

fn help_text(korean: bool) -> String {
    if korean {
        "저는 Dadly예요. 아이들에 대해 있었던 일을 보내 주시면 일기로 남겨 드리고(예: \"민지가 오늘 첫 이가 빠졌다\"), \
         질문하시면 일기에서 찾아 답해 드려요(예: \"민지 이 언제 빠졌지?\"). /record 로 기록, /ask 로 질문할 수도 있어요."
            .into()
    } else {
        "I'm Dadly. Tell me what happened with your kids and I'll keep it in your journal (\"Minji lost her first tooth today\"); \
         ask me anything about what you've recorded (\"When did Minji lose her first tooth?\"). Use /record or /ask to be explicit."
            .into()
    }
}

fn recorded_reply(entry: &Entry, names: &[String], korean: bool) -> String {
    let date = entry.occurred_at.format("%Y-%m-%d");
    match (korean, names.is_empty()) {
        (true, true) => format!("기록했어요 ({date})."),
        (true, false) => format!("{}의 기록으로 남겼어요 ({date}).", names.join(", ")),
        (false, true) => format!("Saved to your journal ({date})."),
        (false, false) => format!("Saved to {}'s journal ({date}).", names.join(" & ")),
    }
}

impl Agent {
    /// `handle`, with an answer's text sent to `deltas` as the model produces
    /// it (a model that cannot stream sends nothing; the outcome has it all).
    /// Dropping the future cancels the model call; an entry it recorded is
    /// stored before it returns.
    pub async fn handle_streaming(&self, user: &User, message: Message, deltas: tokio::sync::mpsc::UnboundedSender<String>) -> Result<Outcome, AgentError> {
        crate::agent::ANSWER_DELTAS.scope(deltas, self.handle(user, message)).await
    }

    /// Handles one message from a parent: record, answer or help.
    pub async fn handle(&self, user: &User, message: Message) -> Result<Outcome, AgentError> {
        if let Err(wait) = self.limiter.check(user.id) {
            self.b.metrics.inc("dadly_rate_limited_total", &[("source", message.source.as_str())]);
            return Err(AgentError::RateLimited(wait));
        }
        // A capsule's message must never reach a trace: only its length does.
        let shown = if crate::capsule::mentions_capsule(&message.text) {
            json!(format!("[time capsule request: {} characters]", message.text.chars().count()))
        } else {
            json!(message.text)
        };
        let mut root = self.b.tracer.root("message", RunType::Chain, json!({ "text": shown, "chat_id": message.chat_id }));
        root.metadata("source", json!(message.source.as_str()));
        root.metadata("family_id", json!(user.family_id));
        match self.handle_in(user, &message, &mut root).await {
            Ok(outcome) => {
                let kind = match &outcome {
                    Outcome::Recorded { .. } => "recorded",
                    Outcome::Answered { .. } => "answered",
                    Outcome::Help { .. } => "help",
                    Outcome::Capsule { .. } => "capsule",
                    Outcome::Duplicate => "duplicate",
                };
                root.end(json!({ "kind": kind, "reply": outcome.reply() }));
                Ok(outcome)
            }
            Err(e) => {
                root.fail(&e.to_string());
                Err(e)
            }
        }
    }

    async fn handle_in(&self, user: &User, message: &Message, root: &mut Span) -> Result<Outcome, AgentError> {
        let text = super::record::validate_text(&message.text)?;
        crate::validate::local_instant("sent_at", message.sent_at)?;
        crate::validate::label("chat_id", &message.chat_id, 128)?;
        // Capsules first: their text is kept out of chat memory and of the record/ask flows.
        if let Some(outcome) = self.capsule_chat(user, message, &text, None).await? {
            return Ok(outcome);
        }
        let (intent, body) = route(&text);
        let korean = is_korean(&text);
        let intent = match intent {
            Intent::Unclear => self.route_with_model(user.family_id, body, root).await,
            other => other,
        };
        root.metadata("intent", json!(format!("{intent:?}").to_lowercase()));
        let outcome = match intent {
            Intent::Help | Intent::Unclear => Outcome::Help { reply: help_text(korean) },
            Intent::Record => {
                let input = RecordInput {
                    text: body.to_string(),
                    source: message.source,
                    occurred_at: None,
                    member_ids: None,
                    sent_at: message.sent_at,
                    dedupe_key: message.dedupe_key.clone(),
                    reply_to: message.reply_to.clone(),
                };
                let (entry, members) = match self.record_with_members(user, input, root).await {
                    Err(AgentError::AlreadyHandled) => return Ok(Outcome::Duplicate),
                    other => other?,
                };
                root.metadata("entry_id", json!(entry.id));
                let names: Vec<String> = members.iter().filter(|m| entry.member_ids.contains(&m.id)).map(|m| m.name.clone()).collect();
                Outcome::Recorded { reply: recorded_reply(&entry, &names, korean), entry }
            }
            Intent::Ask => {
                let history = self.b.store.recent_chat_turns(user.family_id, &message.chat_id, 6).await?;
                let answer = self.answer_in(user, body, message.sent_at, &history, root).await?;
                // Claimed only once answered: an answer that failed is retried on
                // redelivery, and an answer given before is not sent twice.
                if !self.claim(user, message).await? {
                    return Ok(Outcome::Duplicate);
                }
                self.b.metrics.inc("dadly_questions_answered_total", &[("found", if answer.sources.is_empty() { "no" } else { "yes" })]);
                Outcome::Answered { reply: answer.text, sources: answer.sources }
            }
        };
        self.remember(user, message, &outcome).await;
        Ok(outcome)
    }

    /// Asks the chat model whether an unclear message records or asks. If the
    /// model fails, the message is recorded: keeping a note loses nothing.
    async fn route_with_model(&self, family_id: FamilyId, text: &str, root: &Span) -> Intent {
        let prompt = &self.prompts.route;
        let (system, user) = prompt.render(&[("message", text)]).expect("route placeholders are tested");
        let request = ChatRequest {
            task: Task::Route { message: text.to_string() },
            messages: vec![ChatMessage::system(system), ChatMessage::user(user)],
            schema: Some(route_schema()),
            temperature: 0.0,
            deltas: None,
        };
        match self.call_chat(family_id, root, "route", &request).await {
            Ok(done) => match super::parse_json(&done.content).ok().and_then(|v| v["kind"].as_str().map(str::to_string)).as_deref() {
                Some("ask") => Intent::Ask,
                _ => Intent::Record,
            },
            Err(_) => Intent::Record,
        }
    }

    /// Claims the message's update key (if any): false when it was handled before.
    async fn claim(&self, user: &User, message: &Message) -> Result<bool, AgentError> {
        match &message.dedupe_key {
            Some(key) => Ok(self.b.store.claim_update(user.family_id, key).await?),
            None => Ok(true),
        }
    }

    /// Keeps the turn as short-term chat memory; a failure here is logged, not fatal.
    async fn remember(&self, user: &User, message: &Message, outcome: &Outcome) {
        let now = chrono::Utc::now();
        // The message and its reply in one write.
        let turns: Vec<ChatTurn> = [("user", message.text.as_str()), ("assistant", outcome.reply())]
            .into_iter()
            .map(|(role, content)| ChatTurn { chat_id: message.chat_id.clone(), role: role.into(), content: content.into(), created_at: now })
            .collect();
        if let Err(e) = self.b.store.add_chat_turns(user.family_id, user.id, &turns).await {
            tracing::warn!(error = %e, "could not store chat turns");
        }
    }
}
