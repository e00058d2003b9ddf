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
    /// Tokens issued before this instant are refused (`dadly token --revoke`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_valid_after: Option<DateTime<Utc>>,
    #[serde(default)]
    pub role: Role,
}

/// What a parent may do in their family.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages children, parents and erasure; records and asks. The family's first parent.
    #[default]
    Owner,
    /// Records and asks.
    Parent,
    /// Removed from the family: signs in no more.
    Removed,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Parent => "parent",
            Role::Removed => "removed",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "parent" => Role::Parent,
            "removed" => Role::Removed,
            _ => Role::Owner,
        }
    }
}

/// A child of the family, recognised in text by name or any alias.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Member {
    pub id: uuid::Uuid,
    pub family_id: uuid::Uuid,
    pub name: String,
    pub aliases: Vec<String>,
    pub birth_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    /// When the owner was told the child turned 14 and may ask for erasure.
    #[serde(default)]
    pub age_notice_at: Option<DateTime<Utc>>,
}

impl Member {
    /// The name and every alias, in that order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// Where an entry came from.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Web,
    Telegram,
    Voice,
    Photo,
    Import,
    /// A time capsule, from the day it opened.
    Capsule,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Web => "web",
            Source::Telegram => "telegram",
            Source::Voice => "voice",
            Source::Photo => "photo",
            Source::Import => "import",
            Source::Capsule => "capsule",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "web" => Source::Web,
            "telegram" => Source::Telegram,
            "voice" => Source::Voice,
            "photo" => Source::Photo,
            "import" => Source::Import,
            "capsule" => Source::Capsule,
            _ => return None,
        })
    }
}

/// A journal entry. `raw_text` is exactly what the parent sent (or the latest
/// edit of it); earlier versions are kept in the entry's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Entry {
    pub id: uuid::Uuid,
    pub family_id: uuid::Uuid,
    pub author_id: uuid::Uuid,
    pub source: Source,
    pub raw_text: String,
    pub member_ids: Vec<uuid::Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Starts at 1; every edit adds one.
    pub version: i64,
    /// `transcribing` while a voice note waits for its text; then `ready`.
    pub status: EntryStatus,
    /// Where news about the entry goes (channel-specific); not part of the API.
    #[serde(skip)]
    pub reply_to: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    #[default]
    Ready,
    Transcribing,
}

impl EntryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Ready => "ready",
            EntryStatus::Transcribing => "transcribing",
        }
    }
    pub fn parse(s: &str) -> Self {
        if s == "transcribing" { EntryStatus::Transcribing } else { EntryStatus::Ready }
    }
}

/// What the parent sends to be recorded.
#[derive(Debug, Clone, Default)]
pub struct NewEntry {
    pub author_id: UserId,
    pub source: Source,
    pub raw_text: String,
    pub member_ids: Vec<MemberId>,
    pub occurred_at: DateTime<Utc>,
    pub status: EntryStatus,
    /// A channel update id: the entry is written at most once per key, in the
    /// same transaction that records the key as processed.
    pub dedupe_key: Option<String>,
    /// Groups several channel messages into this one entry (an album).
    pub external_key: Option<String>,
    /// Where to send news about the entry (its transcript), channel-specific.
    pub reply_to: Option<String>,
    /// Media still to be fetched from the channel by a job.
    pub media: Vec<PendingMedia>,
}

/// Media a channel message carried, not yet fetched into the `BlobStore`.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingMedia {
    /// `photo` or `voice`.
    pub kind: String,
    /// How the channel finds it again (e.g. `telegram:<file_id>`).
    pub source_ref: String,
    pub content_type: String,
}

/// A media item of an entry; `blob_key` is empty until it has been fetched.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Media {
    pub id: uuid::Uuid,
    pub entry_id: Option<EntryId>,
    pub kind: String,
    pub blob_key: Option<String>,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    #[serde(skip)]
    pub source_ref: Option<String>,
    /// What a vision model saw in the photo, once described.
    pub description: Option<String>,
}

/// A time capsule as anyone may see it: that it exists, who wrote it, for
/// whom, when it opens — never its message (which lives only encrypted until
/// it opens, and then as the entry `entry_id`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Capsule {
    pub id: uuid::Uuid,
    pub family_id: uuid::Uuid,
    pub author_id: uuid::Uuid,
    pub member_id: uuid::Uuid,
    pub open_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// `sealed` until it opens, then `opened`.
    pub status: CapsuleStatus,
    pub opened_at: Option<DateTime<Utc>>,
    /// The entry it became when it opened.
    pub entry_id: Option<uuid::Uuid>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapsuleStatus {
    Sealed,
    Opened,
}

/// An earlier text of an edited entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct EntryVersion {
    pub version: i64,
    pub raw_text: String,
    pub replaced_at: DateTime<Utc>,
}

/// What the model made of an entry, and which model and prompt made it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Insight {
    pub entry_id: uuid::Uuid,
    pub entry_version: i64,
    pub summary: String,
    pub topics: Vec<String>,
    pub emotions: Vec<String>,
    pub member_ids: Vec<uuid::Uuid>,
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
