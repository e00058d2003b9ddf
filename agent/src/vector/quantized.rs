//! One family's vectors in memory, quantised: an int8 code per dimension
//! (scanned first, 1 byte a dimension) and a bfloat16 copy (2 bytes a
//! dimension) that rescores the best candidates. Both are of the unit-length
//! vector, so a dot product is the cosine. Together 0.75× the raw f32 bytes,
//! and the scan reads a quarter of them.
//!
//! Rows are vector pieces (a long entry has several); an entry scores by its
//! best piece. Updates happen in place: a changed entry's old rows are marked
//! dead and its new rows appended; dead rows are dropped once they are a
//! quarter of all.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Hit, SearchFilter};
use crate::domain::{EntryId, MemberId};
use crate::store::VectorRecord;

const DEAD: u32 = u32::MAX;

struct Slot {
    entry_id: EntryId,
    occurred_at: i64,
    members: Box<[MemberId]>,
    live: bool,
}

#[derive(Default)]
pub struct FamilyVectors {
    dims: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    fine: Vec<u16>,
    row_slot: Vec<u32>,
    slots: Vec<Slot>,
    slot_of: HashMap<EntryId, u32>,
    dead_rows: usize,
    /// Vectors of another dimension (another embedding model), left out.
    pub stale: usize,
}

/// f32 → bfloat16, rounded to nearest even.
fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    let rounding = 0x7FFF + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

fn from_bf16(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

fn normalized(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| v.iter().map(|x| x / norm).collect())
}

/// Symmetric int8 codes and the scale that maps them back.
fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; v.len()], 0.0);
    }
    let scale = max / 127.0;
    (v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8).collect(), scale)
}

fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    // Written so LLVM vectorises it (widening multiply-add).
    let mut sum = 0i32;
    for (x, y) in a.iter().zip(b) {
        sum += i32::from(*x) * i32::from(*y);
    }
    sum
}

/// The same loop compiled for AVX2 (32 bytes a step), used when the CPU has it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    let mut sum = 0i32;
    for (x, y) in a.iter().zip(b) {
        sum += i32::from(*x) * i32::from(*y);
    }
    sum
}

fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU was just checked for AVX2.
            return unsafe { dot_i8_avx2(a, b) };
        }
    }
    dot_i8_portable(a, b)
}

fn dot_bf16(q: &[f32], b: &[u16]) -> f32 {
    let mut sum = 0f32;
    for (x, y) in q.iter().zip(b) {
        sum += x * from_bf16(*y);
    }
    sum
}

impl FamilyVectors {
    pub fn from_records(records: &[VectorRecord]) -> Self {
        let mut family = Self::default();
        // The family's dimension is that of most of its vectors.
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for r in records {
            *counts.entry(r.vector.len()).or_default() += 1;
        }
        family.dims = counts.into_iter().max_by_key(|(d, n)| (*n, *d)).map(|(d, _)| d).unwrap_or(0);
        let rows: usize = records.iter().filter(|r| r.vector.len() == family.dims).map(|r| 1 + r.extra_chunks.len()).sum();
        family.codes.reserve_exact(rows * family.dims);
        family.fine.reserve_exact(rows * family.dims);
        family.scales.reserve_exact(rows);
        family.row_slot.reserve_exact(rows);
        family.slots.reserve_exact(records.len());
        family.slot_of.reserve(records.len());
        for r in records {
            family.upsert(r);
        }
        family
    }

    /// Bytes held (vectors, per-row and per-entry data).
    pub fn bytes(&self) -> usize {
        self.codes.capacity()
            + self.fine.capacity() * 2
            + self.scales.capacity() * 4
            + self.row_slot.capacity() * 4
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.slots.iter().map(|s| s.members.len() * 16).sum::<usize>()
            + self.slot_of.capacity() * (16 + 4 + 8)
    }

    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// Adds or replaces an entry's vectors and payload.
    pub fn upsert(&mut self, r: &VectorRecord) {
        if self.dims == 0 {
            self.dims = r.vector.len();
        }
        self.remove(r.entry_id);
        if r.vector.len() != self.dims || r.extra_chunks.iter().any(|c| c.len() != self.dims) {
            self.stale += 1;
            return;
        }
        let slot = self.slots.len() as u32;
        self.slots.push(Slot { entry_id: r.entry_id, occurred_at: r.occurred_at.timestamp_millis(), members: r.member_ids.clone().into_boxed_slice(), live: true });
        self.slot_of.insert(r.entry_id, slot);
        for v in r.chunk_vectors() {
            let Some(unit) = normalized(v) else { continue };
            let (codes, scale) = quantize(&unit);
            self.codes.extend_from_slice(&codes);
            self.scales.push(scale);
            self.fine.extend(unit.iter().map(|x| to_bf16(*x)));
            self.row_slot.push(slot);
        }
    }

    /// Changes what filters see, without touching the vectors.
    pub fn set_payload(&mut self, entry_id: EntryId, member_ids: &[MemberId], occurred_at: Option<DateTime<Utc>>) {
        if let Some(&slot) = self.slot_of.get(&entry_id) {
            let s = &mut self.slots[slot as usize];
            s.members = member_ids.to_vec().into_boxed_slice();
            if let Some(t) = occurred_at {
                s.occurred_at = t.timestamp_millis();
            }
        }
    }

    pub fn remove(&mut self, entry_id: EntryId) {
        let Some(slot) = self.slot_of.remove(&entry_id) else { return };
        self.slots[slot as usize].live = false;
        for row in self.row_slot.iter_mut().filter(|s| **s == slot) {
            *row = DEAD;
            self.dead_rows += 1;
        }
        if self.dead_rows * 4 > self.row_slot.len().max(64) {
            self.compact();
        }
    }

    /// Drops dead rows and entries.
    fn compact(&mut self) {
        let d = self.dims;
        let mut remap = vec![DEAD; self.slots.len()];
        let mut slots = Vec::with_capacity(self.slot_of.len());
        for (i, s) in std::mem::take(&mut self.slots).into_iter().enumerate() {
            if s.live {
                remap[i] = slots.len() as u32;
                slots.push(s);
            }
        }
        let (mut codes, mut fine, mut scales, mut row_slot) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (row, slot) in self.row_slot.iter().enumerate() {
            if *slot == DEAD || remap[*slot as usize] == DEAD {
                continue;
            }
            codes.extend_from_slice(&self.codes[row * d..(row + 1) * d]);
            fine.extend_from_slice(&self.fine[row * d..(row + 1) * d]);
            scales.push(self.scales[row]);
            row_slot.push(remap[*slot as usize]);
        }
        self.slot_of = slots.iter().enumerate().map(|(i, s)| (s.entry_id, i as u32)).collect();
        codes.shrink_to_fit();
        fine.shrink_to_fit();
        (self.codes, self.fine, self.scales, self.row_slot, self.slots) = (codes, fine, scales, row_slot, slots);
        self.dead_rows = 0;
    }

    /// The `limit` best entries for a query: int8 scan for candidates, bf16 rescoring.
    pub fn search(&self, query: &[f32], filter: &SearchFilter, limit: usize) -> Vec<Hit> {
        let d = self.dims;
        if d == 0 || query.len() != d || limit == 0 {
            return Vec::new();
        }
        let from = filter.from.map(|t| t.timestamp_millis());
        let to = filter.to.map(|t| t.timestamp_millis());
        let passes: Vec<bool> = self
            .slots
            .iter()
            .map(|s| {
                s.live
                    && from.is_none_or(|f| s.occurred_at >= f)
                    && to.is_none_or(|t| s.occurred_at < t)
                    && (filter.member_ids.is_empty() || s.members.iter().any(|m| filter.member_ids.contains(m)))
            })
            .collect();
        let Some(q) = normalized(query) else {
            // A query with no direction (nothing left after the filters' words)
            // is equally far from everything: what passes the filters, score 0.
            let mut hits: Vec<Hit> = self.slots.iter().zip(&passes).filter(|(_, p)| **p).map(|(s, _)| Hit { entry_id: s.entry_id, score: 0.0 }).collect();
            hits.sort_by_key(|h| std::cmp::Reverse(h.entry_id));
            hits.truncate(limit);
            return hits;
        };
        let (qcodes, qscale) = quantize(&q);
        let mut scored: Vec<(f32, u32)> = Vec::with_capacity(self.row_slot.len());
        for (row, &slot) in self.row_slot.iter().enumerate() {
            if slot == DEAD || !passes[slot as usize] {
                continue;
            }
            let code = &self.codes[row * d..(row + 1) * d];
            scored.push((dot_i8(&qcodes, code) as f32 * self.scales[row] * qscale, row as u32));
        }
        // Enough candidates that quantisation never costs a true top hit.
        let candidates = (limit * 8).max(100);
        if scored.len() > candidates {
            scored.select_nth_unstable_by(candidates - 1, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(candidates);
        }
        let mut best: HashMap<u32, f32> = HashMap::with_capacity(scored.len());
        for (_, row) in &scored {
            let row = *row as usize;
            let score = dot_bf16(&q, &self.fine[row * d..(row + 1) * d]);
            let slot = self.row_slot[row];
            let e = best.entry(slot).or_insert(f32::MIN);
            *e = e.max(score);
        }
        let mut hits: Vec<Hit> = best.into_iter().map(|(slot, score)| Hit { entry_id: self.slots[slot as usize].entry_id, score: score.clamp(-1.0, 1.0) }).collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.entry_id.cmp(&a.entry_id)));
        hits.truncate(limit);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::cosine;

    fn record(id: u128, v: Vec<f32>, members: Vec<MemberId>, day: i64) -> VectorRecord {
        VectorRecord {
            entry_id: uuid::Uuid::from_u128(id),
            entry_version: 1,
            model: "m".into(),
            vector: v,
            extra_chunks: vec![],
            member_ids: members,
            topics: vec![],
            emotions: vec![],
            occurred_at: DateTime::from_timestamp(day * 86_400, 0).unwrap(),
        }
    }

    /// Deterministic pseudo-random unit-ish vectors around a few centres (like real embeddings, clustered).
    fn vectors(n: usize, dims: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 20_000) as f32 / 10_000.0 - 1.0
        };
        let centres: Vec<Vec<f32>> = (0..16).map(|_| (0..dims).map(|_| next()).collect()).collect();
        (0..n).map(|i| centres[i % 16].iter().map(|c| c + 0.8 * next()).collect()).collect()
    }

    fn exact(records: &[VectorRecord], q: &[f32], k: usize) -> Vec<EntryId> {
        let mut all: Vec<(f32, EntryId)> = records.iter().map(|r| (cosine(q, &r.vector), r.entry_id)).collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        all.into_iter().take(k).map(|(_, id)| id).collect()
    }

    #[test]
    fn quantised_search_finds_what_an_exact_scan_finds() {
        let dims = 256;
        let records: Vec<VectorRecord> = vectors(3000, dims, 7).into_iter().enumerate().map(|(i, v)| record(i as u128, v, vec![], i as i64)).collect();
        let family = FamilyVectors::from_records(&records);
        assert!(family.bytes() < 3000 * dims * 4, "smaller than the raw vectors: {}", family.bytes());
        let mut found = 0;
        let queries = vectors(50, dims, 99);
        for q in &queries {
            let truth = exact(&records, q, 10);
            let got: Vec<EntryId> = family.search(q, &SearchFilter::default(), 10).into_iter().map(|h| h.entry_id).collect();
            found += truth.iter().filter(|t| got.contains(t)).count();
            let top = family.search(q, &SearchFilter::default(), 1)[0].score;
            assert!((top - cosine(q, &records.iter().find(|r| r.entry_id == truth[0]).unwrap().vector)).abs() < 0.01, "scores are cosines");
        }
        let recall = found as f64 / (queries.len() * 10) as f64;
        assert!(recall >= 0.99, "recall@10 {recall}");
    }

    #[test]
    fn updates_deletes_payloads_and_filters_apply_in_place() {
        let kid = uuid::Uuid::from_u128(500);
        let mut records: Vec<VectorRecord> = vectors(200, 32, 3).into_iter().enumerate().map(|(i, v)| record(i as u128, v, vec![], i as i64)).collect();
        let mut family = FamilyVectors::from_records(&records);
        let q = records[5].vector.clone();
        assert_eq!(family.search(&q, &SearchFilter::default(), 1)[0].entry_id, records[5].entry_id);
        // Replaced: entry 5 now points elsewhere; entry 9 takes 5's old vector.
        records[9].vector = q.clone();
        records[5].vector = records[100].vector.iter().map(|x| -x).collect();
        family.upsert(&records[9]);
        family.upsert(&records[5]);
        assert_eq!(family.search(&q, &SearchFilter::default(), 1)[0].entry_id, records[9].entry_id);
        assert_eq!(family.len(), 200);
        family.remove(records[9].entry_id);
        assert!(family.search(&q, &SearchFilter::default(), 200).iter().all(|h| h.entry_id != records[9].entry_id));
        // Many removals compact the rows; nothing else changes.
        for r in &records[20..120] {
            family.remove(r.entry_id);
        }
        assert_eq!(family.len(), 99);
        assert_eq!(family.search(&q, &SearchFilter::default(), 500).len(), 99);
        // Filters: by child (after a payload change) and by day.
        family.set_payload(records[150].entry_id, &[kid], None);
        let only = SearchFilter { member_ids: vec![kid], ..Default::default() };
        assert_eq!(family.search(&q, &only, 10).iter().map(|h| h.entry_id).collect::<Vec<_>>(), vec![records[150].entry_id]);
        let days = SearchFilter { from: Some(DateTime::from_timestamp(160 * 86_400, 0).unwrap()), to: Some(DateTime::from_timestamp(170 * 86_400, 0).unwrap()), ..Default::default() };
        assert_eq!(family.search(&q, &days, 50).len(), 10);
        // Another model's vectors are left out, not compared.
        family.upsert(&record(9999, vec![1.0; 8], vec![], 1));
        assert_eq!(family.stale, 1);
        assert!(family.search(&[1.0; 8], &SearchFilter::default(), 5).is_empty());
    }

    #[test]
    fn long_entries_count_once_by_their_best_piece_and_odd_vectors_are_safe() {
        let mut r = record(1, vec![1.0, 0.0, 0.0], vec![], 0);
        r.extra_chunks = vec![vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0]];
        let family = FamilyVectors::from_records(&[r, record(2, vec![0.0, 0.7, 0.7], vec![], 0), record(3, vec![0.0; 3], vec![], 0)]);
        let hits = family.search(&[0.0, 0.0, 1.0], &SearchFilter::default(), 10);
        assert_eq!(hits.len(), 2, "one hit per entry; an all-zero vector matches nothing: {hits:?}");
        assert_eq!(hits[0].entry_id, uuid::Uuid::from_u128(1));
        assert!((hits[0].score - 1.0).abs() < 0.01);
        let flat = family.search(&[0.0; 3], &SearchFilter::default(), 10);
        assert_eq!(flat.len(), 3, "a query with no direction scores every entry 0 (filters still apply): {flat:?}");
        assert!(flat.iter().all(|h| h.score == 0.0));
        assert_eq!(family.search(&[f32::NAN; 3], &SearchFilter::default(), 10).len(), 3);
        assert_eq!(to_bf16(1.0), 0x3F80);
        assert_eq!(from_bf16(to_bf16(-0.5)), -0.5);
    }
}
