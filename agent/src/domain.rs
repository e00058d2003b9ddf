//! Domain types shared by every port and channel. Ids are UUIDs; every
//! family-owned value carries the family it belongs to.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The owner of all data: one household.
pub type FamilyId = Uuid;
/// A parent who can log in.
pub type UserId = Uuid;
/// A child the journal is about.
pub type MemberId = Uuid;
/// A journal entry.
pub type EntryId = Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Family {
    pub id: FamilyId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: UserId,
    pub family_id: FamilyId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A child of the family, recognised in text by name or any alias.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Member {
    pub id: MemberId,
    pub family_id: FamilyId,
    pub name: String,
    pub aliases: Vec<String>,
    pub birth_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
}

impl Member {
    /// The name and every alias, in that order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// Where an entry came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Web,
    Telegram,
    Voice,
    Photo,
    Import,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Web => "web",
            Source::Telegram => "telegram",
            Source::Voice => "voice",
            Source::Photo => "photo",
            Source::Import => "import",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "web" => Source::Web,
            "telegram" => Source::Telegram,
            "voice" => Source::Voice,
            "photo" => Source::Photo,
            "import" => Source::Import,
            _ => return None,
        })
    }
}

/// A journal entry. `raw_text` is exactly what the parent sent (or the latest
/// edit of it); earlier versions are kept in the entry's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub id: EntryId,
    pub family_id: FamilyId,
    pub author_id: UserId,
    pub source: Source,
    pub raw_text: String,
    pub member_ids: Vec<MemberId>,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Starts at 1; every edit adds one.
    pub version: i64,
}

/// What the parent sends to be recorded.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub author_id: UserId,
    pub source: Source,
    pub raw_text: String,
    pub member_ids: Vec<MemberId>,
    pub occurred_at: DateTime<Utc>,
}

/// An earlier text of an edited entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EntryVersion {
    pub version: i64,
    pub raw_text: String,
    pub replaced_at: DateTime<Utc>,
}

/// What the model made of an entry, and which model and prompt made it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Insight {
    pub entry_id: EntryId,
    pub entry_version: i64,
    pub summary: String,
    pub topics: Vec<String>,
    pub emotions: Vec<String>,
    pub member_ids: Vec<MemberId>,
    pub model: String,
    pub prompt_name: String,
    pub prompt_version: String,
    pub created_at: DateTime<Utc>,
}

/// Filters for listing entries; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub member_id: Option<MemberId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub topic: Option<String>,
    pub emotion: Option<String>,
    /// Only entries whose `occurred_at` is strictly before this (paging cursor).
    pub before: Option<(DateTime<Utc>, EntryId)>,
    pub limit: u32,
}

/// One remembered line of a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatTurn {
    pub chat_id: String,
    pub role: String,
    pub content: String,
    pub created_at: DateTime<Utc>,
}
