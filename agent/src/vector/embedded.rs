//! `EmbeddedIndex`: the family's vectors live in the `Store` (so they survive
//! restarts and need no re-embedding); searches run over an in-memory copy,
//! quantised (`quantized.rs`: a sign-bit scan for large families, int8
//! scoring, int16 rescoring — about 0.8× the raw bytes), that is
//!
//! - reused while the Store's vector generation for the family holds (a
//!   trigger moves it on every insert, update or delete, from any process);
//! - updated in place by this process's own writes (when the generation moved
//!   by exactly that write), so write-then-ask never reloads the family;
//! - loaded once however many questions arrive together (single-flight);
//! - bounded in bytes (`DADLY_INDEX_CACHE_MB`): the least recently used
//!   families are dropped first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;

use super::quantized::FamilyVectors;
use super::{Hit, IndexError, SearchFilter, VectorIndex};
use crate::domain::{EntryId, FamilyId, MemberId};
use crate::store::{PayloadUpdate, Store, StoreError, VectorRecord};

/// The default bound of the in-memory copies.
pub const DEFAULT_CACHE_BYTES: usize = 512 << 20;

struct Cached {
    generation: i64,
    family: Arc<RwLock<FamilyVectors>>,
    bytes: usize,
    last_used: u64,
}

#[derive(Default)]
struct Cache {
    families: HashMap<FamilyId, Cached>,
    bytes: usize,
    clock: u64,
}

impl Cache {
    fn remove(&mut self, family_id: FamilyId) {
        if let Some(c) = self.families.remove(&family_id) {
            self.bytes -= c.bytes;
        }
    }

    /// Drops the least recently used families (never `keep`) until within `budget`.
    fn evict(&mut self, budget: usize, keep: FamilyId) {
        while self.bytes > budget {
            let Some(victim) = self.families.iter().filter(|(id, _)| **id != keep).min_by_key(|(_, c)| c.last_used).map(|(id, _)| *id) else { break };
            self.remove(victim);
        }
    }
}

pub struct EmbeddedIndex {
    store: Arc<dyn Store>,
    cache: Mutex<Cache>,
    loading: Mutex<HashMap<FamilyId, Arc<tokio::sync::Mutex<()>>>>,
    /// This process's writes to one family's vectors go one at a time, so each
    /// moves the generation by exactly one and can be applied in place (two
    /// workers writing at once would otherwise look like another process).
    writing: Mutex<HashMap<FamilyId, Arc<tokio::sync::Mutex<()>>>>,
    budget: usize,
    loads: std::sync::atomic::AtomicU64,
}

impl EmbeddedIndex {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_cache_bytes(store, DEFAULT_CACHE_BYTES)
    }

    pub fn with_cache_bytes(store: Arc<dyn Store>, budget: usize) -> Self {
        Self { store, cache: Mutex::new(Cache::default()), loading: Mutex::new(HashMap::new()), writing: Mutex::new(HashMap::new()), budget, loads: Default::default() }
    }

    /// How many times a family was read from the store (not served from memory).
    pub fn loads(&self) -> u64 {
        self.loads.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, family_id: FamilyId, generation: i64) -> Option<Arc<RwLock<FamilyVectors>>> {
        let mut cache = self.cache();
        cache.clock += 1;
        let now = cache.clock;
        let c = cache.families.get_mut(&family_id).filter(|c| c.generation == generation)?;
        c.last_used = now;
        Some(c.family.clone())
    }

    /// The family's vectors, from memory while the generation holds; loaded once for many askers.
    async fn vectors(&self, family_id: FamilyId) -> Result<Arc<RwLock<FamilyVectors>>, IndexError> {
        let generation = self.store.vector_generation(family_id).await.map_err(index_err)?;
        if let Some(found) = self.cached(family_id, generation) {
            return Ok(found);
        }
        // Perhaps one of this process's writes has committed and is being
        // applied to the copy right now: let it finish rather than reload.
        if self.cache().families.contains_key(&family_id) {
            drop(self.write_gate(family_id).lock().await);
            let generation = self.store.vector_generation(family_id).await.map_err(index_err)?;
            if let Some(found) = self.cached(family_id, generation) {
                return Ok(found);
            }
        }
        let gate = self.loading.lock().unwrap_or_else(|p| p.into_inner()).entry(family_id).or_default().clone();
        let _loading = gate.lock().await;
        // Read before loading: a write during the load makes the next search reload.
        let generation = self.store.vector_generation(family_id).await.map_err(index_err)?;
        if let Some(found) = self.cached(family_id, generation) {
            return Ok(found);
        }
        let records = self.store.load_vectors(family_id, None, None).await.map_err(index_err)?;
        self.loads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let family = FamilyVectors::from_records(&records);
        drop(records);
        if family.stale > 0 {
            tracing::warn!(index.stale_vectors = family.stale, "skipping vectors of another dimension; run `dadly reindex`");
        }
        let bytes = family.bytes();
        let family = Arc::new(RwLock::new(family));
        let mut cache = self.cache();
        cache.remove(family_id);
        cache.clock += 1;
        let last_used = cache.clock;
        cache.families.insert(family_id, Cached { generation, family: family.clone(), bytes, last_used });
        cache.bytes += bytes;
        cache.evict(self.budget, family_id);
        drop(cache);
        self.loading.lock().unwrap_or_else(|p| p.into_inner()).remove(&family_id);
        Ok(family)
    }

    /// After one of this process's writes (`rows` stored rows): applies it to
    /// the cached copy when the generation moved by exactly that write, else
    /// forgets the copy.
    fn after_write(&self, family_id: FamilyId, before: i64, after: i64, apply: impl FnOnce(&mut FamilyVectors)) {
        self.after_writes(family_id, before, after, 1, apply)
    }

    fn after_writes(&self, family_id: FamilyId, before: i64, after: i64, rows: i64, apply: impl FnOnce(&mut FamilyVectors)) {
        let mut cache = self.cache();
        let Some(c) = cache.families.get_mut(&family_id) else { return };
        if after == before {
            return;
        }
        if c.generation == before && after == before + rows {
            let mut family = c.family.write().unwrap_or_else(|p| p.into_inner());
            apply(&mut family);
            let bytes = family.bytes();
            drop(family);
            c.generation = after;
            let old = std::mem::replace(&mut c.bytes, bytes);
            cache.bytes = cache.bytes + bytes - old;
            cache.evict(self.budget, family_id);
        } else {
            cache.remove(family_id);
        }
    }

    fn write_gate(&self, family_id: FamilyId) -> Arc<tokio::sync::Mutex<()>> {
        self.writing.lock().unwrap_or_else(|p| p.into_inner()).entry(family_id).or_default().clone()
    }

    async fn generation(&self, family_id: FamilyId) -> Result<i64, IndexError> {
        self.store.vector_generation(family_id).await.map_err(index_err)
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

    fn cache_bytes(&self) -> Option<u64> {
        Some(self.cache().bytes as u64)
    }

    fn cache_loads(&self) -> Option<u64> {
        Some(self.loads())
    }

    async fn upsert(&self, family_id: FamilyId, record: VectorRecord) -> Result<(), IndexError> {
        let gate = self.write_gate(family_id);
        let _one_at_a_time = gate.lock().await;
        let before = self.generation(family_id).await?;
        self.store.put_vector(family_id, &record).await.map_err(index_err)?;
        let after = self.generation(family_id).await?;
        self.after_write(family_id, before, after, |f| f.upsert(&record));
        Ok(())
    }

    async fn upsert_many(&self, family_id: FamilyId, records: Vec<VectorRecord>) -> Result<(), IndexError> {
        let gate = self.write_gate(family_id);
        let _one_at_a_time = gate.lock().await;
        let before = self.generation(family_id).await?;
        let written = self.store.put_vectors(family_id, &records).await.map_err(index_err)?;
        let after = self.generation(family_id).await?;
        self.after_writes(family_id, before, after, written.len() as i64, |f| {
            for record in records.iter().filter(|r| written.contains(&r.entry_id)) {
                f.upsert(record);
            }
        });
        Ok(())
    }

    async fn set_payload(
        &self,
        family_id: FamilyId,
        entry_id: EntryId,
        member_ids: &[MemberId],
        topics: &[String],
        emotions: &[String],
    ) -> Result<(), IndexError> {
        let update = PayloadUpdate { entry_id, member_ids: member_ids.to_vec(), topics: topics.to_vec(), emotions: emotions.to_vec() };
        self.set_payloads(family_id, std::slice::from_ref(&update)).await
    }

    async fn set_payloads(&self, family_id: FamilyId, updates: &[PayloadUpdate]) -> Result<(), IndexError> {
        if updates.is_empty() {
            return Ok(());
        }
        let gate = self.write_gate(family_id);
        let _one_at_a_time = gate.lock().await;
        let before = self.generation(family_id).await?;
        let rows = self.store.set_vector_payloads(family_id, updates).await.map_err(index_err)?;
        let after = self.generation(family_id).await?;
        self.after_writes(family_id, before, after, rows as i64, |f| {
            for u in updates {
                f.set_payload(u.entry_id, &u.member_ids, None);
            }
        });
        Ok(())
    }

    async fn delete(&self, family_id: FamilyId, entry_id: EntryId) -> Result<(), IndexError> {
        let gate = self.write_gate(family_id);
        let _one_at_a_time = gate.lock().await;
        let before = self.generation(family_id).await?;
        self.store.delete_vector(family_id, entry_id).await.map_err(index_err)?;
        let after = self.generation(family_id).await?;
        self.after_write(family_id, before, after, |f| f.remove(entry_id));
        Ok(())
    }

    async fn search(
        &self,
        family_id: FamilyId,
        query: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        let family = self.vectors(family_id).await?;
        let family = family.read().unwrap_or_else(|p| p.into_inner());
        Ok(family.search(query, filter, limit))
    }
}
