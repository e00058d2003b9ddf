//! The `VectorIndex` port: nearest entries to a query vector, always within
//! one family, optionally narrowed by child and time.

mod embedded;
mod qdrant;
pub mod quantized;

pub use embedded::{DEFAULT_CACHE_BYTES, EmbeddedIndex};
pub use qdrant::QdrantIndex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{EntryId, FamilyId, MemberId};
use crate::store::{LexicalHit, PayloadUpdate, VectorRecord};

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("vector index unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("vector has {got} dimensions, the index expects {expected}")]
    Dimensions { expected: usize, got: usize },
    #[error("vector index error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Narrows a search. The family is not optional: it is an argument of every call.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// Entries about any of these children, or about no child in particular
    /// (the whole family: "built a blanket fort"); empty: any entry.
    pub member_ids: Vec<MemberId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl SearchFilter {
    /// Whether an entry about `members` is one this filter asks for: any
    /// entry without children named, else one about any of them or about no
    /// child in particular (the whole family).
    pub fn admits(&self, members: &[MemberId]) -> bool {
        self.member_ids.is_empty() || members.is_empty() || members.iter().any(|m| self.member_ids.contains(m))
    }
}

/// One search result: cosine similarity in `[-1, 1]`, higher is closer.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub entry_id: EntryId,
    pub score: f32,
}

#[async_trait]
pub trait VectorIndex: Send + Sync + 'static {
    /// Backend name for status output.
    fn backend(&self) -> &'static str;
    /// Whether the index answers (for `/readyz`).
    async fn ping(&self) -> Result<(), IndexError> {
        Ok(())
    }
    /// Bytes of vectors held in this process's memory (an in-process index).
    fn cache_bytes(&self) -> Option<u64> {
        None
    }
    /// How many times a family's vectors were read from the store into memory.
    fn cache_loads(&self) -> Option<u64> {
        None
    }
    /// Inserts or replaces the entry's point (idempotent by entry id).
    async fn upsert(&self, family_id: FamilyId, record: VectorRecord) -> Result<(), IndexError>;
    /// Upserts many of the family's entries; a backend that can writes them at once.
    async fn upsert_many(&self, family_id: FamilyId, records: Vec<VectorRecord>) -> Result<(), IndexError> {
        for record in records {
            self.upsert(family_id, record).await?;
        }
        Ok(())
    }
    /// Updates the filterable payload without re-embedding; a missing point is not an error.
    async fn set_payload(
        &self,
        family_id: FamilyId,
        entry_id: EntryId,
        member_ids: &[MemberId],
        topics: &[String],
        emotions: &[String],
    ) -> Result<(), IndexError>;
    /// Updates many of the family's payloads; a backend that can writes them at once.
    async fn set_payloads(&self, family_id: FamilyId, updates: &[PayloadUpdate]) -> Result<(), IndexError> {
        for u in updates {
            self.set_payload(family_id, u.entry_id, &u.member_ids, &u.topics, &u.emotions).await?;
        }
        Ok(())
    }
    /// Removes the entry's point; removing a missing point is not an error.
    async fn delete(&self, family_id: FamilyId, entry_id: EntryId) -> Result<(), IndexError>;
    /// The `limit` closest entries of the family that pass the filter, best first.
    async fn search(
        &self,
        family_id: FamilyId,
        query: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError>;
    /// Where the entries' lexical terms are kept: `store` (the store's own
    /// lexical index: FTS5, a tsvector) unless this index keeps them beside
    /// the vectors.
    fn lexical_backend(&self) -> &'static str {
        "store"
    }
    /// The family's entries that pass the filter and hold any of `terms`,
    /// best first, each with the question's terms it holds; `None` when
    /// this index keeps no terms (the store's lexical index answers then).
    async fn lexical_search(
        &self,
        _family_id: FamilyId,
        _terms: &[String],
        _filter: &SearchFilter,
        _limit: usize,
    ) -> Result<Option<Vec<LexicalHit>>, IndexError> {
        Ok(None)
    }
}

/// Cosine similarity; zero when either vector is all zeros or lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na.sqrt() * nb.sqrt()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_filter_admits_the_childs_entries_and_the_familys() {
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let about_a = SearchFilter { member_ids: vec![a], ..Default::default() };
        assert!(about_a.admits(&[a]) && about_a.admits(&[a, b]));
        assert!(about_a.admits(&[]), "an entry naming no child is the whole family's");
        assert!(!about_a.admits(&[b]));
        assert!(SearchFilter::default().admits(&[b]));
    }
}
