//! `EmbeddedIndex`: exact cosine scan over the family's vectors, which live in
//! the `Store` (so they survive restarts and need no re-embedding). Fine for a
//! family's journal — thousands of entries — and needs no extra service.
//!
//! A family's vectors are kept in memory after a search and reused while the
//! Store's vector generation for that family is unchanged (a trigger moves it
//! on every insert, update or delete, from any process), so a question costs
//! one small query plus the scan instead of reading every vector again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Hit, IndexError, SearchFilter, VectorIndex, cosine};
use crate::domain::{EntryId, FamilyId, MemberId};
use crate::store::{Store, StoreError, VectorRecord};

/// Families whose vectors are kept in memory at once; beyond this the cache starts over.
const CACHED_FAMILIES: usize = 64;

type Cached = (i64, Arc<Vec<VectorRecord>>);

pub struct EmbeddedIndex {
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<FamilyId, Cached>>,
}

impl EmbeddedIndex {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, cache: Mutex::new(HashMap::new()) }
    }

    /// Every vector of the family, from memory while the generation holds.
    async fn vectors(&self, family_id: FamilyId) -> Result<Arc<Vec<VectorRecord>>, IndexError> {
        let generation = self.store.vector_generation(family_id).await.map_err(index_err)?;
        if let Some((cached_gen, records)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&family_id)
            && *cached_gen == generation
        {
            return Ok(records.clone());
        }
        let records = Arc::new(self.store.load_vectors(family_id, None, None).await.map_err(index_err)?);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHED_FAMILIES && !cache.contains_key(&family_id) {
            cache.clear();
        }
        cache.insert(family_id, (generation, records.clone()));
        Ok(records)
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
        let all = self.vectors(family_id).await?;
        let records: Vec<&VectorRecord> = all
            .iter()
            .filter(|r| filter.from.is_none_or(|from| r.occurred_at >= from) && filter.to.is_none_or(|to| r.occurred_at < to))
            .collect();
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
            // A long entry counts by its best piece: one hit per entry.
            .map(|r| Hit { entry_id: r.entry_id, score: r.chunk_vectors().map(|v| cosine(query, v)).fold(f32::MIN, f32::max) })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.entry_id.cmp(&a.entry_id)));
        hits.truncate(limit);
        Ok(hits)
    }
}
