//! `QdrantIndex`: vectors in Qdrant over gRPC (qdrant-client). One point per
//! entry (point id = entry id, so upserts are idempotent), cosine distance,
//! payload `{entry_id, owner_id, member_ids, topics, emotions, occurred_at}`,
//! `owner_id` indexed as the tenant key, and a `must` filter on `owner_id` in
//! every search.
//!
//! Beside the dense vector, an entry's first point carries its lexical terms
//! as the sparse vector `terms` (BM25-style: each term's weight saturated by
//! the entry's length, the collection's IDF modifier applied by Qdrant at
//! query time), so the lexical ranking of hybrid retrieval comes from Qdrant
//! too, through the Query API.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use qdrant_client::qdrant::{
    Condition, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, DatetimeIndexParamsBuilder, DatetimeRange,
    DeletePointsBuilder, Distance, FieldType, Filter, KeywordIndexParamsBuilder, Modifier, NamedVectors, PointId,
    PointStruct, Query, QueryPointsBuilder, ScoredPoint, SearchPointsBuilder, SetPayloadPointsBuilder,
    SparseVectorParamsBuilder, SparseVectorsConfigBuilder, UpsertPointsBuilder, Vector, VectorInput,
    VectorParamsBuilder, VectorsSelector, point_id::PointIdOptions, vector_output, vectors_config, vectors_output,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use serde_json::json;

use super::{Hit, IndexError, SearchFilter, VectorIndex};
use crate::domain::{EntryId, FamilyId, MemberId};
use crate::store::{LexicalHit, VectorRecord};

/// The sparse vector holding an entry's lexical terms.
const TERMS: &str = "terms";
/// BM25's term-frequency saturation and length normalisation. Every term of
/// an entry occurs once in its term list, so only the length varies.
const BM25_K1: f32 = 1.2;
const BM25_B: f32 = 0.75;
/// The length (in terms) an entry is normalised against: a journal entry of
/// a few sentences.
const BM25_AVERAGE_TERMS: f32 = 40.0;

/// A term's dimension in the sparse vector: FNV-1a of its UTF-8 bytes. Two
/// terms sharing one (1 in 4 billion per pair) only blur their ranking.
fn term_dimension(term: &str) -> u32 {
    term.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

/// An entry's terms as a sparse vector: BM25's document side for a term
/// occurring once, `(k1 + 1) / (1 + k1·(1 − b + b·len/avg))`; Qdrant's IDF
/// modifier supplies the rest at query time. Dimensions ascending, each once.
fn document_terms(terms: &[String]) -> (Vec<u32>, Vec<f32>) {
    let len = terms.len() as f32;
    let weight = (BM25_K1 + 1.0) / (1.0 + BM25_K1 * (1.0 - BM25_B + BM25_B * len / BM25_AVERAGE_TERMS));
    let mut dims: Vec<u32> = terms.iter().map(|t| term_dimension(t)).collect();
    dims.sort_unstable();
    dims.dedup();
    let values = vec![weight; dims.len()];
    (dims, values)
}

/// A question's terms as a sparse query: each term once, weight 1 (its IDF
/// is applied by the server).
fn query_terms(terms: &[String]) -> (Vec<u32>, Vec<f32>) {
    let mut dims: Vec<u32> = terms.iter().map(|t| term_dimension(t)).collect();
    dims.sort_unstable();
    dims.dedup();
    let values = vec![1.0; dims.len()];
    (dims, values)
}

pub struct QdrantIndex {
    client: Qdrant,
    collection: String,
    dimensions: usize,
    /// Whether the collection has the `terms` sparse vector (one made before
    /// it does not: the store's lexical index serves questions then).
    sparse: bool,
}

/// An outage (no connection, the server down, overloaded or timing out) is
/// waited out; a request the server refuses (a point it will not take, a
/// missing collection) is an error of the request, counted against its job.
fn unavailable(e: QdrantError) -> IndexError {
    use tonic::Code;
    match &e {
        QdrantError::ResponseError { status }
            if matches!(status.code(), Code::InvalidArgument | Code::NotFound | Code::AlreadyExists | Code::FailedPrecondition | Code::OutOfRange | Code::Unimplemented) =>
        {
            IndexError::Backend(Box::new(e))
        }
        _ => IndexError::Unavailable(Box::new(e)),
    }
}

fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// The point of piece `chunk` of an entry: the entry's own id for the first,
/// a stable id derived from it for the others (so re-indexing overwrites).
fn chunk_point_id(entry_id: EntryId, chunk: usize) -> PointId {
    if chunk == 0 {
        return PointId::from(entry_id.to_string());
    }
    let digest = crate::blob::sha256_hex(format!("{entry_id}:{chunk}").as_bytes());
    let mut bytes = [0u8; 16];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    PointId::from(uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string())
}

impl QdrantIndex {
    /// Connects and makes sure the collection exists with `dimensions`
    /// (creating it and its payload indexes if missing). An existing
    /// collection of another size is an error, never silently mixed.
    pub async fn connect(url: &str, api_key: Option<&str>, collection: &str, dimensions: usize) -> Result<Self, IndexError> {
        let mut builder = Qdrant::from_url(url).skip_compatibility_check().timeout(std::time::Duration::from_secs(10));
        if let Some(key) = api_key {
            builder = builder.api_key(key.to_string());
        }
        let client = builder.build().map_err(unavailable)?;
        let mut index = Self { client, collection: collection.to_string(), dimensions, sparse: true };
        index.sparse = index.ensure_collection().await?;
        Ok(index)
    }

    /// Makes sure the collection exists; returns whether it has the `terms`
    /// sparse vector.
    async fn ensure_collection(&self) -> Result<bool, IndexError> {
        if self.client.collection_exists(&self.collection).await.map_err(unavailable)? {
            let info = self.client.collection_info(&self.collection).await.map_err(unavailable)?;
            let params = info.result.and_then(|i| i.config).and_then(|c| c.params);
            let sparse = params.as_ref().and_then(|p| p.sparse_vectors_config.as_ref()).is_some_and(|s| s.map.contains_key(TERMS));
            if !sparse {
                tracing::warn!(
                    collection = %self.collection,
                    "the Qdrant collection has no `terms` sparse vector (made by an earlier version): lexical search stays in the store; a new collection (QDRANT_COLLECTION) and `dadly reindex` move it to Qdrant"
                );
            }
            let size = params
                .and_then(|p| p.vectors_config)
                .and_then(|v| v.config)
                .and_then(|c| match c {
                    vectors_config::Config::Params(p) => Some(p.size as usize),
                    vectors_config::Config::ParamsMap(_) => None,
                });
            return match size {
                Some(s) if s == self.dimensions => Ok(sparse),
                Some(s) => Err(IndexError::Dimensions { expected: s, got: self.dimensions }),
                None => Err(IndexError::Backend(format!("collection {} has named vectors; expected one unnamed vector", self.collection).into())),
            };
        }
        let mut sparse = SparseVectorsConfigBuilder::default();
        sparse.add_named_vector_params(TERMS, SparseVectorParamsBuilder::default().modifier(Modifier::Idf));
        self.client
            .create_collection(
                CreateCollectionBuilder::new(&self.collection)
                    .vectors_config(VectorParamsBuilder::new(self.dimensions as u64, Distance::Cosine))
                    .sparse_vectors_config(sparse),
            )
            .await
            .map_err(unavailable)?;
        let indexes = [
            ("owner_id", FieldType::Keyword, Some(KeywordIndexParamsBuilder::default().is_tenant(true).build().into())),
            ("entry_id", FieldType::Keyword, None),
            ("member_ids", FieldType::Keyword, None),
            ("topics", FieldType::Keyword, None),
            ("emotions", FieldType::Keyword, None),
            ("occurred_at", FieldType::Datetime, Some(DatetimeIndexParamsBuilder::default().build().into())),
        ];
        for (field, kind, params) in indexes {
            let mut req = CreateFieldIndexCollectionBuilder::new(&self.collection, field, kind).wait(true);
            if let Some(p) = params {
                req = req.field_index_params::<qdrant_client::qdrant::payload_index_params::IndexParams>(p);
            }
            self.client.create_field_index(req).await.map_err(unavailable)?;
        }
        Ok(true)
    }

    /// Every point (piece) of one entry of the family.
    fn entry_filter(&self, family_id: FamilyId, entry_id: EntryId) -> Filter {
        Filter::must([Condition::matches("owner_id", family_id.to_string()), Condition::matches("entry_id", entry_id.to_string())])
    }

    fn owner_filter(&self, family_id: FamilyId, filter: &SearchFilter) -> Filter {
        let mut must = vec![Condition::matches("owner_id", family_id.to_string())];
        if !filter.member_ids.is_empty() {
            // About one of these children, or about none in particular (the whole family).
            let about = Condition::matches("member_ids", filter.member_ids.iter().map(|m| m.to_string()).collect::<Vec<_>>());
            must.push(Condition::from(Filter::should([about, Condition::is_empty("member_ids")])));
        }
        if filter.from.is_some() || filter.to.is_some() {
            must.push(Condition::datetime_range(
                "occurred_at",
                DatetimeRange { gte: filter.from.map(timestamp), lt: filter.to.map(timestamp), gt: None, lte: None },
            ));
        }
        Filter::must(must)
    }
}

fn payload(family_id: FamilyId, entry_id: EntryId, member_ids: &[MemberId], topics: &[String], emotions: &[String]) -> serde_json::Map<String, serde_json::Value> {
    let v = json!({
        "entry_id": entry_id.to_string(),
        "owner_id": family_id.to_string(),
        "member_ids": member_ids.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        "topics": topics,
        "emotions": emotions,
    });
    match v {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("a json! object"),
    }
}

#[async_trait]
impl VectorIndex for QdrantIndex {
    async fn ping(&self) -> Result<(), IndexError> {
        self.client.health_check().await.map(|_| ()).map_err(unavailable)
    }

    fn backend(&self) -> &'static str {
        "qdrant"
    }

    async fn upsert(&self, family_id: FamilyId, r: VectorRecord) -> Result<(), IndexError> {
        if let Some(v) = r.chunk_vectors().find(|v| v.len() != self.dimensions) {
            return Err(IndexError::Dimensions { expected: self.dimensions, got: v.len() });
        }
        let mut map = payload(family_id, r.entry_id, &r.member_ids, &r.topics, &r.emotions);
        map.insert("occurred_at".into(), json!(r.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
        map.insert("entry_version".into(), json!(r.entry_version));
        // One point per piece of the entry; the first keeps the entry's own id.
        let ids: Vec<PointId> = (0..=r.extra_chunks.len()).map(|i| chunk_point_id(r.entry_id, i)).collect();
        let points: Vec<PointStruct> = r
            .chunk_vectors()
            .zip(&ids)
            .enumerate()
            .map(|(i, (v, id))| {
                let mut m = map.clone();
                m.insert("chunk".into(), json!(i));
                // The entry's terms go on its first point: one lexical hit per entry.
                match (i, self.sparse && !r.terms.is_empty()) {
                    (0, true) => {
                        let (dims, values) = document_terms(&r.terms);
                        let vectors = NamedVectors::default().add_vector("", v.clone()).add_vector(TERMS, Vector::new_sparse(dims, values));
                        PointStruct::new(id.clone(), vectors, Payload::from(m))
                    }
                    _ => PointStruct::new(id.clone(), v.clone(), Payload::from(m)),
                }
            })
            .collect();
        self.client.upsert_points(UpsertPointsBuilder::new(&self.collection, points).wait(true)).await.map_err(unavailable)?;
        // Pieces of an earlier, longer version go (never a moment with none indexed).
        let stale = Filter { must: self.entry_filter(family_id, r.entry_id).must, must_not: vec![Condition::has_id(ids)], ..Default::default() };
        self.client.delete_points(DeletePointsBuilder::new(&self.collection).points(stale).wait(true)).await.map_err(unavailable)?;
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
        let mut map = payload(family_id, entry_id, member_ids, topics, emotions);
        // Only the attributes change; the owner must already match (see filter).
        map.remove("owner_id");
        map.remove("entry_id");
        let req = SetPayloadPointsBuilder::new(&self.collection, Payload::from(map)).points_selector(self.entry_filter(family_id, entry_id)).wait(true);
        self.client.set_payload(req).await.map_err(unavailable)?;
        Ok(())
    }

    async fn delete(&self, family_id: FamilyId, entry_id: EntryId) -> Result<(), IndexError> {
        let req = DeletePointsBuilder::new(&self.collection).points(self.entry_filter(family_id, entry_id)).wait(true);
        self.client.delete_points(req).await.map_err(unavailable)?;
        Ok(())
    }

    async fn search(&self, family_id: FamilyId, query: &[f32], filter: &SearchFilter, limit: usize) -> Result<Vec<Hit>, IndexError> {
        if query.len() != self.dimensions {
            return Err(IndexError::Dimensions { expected: self.dimensions, got: query.len() });
        }
        #[allow(deprecated)]
        // Pieces of one entry may fill several places: ask for more, keep each entry's best.
        let wanted = (limit * 4).clamp(limit, limit + 200) as u64;
        let req = SearchPointsBuilder::new(&self.collection, query.to_vec(), wanted).filter(self.owner_filter(family_id, filter)).with_payload(true);
        #[allow(deprecated)]
        let response = self.client.search_points(req).await.map_err(unavailable)?;
        let mut hits = Vec::new();
        for point in response.result {
            // Results come best first: the first piece of an entry is its best.
            if let Some(entry_id) = entry_of(family_id, &point)
                && !hits.iter().any(|h: &Hit| h.entry_id == entry_id)
            {
                hits.push(Hit { entry_id, score: point.score });
            }
        }
        hits.truncate(limit);
        Ok(hits)
    }

    fn lexical_backend(&self) -> &'static str {
        if self.sparse { "qdrant" } else { "store" }
    }

    async fn lexical_search(&self, family_id: FamilyId, terms: &[String], filter: &SearchFilter, limit: usize) -> Result<Option<Vec<LexicalHit>>, IndexError> {
        if !self.sparse {
            return Ok(None);
        }
        if terms.is_empty() || limit == 0 {
            return Ok(Some(Vec::new()));
        }
        let (dims, values) = query_terms(terms);
        let req = QueryPointsBuilder::new(&self.collection)
            .query(Query::new_nearest(VectorInput::new_sparse(dims, values)))
            .using(TERMS)
            .filter(self.owner_filter(family_id, filter))
            .limit(limit as u64)
            .with_payload(true)
            .with_vectors(VectorsSelector { names: vec![TERMS.to_string()] });
        let response = self.client.query(req).await.map_err(unavailable)?;
        let mut hits = Vec::new();
        for point in response.result {
            let Some(entry_id) = entry_of(family_id, &point) else { continue };
            // Which of the question's terms the entry holds, read off its sparse vector.
            let held = point_terms(&point);
            let matched: Vec<String> = terms.iter().filter(|t| held.binary_search(&term_dimension(t)).is_ok()).cloned().collect();
            if !hits.iter().any(|h: &LexicalHit| h.entry_id == entry_id) {
                hits.push(LexicalHit { entry_id, score: point.score, terms: matched });
            }
        }
        Ok(Some(hits))
    }
}

/// The entry a point belongs to, when it is the family's (the server was
/// asked for this owner only; checked anyway).
fn entry_of(family_id: FamilyId, point: &ScoredPoint) -> Option<EntryId> {
    let owner = point.payload.get("owner_id").and_then(|v| v.as_str().map(|s| s.to_string()));
    if owner.as_deref() != Some(family_id.to_string().as_str()) {
        tracing::error!("vector index returned a point of another owner; dropped");
        return None;
    }
    let entry = point.payload.get("entry_id").and_then(|v| v.as_str().and_then(|s| s.parse::<EntryId>().ok()));
    entry.or_else(|| match point.id.as_ref().and_then(|p| p.point_id_options.as_ref()) {
        Some(PointIdOptions::Uuid(s)) => s.parse().ok(),
        _ => None,
    })
}

/// The dimensions of a point's `terms` sparse vector, ascending.
fn point_terms(point: &ScoredPoint) -> Vec<u32> {
    let named = match point.vectors.as_ref().and_then(|v| v.vectors_options.as_ref()) {
        Some(vectors_output::VectorsOptions::Vectors(named)) => named,
        _ => return Vec::new(),
    };
    let Some(v) = named.vectors.get(TERMS) else { return Vec::new() };
    #[allow(deprecated)]
    let mut dims = match (&v.vector, &v.indices) {
        (Some(vector_output::Vector::Sparse(s)), _) => s.indices.clone(),
        // Servers before 1.16 send a sparse vector in the older fields.
        (None, Some(indices)) => indices.data.clone(),
        _ => Vec::new(),
    };
    dims.sort_unstable();
    dims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_become_sparse_vectors_with_sorted_unique_dimensions() {
        let terms: Vec<String> = ["bike", "wheel", "bike", "민지"].iter().map(|s| s.to_string()).collect();
        let (dims, values) = query_terms(&terms);
        assert_eq!(dims.len(), 3, "a repeated term is one dimension");
        assert!(dims.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(values, vec![1.0; 3]);
        assert_eq!(term_dimension("bike"), term_dimension("bike"));
        assert_ne!(term_dimension("bike"), term_dimension("bikes"));
        // A longer entry weighs each of its terms less (BM25's length normalisation).
        let short = document_terms(&terms[..2]);
        let long: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        assert!(document_terms(&long).1[0] < short.1[0], "{:?} {:?}", document_terms(&long).1[0], short.1[0]);
        assert!((document_terms(&vec!["x".to_string(); 40]).1[0] - 1.0).abs() < 1e-6, "an entry of average length weighs 1");
    }
}
