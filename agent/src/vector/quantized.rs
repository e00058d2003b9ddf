//! One family's vectors in memory, quantised three ways, each stage reading
//! fewer rows than the one before:
//!
//! - one sign bit per dimension of the vector minus the family's centre
//!   (1/32 of the f32 bytes): a large family is scanned by Hamming distance
//!   first, and only its `BINARY_CANDIDATES` nearest rows go on;
//! - an int8 code per dimension (1 byte): scores those candidates (or every
//!   row of a small family) to pick the best few;
//! - an int16 copy (2 bytes a dimension): rescores the best few exactly
//!   enough that scores are cosines.
//!
//! All three hold a row's residual: its unit-length vector minus the
//! family's centre (the mean unit vector), so a score is the query's dot
//! product with the centre (once a query) plus its dot product with the
//! residual — the cosine. Together about 0.8× the raw f32 bytes. Real
//! embeddings share a large common direction (every e5 pair scores 0.7 or
//! more): quantising whole vectors spends the precision on that shared
//! part and ranks near neighbours by rounding noise, and their signs around
//! zero mostly agree. The residuals keep what tells entries apart.
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

/// Below this many rows the int8 scan reads everything (it is already fast,
/// and a Hamming stage would pass almost all rows on anyway).
pub const BINARY_MIN_ROWS: usize = 16_384;
/// How many rows the Hamming scan passes to the int8 stage, at least.
const BINARY_CANDIDATES: usize = 2_048;

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
    /// int16 codes of each row (2 bytes a dimension) and their scales.
    fine: Vec<i16>,
    fine_scales: Vec<f32>,
    row_slot: Vec<u32>,
    /// Sign bits of each row, `dims / 64` (rounded up) words a row.
    bits: Vec<u64>,
    /// The mean of the family's unit vectors: rows hold what is left of
    /// their unit vector after it (the residual), which varies more than
    /// the whole and so keeps more of its precision when quantised.
    centre: Vec<f32>,
    /// Rows when `centre` was last computed: it is recomputed (and every row
    /// requantised around it) each time the family doubles, so a family that
    /// grows from nothing is centred on its own vectors.
    centred_at: usize,
    slots: Vec<Slot>,
    slot_of: HashMap<EntryId, u32>,
    dead_rows: usize,
    /// Vectors of another dimension (another embedding model), left out.
    pub stale: usize,
}

/// Symmetric integer codes in `-levels..=levels` (cast by `code`) and the
/// scale that maps them back.
fn symmetric<T: Copy + Default>(v: &[f32], levels: f32, code: impl Fn(f32) -> T) -> (Vec<T>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![T::default(); v.len()], 0.0);
    }
    let scale = max / levels;
    (v.iter().map(|x| code((x / scale).round().clamp(-levels, levels))).collect(), scale)
}

/// int16 codes: for a residual, whose parts differ a lot in size, 15 bits
/// against the largest part keep ~100× the precision of bfloat16's 8 bits
/// of mantissa.
fn quantize16(v: &[f32]) -> (Vec<i16>, f32) {
    symmetric(v, 32767.0, |x| x as i16)
}

fn normalized(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| v.iter().map(|x| x / norm).collect())
}

/// int8 codes.
fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
    symmetric(v, 127.0, |x| x as i8)
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

/// Hamming distance from `q` to every row of `bits` (`q.len()` words a row).
fn hamming_portable(q: &[u64], bits: &[u64], out: &mut [u16]) {
    for (d, row) in out.iter_mut().zip(bits.chunks_exact(q.len())) {
        *d = q.iter().zip(row).map(|(x, y)| (x ^ y).count_ones()).sum::<u32>() as u16;
    }
}

/// The same loop with the POPCNT instruction (without it `count_ones` is a
/// dozen shifts and masks), used when the CPU has it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn hamming_popcnt(q: &[u64], bits: &[u64], out: &mut [u16]) {
    for (d, row) in out.iter_mut().zip(bits.chunks_exact(q.len())) {
        *d = q.iter().zip(row).map(|(x, y)| (x ^ y).count_ones()).sum::<u32>() as u16;
    }
}

fn hamming(q: &[u64], bits: &[u64], out: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU was just checked for POPCNT.
            return unsafe { hamming_popcnt(q, bits, out) };
        }
    }
    hamming_portable(q, bits, out)
}

/// Sign bits of `v`, one per dimension, packed into `out`.
fn sign_bits(v: &[f32], out: &mut Vec<u64>) {
    let start = out.len();
    out.resize(start + v.len().div_ceil(64), 0);
    for (i, x) in v.iter().enumerate() {
        if *x > 0.0 {
            out[start + i / 64] |= 1 << (i % 64);
        }
    }
}

fn dot_i16(q: &[f32], b: &[i16]) -> f32 {
    let mut sum = 0f32;
    for (x, y) in q.iter().zip(b) {
        sum += x * f32::from(*y);
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
        let d = family.dims;
        let fits = |r: &&VectorRecord| r.vector.len() == d && r.extra_chunks.iter().all(|c| c.len() == d);
        let rows: usize = records.iter().filter(fits).map(|r| 1 + r.extra_chunks.len()).sum();
        // The centre first, from the exact vectors.
        let mut centre = vec![0f64; d];
        let mut n = 0usize;
        for unit in records.iter().filter(fits).flat_map(|r| r.chunk_vectors()).filter_map(|v| normalized(v)) {
            n += 1;
            for (c, x) in centre.iter_mut().zip(&unit) {
                *c += f64::from(*x);
            }
        }
        family.centre = centre.into_iter().map(|c| if n == 0 { 0.0 } else { (c / n as f64) as f32 }).collect();
        family.centred_at = n.max(1);
        family.codes.reserve_exact(rows * d);
        family.fine.reserve_exact(rows * d);
        family.fine_scales.reserve_exact(rows);
        family.scales.reserve_exact(rows);
        family.row_slot.reserve_exact(rows);
        family.bits.reserve_exact(rows * d.div_ceil(64));
        family.slots.reserve_exact(records.len());
        family.slot_of.reserve(records.len());
        for r in records {
            family.upsert(r);
        }
        family
    }

    /// Appends a row: the unit vector's residual from the centre, quantised.
    fn push_row(&mut self, residual: &[f32], slot: u32) {
        let (codes, scale) = quantize(residual);
        self.codes.extend_from_slice(&codes);
        self.scales.push(scale);
        let (fine, fine_scale) = quantize16(residual);
        self.fine.extend_from_slice(&fine);
        self.fine_scales.push(fine_scale);
        sign_bits(residual, &mut self.bits);
        self.row_slot.push(slot);
    }

    /// Moves the centre to the mean of the live rows and requantises every
    /// row around it (from its int16 residual and the old centre). Run
    /// each time a family built up in place doubles, so it is centred on its
    /// own vectors at any size.
    fn recentre(&mut self) {
        let d = self.dims;
        let old = std::mem::take(&mut self.centre);
        let unit = |fine: &[i16], scales: &[f32], row: usize| -> Vec<f32> { fine[row * d..(row + 1) * d].iter().zip(&old).map(|(b, c)| f32::from(*b) * scales[row] + c).collect() };
        let mut centre = vec![0f64; d];
        let mut live = 0usize;
        for (row, slot) in self.row_slot.iter().enumerate() {
            if *slot != DEAD {
                live += 1;
                for (c, x) in centre.iter_mut().zip(unit(&self.fine, &self.fine_scales, row)) {
                    *c += f64::from(x);
                }
            }
        }
        let centre: Vec<f32> = centre.into_iter().map(|c| if live == 0 { 0.0 } else { (c / live as f64) as f32 }).collect();
        let fine = std::mem::take(&mut self.fine);
        let fine_scales = std::mem::take(&mut self.fine_scales);
        self.fine_scales.reserve_exact(fine_scales.len());
        let row_slot = std::mem::take(&mut self.row_slot);
        (self.codes, self.scales, self.bits) = (Vec::with_capacity(self.codes.len()), Vec::with_capacity(row_slot.len()), Vec::with_capacity(self.bits.len()));
        self.fine.reserve_exact(fine.len());
        for (row, slot) in row_slot.iter().enumerate() {
            let residual: Vec<f32> = unit(&fine, &fine_scales, row).iter().zip(&centre).map(|(x, c)| x - c).collect();
            self.push_row(&residual, *slot);
        }
        self.centre = centre;
        self.centred_at = live.max(1);
    }

    /// Bytes held (vectors, per-row and per-entry data).
    pub fn bytes(&self) -> usize {
        self.codes.capacity()
            + self.fine.capacity() * 2
            + self.fine_scales.capacity() * 4
            + self.scales.capacity() * 4
            + self.row_slot.capacity() * 4
            + self.bits.capacity() * 8
            + self.centre.capacity() * 4
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
        if self.centre.len() != self.dims {
            self.centre = vec![0.0; self.dims];
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
            let residual: Vec<f32> = unit.iter().zip(&self.centre).map(|(x, c)| x - c).collect();
            self.push_row(&residual, slot);
        }
        if self.row_slot.len() >= self.centred_at.saturating_mul(2) {
            self.recentre();
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
        let w = self.dims.div_ceil(64);
        let (mut codes, mut fine, mut scales, mut fine_scales, mut row_slot, mut bits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (row, slot) in self.row_slot.iter().enumerate() {
            if *slot == DEAD || remap[*slot as usize] == DEAD {
                continue;
            }
            codes.extend_from_slice(&self.codes[row * d..(row + 1) * d]);
            fine.extend_from_slice(&self.fine[row * d..(row + 1) * d]);
            bits.extend_from_slice(&self.bits[row * w..(row + 1) * w]);
            scales.push(self.scales[row]);
            fine_scales.push(self.fine_scales[row]);
            row_slot.push(remap[*slot as usize]);
        }
        self.slot_of = slots.iter().enumerate().map(|(i, s)| (s.entry_id, i as u32)).collect();
        codes.shrink_to_fit();
        fine.shrink_to_fit();
        bits.shrink_to_fit();
        (self.codes, self.fine, self.scales, self.fine_scales, self.row_slot, self.slots, self.bits) = (codes, fine, scales, fine_scales, row_slot, slots, bits);
        self.dead_rows = 0;
    }

    /// The rows worth scoring in int8: every live row that passes the
    /// filters, or, in a large family, the `BINARY_CANDIDATES` (at least 64
    /// a hit asked for; ties at the cut included) nearest the query by
    /// Hamming distance.
    fn candidate_rows(&self, q: &[f32], passes: &[bool], limit: usize) -> Vec<u32> {
        let wanted = |slot: u32| slot != DEAD && passes[slot as usize];
        let live = self.row_slot.len() - self.dead_rows;
        if live < BINARY_MIN_ROWS {
            return self.row_slot.iter().enumerate().filter(|(_, slot)| wanted(**slot)).map(|(row, _)| row as u32).collect();
        }
        let w = self.dims.div_ceil(64);
        let centred: Vec<f32> = q.iter().zip(&self.centre).map(|(x, c)| x - c).collect();
        let mut qbits = Vec::with_capacity(w);
        sign_bits(&centred, &mut qbits);
        let mut distance = vec![0u16; self.row_slot.len()];
        hamming(&qbits, &self.bits, &mut distance);
        let mut histogram = vec![0usize; w * 64 + 1];
        for (h, slot) in distance.iter_mut().zip(&self.row_slot) {
            if wanted(*slot) {
                histogram[usize::from(*h)] += 1;
            } else {
                *h = u16::MAX;
            }
        }
        // The smallest distance within which enough rows fall.
        let wanted_rows = BINARY_CANDIDATES.max(limit.saturating_mul(64));
        let mut cut = 0usize;
        let mut within = 0usize;
        for (h, n) in histogram.iter().enumerate() {
            within += n;
            cut = h;
            if within >= wanted_rows {
                break;
            }
        }
        distance.iter().enumerate().filter(|(_, h)| usize::from(**h) <= cut).map(|(row, _)| row as u32).collect()
    }

    /// The `limit` best entries for a query: candidates by Hamming distance
    /// (large families), int8 scoring, int16 rescoring.
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
                    && filter.admits(&s.members)
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
        // q·unit = q·centre + q·residual; the first term is the same for every row.
        let base: f32 = q.iter().zip(&self.centre).map(|(x, c)| x * c).sum();
        let (qcodes, qscale) = quantize(&q);
        let rows = self.candidate_rows(&q, &passes, limit);
        let mut scored: Vec<(f32, u32)> = Vec::with_capacity(rows.len());
        for row in rows {
            let r = row as usize;
            let code = &self.codes[r * d..(r + 1) * d];
            scored.push((dot_i8(&qcodes, code) as f32 * self.scales[r] * qscale, row));
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
            let score = base + dot_i16(&q, &self.fine[row * d..(row + 1) * d]) * self.fine_scales[row];
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
            terms: vec![],
        }
    }

    /// Deterministic pseudo-random unit-ish vectors around a few centres (like real embeddings, clustered).
    fn vectors(n: usize, dims: usize, seed: u64) -> Vec<Vec<f32>> {
        let centres = noise(16, dims, seed);
        noise(n, dims, seed ^ 0xABCD).into_iter().enumerate().map(|(i, v)| centres[i % 16].iter().zip(v).map(|(c, x)| c + 0.8 * x).collect()).collect()
    }

    /// Deterministic pseudo-random vectors, uniform in [-1, 1] per dimension.
    fn noise(n: usize, dims: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 20_000) as f32 / 10_000.0 - 1.0
        };
        (0..n).map(|_| (0..dims).map(|_| next()).collect()).collect()
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

    /// A family past `BINARY_MIN_ROWS` whose vectors all lean one way, like
    /// real embeddings (unrelated pairs score about 0.8): the Hamming stage
    /// must still pass on the true top hits, for a family loaded at once and
    /// one grown an entry at a time, and filters must hold.
    #[test]
    fn a_large_family_is_searched_through_its_sign_bits_without_losing_hits() {
        let dims = 384;
        let n = BINARY_MIN_ROWS * 3 / 2;
        // 500 topics with a few dozen entries each, all leaning one way.
        let common: Vec<f32> = noise(1, dims, 11).remove(0).iter().map(|x| 2.5 * x).collect();
        let topics: Vec<Vec<f32>> = noise(500, dims, 13).into_iter().map(|t| t.iter().zip(&common).map(|(x, c)| x + c).collect()).collect();
        let near = |noise: Vec<f32>, i: usize| topics[i % topics.len()].iter().zip(noise).map(|(t, x)| t + 0.9 * x).collect::<Vec<f32>>();
        let records: Vec<VectorRecord> = noise(n, dims, 5).into_iter().enumerate().map(|(i, v)| record(i as u128, near(v, i * 7919), vec![], i as i64)).collect();
        let queries: Vec<Vec<f32>> = noise(40, dims, 77).into_iter().enumerate().map(|(i, v)| near(v, i * 31)).collect();
        let mut loaded = FamilyVectors::from_records(&records);
        let mut grown = FamilyVectors::default();
        for r in &records {
            grown.upsert(r);
        }
        let truths: Vec<Vec<EntryId>> = queries.iter().map(|q| exact(&records, q, 10)).collect();
        for family in [&loaded, &grown] {
            let cut = family.candidate_rows(&normalized(&queries[0]).unwrap(), &vec![true; n], 10).len();
            assert!((BINARY_CANDIDATES..n / 2).contains(&cut), "the Hamming stage passes on a few thousand rows, not {cut}");
            let mut found = 0;
            for (q, truth) in queries.iter().zip(&truths) {
                let got: Vec<EntryId> = family.search(q, &SearchFilter::default(), 10).into_iter().map(|h| h.entry_id).collect();
                found += truth.iter().filter(|t| got.contains(t)).count();
            }
            let recall = found as f64 / (queries.len() * 10) as f64;
            assert!(recall >= 0.99, "recall@10 through the sign bits {recall}");
        }
        // A filter that leaves few rows gets exactly those, however far.
        let days = SearchFilter { from: Some(DateTime::from_timestamp(100 * 86_400, 0).unwrap()), to: Some(DateTime::from_timestamp(103 * 86_400, 0).unwrap()), ..Default::default() };
        let far: Vec<f32> = queries[0].iter().map(|x| -x).collect();
        let mut got: Vec<EntryId> = loaded.search(&far, &days, 10).into_iter().map(|h| h.entry_id).collect();
        got.sort();
        assert_eq!(got, (100..103).map(uuid::Uuid::from_u128).collect::<Vec<_>>());
        // After removing 2 in 7 (compaction runs past a quarter dead), the
        // bits still belong to their rows: the rest is found as before.
        for r in records.iter().enumerate().filter(|(i, _)| i % 7 < 2).map(|(_, r)| r) {
            loaded.remove(r.entry_id);
        }
        assert!(loaded.row_slot.len() < n, "compacted: {} rows of {n}", loaded.row_slot.len());
        let kept: Vec<VectorRecord> = records.iter().enumerate().filter(|(i, _)| i % 7 >= 2).map(|(_, r)| r.clone()).collect();
        assert!(kept.len() >= BINARY_MIN_ROWS, "still searched through the sign bits");
        let mut found = 0;
        for q in &queries {
            let truth = exact(&kept, q, 10);
            let got: Vec<EntryId> = loaded.search(q, &SearchFilter::default(), 10).into_iter().map(|h| h.entry_id).collect();
            found += truth.iter().filter(|t| got.contains(t)).count();
        }
        let recall = found as f64 / (queries.len() * 10) as f64;
        assert!(recall >= 0.99, "recall@10 after compaction {recall}");
    }

    #[test]
    fn updates_deletes_payloads_and_filters_apply_in_place() {
        let (kid, sibling) = (uuid::Uuid::from_u128(500), uuid::Uuid::from_u128(501));
        let mut records: Vec<VectorRecord> = vectors(200, 32, 3).into_iter().enumerate().map(|(i, v)| record(i as u128, v, vec![sibling], i as i64)).collect();
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
        // An entry about no child in particular is about the whole family: every child's filter admits it.
        family.set_payload(records[160].entry_id, &[], None);
        let mut about_kid: Vec<EntryId> = family.search(&q, &only, 10).iter().map(|h| h.entry_id).collect();
        about_kid.sort();
        assert_eq!(about_kid, vec![records[150].entry_id, records[160].entry_id]);
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
    }
}
