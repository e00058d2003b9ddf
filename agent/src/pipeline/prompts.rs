//! Daily prompts (Qeepsake-style): a parent who asks for them gets one
//! question a day at their local time on Telegram — about one of the
//! children, drawn from `prompts/daily_questions.txt`, never the same twice
//! within a month, and not on days they already wrote. Their reply becomes an
//! entry about that child, linked to the prompt.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, Utc};

use crate::agent::{Agent, AgentError};
use crate::domain::*;
use crate::pipeline::RecordInput;

/// The questions, `key|English|Korean`, `{child}` replaced by a name.
static QUESTIONS: LazyLock<Vec<(String, String, String)>> = LazyLock::new(|| {
    include_str!("../../../prompts/daily_questions.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.splitn(3, '|');
            Some((parts.next()?.to_string(), parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
});

/// Days within which a question is not asked again.
const NO_REPEAT_DAYS: u64 = 30;

/// `HH:MM`, checked.
pub fn parse_time(value: &str) -> Result<NaiveTime, AgentError> {
    NaiveTime::parse_from_str(value.trim(), "%H:%M").map_err(|_| AgentError::Invalid(format!("`{value}` is not a time like 20:30")))
}

/// `+09:00` / `-05:30` / `Z`, checked.
pub fn parse_offset(value: &str) -> Result<FixedOffset, AgentError> {
    let v = value.trim();
    if v == "Z" || v == "UTC" || v == "+00:00" {
        return Ok(FixedOffset::east_opt(0).expect("zero"));
    }
    let bad = || AgentError::Invalid(format!("`{value}` is not an offset like +09:00"));
    let (sign, rest) = match v.split_at_checked(1) {
        Some(("+", r)) => (1, r),
        Some(("-", r)) => (-1, r),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

/// The question for a day: the first, from a place that moves with the day,
/// whose key was not asked within the month.
pub fn pick_question(day: NaiveDate, recent: &[String]) -> Option<&'static (String, String, String)> {
    let all: &'static Vec<(String, String, String)> = &QUESTIONS;
    let start = day.num_days_from_ce().unsigned_abs() as usize % all.len().max(1);
    (0..all.len()).map(|i| &all[(start + i) % all.len()]).find(|(key, _, _)| !recent.contains(key))
}

impl Agent {
    /// Sets (or clears) the parent's daily prompt time, and the family's offset.
    pub async fn set_prompts(&self, user: &User, time: Option<&str>, utc_offset: Option<&str>) -> Result<(), AgentError> {
        let time = time.map(parse_time).transpose()?.map(|t| t.format("%H:%M").to_string());
        let offset = utc_offset.map(|o| parse_offset(o).map(|_| o.trim().to_string())).transpose()?;
        Ok(self.b.store.set_prompt_time(user.family_id, user.id, time.as_deref(), offset.as_deref()).await?)
    }

    /// The parent's prompt time and the family's offset.
    pub async fn prompts(&self, user: &User) -> Result<(Option<String>, Option<String>), AgentError> {
        Ok(self.b.store.prompt_settings(user.family_id, user.id).await?)
    }

    /// Sends today's prompt to every parent whose time has come (run every
    /// minute by each instance; a day is claimed before sending, so one goes).
    pub async fn send_daily_prompts(&self, now: DateTime<Utc>) -> usize {
        let Some(channel) = self.channel_for("telegram:") else { return 0 };
        let candidates = match self.b.store.prompt_candidates().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for daily prompts");
                return 0;
            }
        };
        let mut sent = 0;
        for c in candidates {
            let offset = c.utc_offset.as_deref().and_then(|o| parse_offset(o).ok()).unwrap_or(self.settings.default_offset);
            let local = now.with_timezone(&offset);
            let Ok(time) = parse_time(&c.time) else { continue };
            let today = local.date_naive();
            if local.time() < time || c.last_on.is_some_and(|d| d >= today) {
                continue;
            }
            match self.prompt_one(channel.as_ref(), &c, today, &offset).await {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, user.id = %c.user_id, "could not send a daily prompt"),
            }
        }
        sent
    }

    async fn prompt_one(&self, channel: &dyn crate::channel::Channel, c: &crate::store::PromptCandidate, today: NaiveDate, offset: &FixedOffset) -> Result<bool, AgentError> {
        // Skipped on days the parent already wrote (the day is claimed all the same).
        let midnight = today.and_hms_opt(0, 0, 0).and_then(|t| t.and_local_timezone(*offset).single()).map(|t| t.to_utc());
        let filter = EntryFilter { from: midnight, limit: 200, ..Default::default() };
        let wrote = self.b.store.list_entries(c.family_id, &filter).await?.iter().any(|e| e.author_id == c.user_id);
        if !self.b.store.claim_prompt_day(c.family_id, c.user_id, today).await? || wrote {
            return Ok(false);
        }
        let kids = self.b.store.list_members(c.family_id).await?;
        let child = (!kids.is_empty()).then(|| &kids[today.num_days_from_ce().unsigned_abs() as usize % kids.len()]);
        let since = today.checked_sub_days(chrono::Days::new(NO_REPEAT_DAYS)).unwrap_or(today);
        let recent = self.b.store.recent_prompts(c.family_id, c.user_id, since).await?;
        let Some((key, en, ko)) = pick_question(today, &recent) else { return Ok(false) };
        let link = self.b.store.telegram_link_of(c.family_id, c.user_id).await?;
        let Some((telegram_user, language)) = link else { return Ok(false) };
        let name = child.map(|k| k.name.as_str()).unwrap_or(if language.as_deref() == Some("ko") { "아이" } else { "your child" });
        let template = if language.as_deref().is_some_and(|l| l.starts_with("ko")) { ko } else { en };
        let text = format!("{}\n\n(Reply to this message and I'll keep your answer in the journal.)", template.replace("{child}", name));
        let sent = channel.notify(&format!("telegram:{telegram_user}"), &text).await.map_err(|e| AgentError::Unavailable(Box::new(e)))?;
        self.b.store.log_prompt(c.family_id, c.user_id, key, child.map(|k| k.id), today, &sent.chat_key, sent.message_id).await?;
        self.b.metrics.inc("dadly_daily_prompts_total", &[]);
        Ok(true)
    }

    /// A reply to a prompt: recorded as an entry about the prompt's child,
    /// linked to the prompt. `None` when the message answered no prompt.
    pub async fn answer_prompt(&self, user: &User, chat_key: &str, replied_to: i64, input: RecordInput) -> Result<Option<Entry>, AgentError> {
        let Some(prompt) = self.b.store.prompt_for_message(user.family_id, chat_key, replied_to).await? else { return Ok(None) };
        let mut input = input;
        let known = self.b.store.list_members(user.family_id).await?;
        let mut ids = crate::text::members::detect_members(&input.text, &known);
        if let Some(m) = prompt.member_id
            && !ids.contains(&m)
            && known.iter().any(|k| k.id == m)
        {
            ids.push(m);
        }
        input.member_ids = Some(ids);
        let entry = self.record(user, input).await?;
        self.b.store.link_prompt_entry(user.family_id, prompt.id, entry.id).await?;
        Ok(Some(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_do_not_repeat_within_a_month_and_times_parse() {
        let mut recent: Vec<String> = Vec::new();
        let start = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        for i in 0..30 {
            let day = start + chrono::Days::new(i);
            let (key, en, ko) = pick_question(day, &recent).expect("a question left");
            assert!(en.contains("{child}") && ko.contains("{child}"), "{key}");
            assert!(!recent.contains(key));
            recent.push(key.clone());
        }
        assert_eq!(parse_time("20:30").unwrap().format("%H:%M").to_string(), "20:30");
        assert!(parse_time("25:00").is_err() && parse_time("tonight").is_err());
        assert_eq!(parse_offset("+09:00").unwrap().local_minus_utc(), 9 * 3600);
        assert!(parse_offset("Asia/Seoul").is_err() && parse_offset("+99:00").is_err());
    }
}
