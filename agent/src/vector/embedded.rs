//! `EmbeddedIndex`: exact cosine scan over the family's vectors, which live in
//! the `Store` (so they survive restarts and need no re-embedding). Fine for a
//! family's journal — thousands of entries — and needs no extra service.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Hit, IndexError, SearchFilter, VectorIndex, cosine};
use crate::domain::{EntryId, FamilyId, MemberId};
use crate::store::{Store, StoreError, VectorRecord};

pub struct EmbeddedIndex {
    store: Arc<dyn Store>,
}

impl EmbeddedIndex {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

fn index_err(e: StoreError) -> IndexError {
    match e {
        StoreError::Unavailable(e) => IndexError::Unavailable(e),
        other => IndexError::Backend(Box::new(other)),
    }
}

#[async_trait]
impl VectorIndex for EmbeddedIndex {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn upsert(&self, family_id: FamilyId, record: VectorRecord) -> Result<(), IndexError> {
        self.store.put_vector(family_id, &record).await.map_err(index_err)
    }

    async fn set_payload(
        &self,
        family_id: FamilyId,
        entry_id: EntryId,
        member_ids: &[MemberId],
        topics: &[String],
        emotions: &[String],
    ) -> Result<(), IndexError> {
        self.store.set_vector_payload(family_id, entry_id, member_ids, topics, emotions).await.map_err(index_err)
    }

    async fn delete(&self, family_id: FamilyId, entry_id: EntryId) -> Result<(), IndexError> {
        self.store.delete_vector(family_id, entry_id).await.map_err(index_err)
    }

    async fn search(
        &self,
        family_id: FamilyId,
        query: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        let records = self.store.load_vectors(family_id, filter.from, filter.to).await.map_err(index_err)?;
        // Vectors from another embedding model (another dimension) cannot be
        // compared; they are skipped until `dadly reindex` re-embeds them.
        let stale = records.iter().filter(|r| r.vector.len() != query.len()).count();
        if stale > 0 {
            tracing::warn!(index.stale_vectors = stale, "skipping vectors of another dimension; run `dadly reindex`");
        }
        let mut hits: Vec<Hit> = records
            .iter()
            .filter(|r| r.vector.len() == query.len())
            .filter(|r| filter.member_ids.is_empty() || r.member_ids.iter().any(|m| filter.member_ids.contains(m)))
            .map(|r| Hit { entry_id: r.entry_id, score: cosine(query, &r.vector) })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.entry_id.cmp(&a.entry_id)));
        hits.truncate(limit);
        Ok(hits)
    }
}
