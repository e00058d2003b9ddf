//! `QdrantIndex`: vectors in Qdrant over gRPC (qdrant-client). One point per
//! entry (point id = entry id, so upserts are idempotent), cosine distance,
//! payload `{entry_id, owner_id, member_ids, topics, emotions, occurred_at}`,
//! `owner_id` indexed as the tenant key, and a `must` filter on `owner_id` in
//! every search.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use qdrant_client::qdrant::{
    Condition, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, DatetimeIndexParamsBuilder, DatetimeRange,
    DeletePointsBuilder, Distance, FieldType, Filter, KeywordIndexParamsBuilder, PointId, PointStruct,
    SearchPointsBuilder, SetPayloadPointsBuilder, UpsertPointsBuilder, VectorParamsBuilder, point_id::PointIdOptions,
    vectors_config,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use serde_json::json;

use super::{Hit, IndexError, SearchFilter, VectorIndex};
use crate::domain::{EntryId, FamilyId, MemberId};
use crate::store::VectorRecord;

pub struct QdrantIndex {
    client: Qdrant,
    collection: String,
    dimensions: usize,
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
        let index = Self { client, collection: collection.to_string(), dimensions };
        index.ensure_collection().await?;
        Ok(index)
    }

    async fn ensure_collection(&self) -> Result<(), IndexError> {
        if self.client.collection_exists(&self.collection).await.map_err(unavailable)? {
            let info = self.client.collection_info(&self.collection).await.map_err(unavailable)?;
            let size = info
                .result
                .and_then(|i| i.config)
                .and_then(|c| c.params)
                .and_then(|p| p.vectors_config)
                .and_then(|v| v.config)
                .and_then(|c| match c {
                    vectors_config::Config::Params(p) => Some(p.size as usize),
                    vectors_config::Config::ParamsMap(_) => None,
                });
            return match size {
                Some(s) if s == self.dimensions => Ok(()),
                Some(s) => Err(IndexError::Dimensions { expected: s, got: self.dimensions }),
                None => Err(IndexError::Backend(format!("collection {} has named vectors; expected one unnamed vector", self.collection).into())),
            };
        }
        self.client
            .create_collection(
                CreateCollectionBuilder::new(&self.collection).vectors_config(VectorParamsBuilder::new(self.dimensions as u64, Distance::Cosine)),
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
        Ok(())
    }

    /// Every point (piece) of one entry of the family.
    fn entry_filter(&self, family_id: FamilyId, entry_id: EntryId) -> Filter {
        Filter::must([Condition::matches("owner_id", family_id.to_string()), Condition::matches("entry_id", entry_id.to_string())])
    }

    fn owner_filter(&self, family_id: FamilyId, filter: &SearchFilter) -> Filter {
        let mut must = vec![Condition::matches("owner_id", family_id.to_string())];
        if !filter.member_ids.is_empty() {
            must.push(Condition::matches("member_ids", filter.member_ids.iter().map(|m| m.to_string()).collect::<Vec<_>>()));
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
                PointStruct::new(id.clone(), v.clone(), Payload::from(m))
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
            // Belt and braces: the server was asked for this owner only; check anyway.
            let owner = point.payload.get("owner_id").and_then(|v| v.as_str().map(|s| s.to_string()));
            if owner.as_deref() != Some(family_id.to_string().as_str()) {
                tracing::error!("vector index returned a point of another owner; dropped");
                continue;
            }
            let entry = point.payload.get("entry_id").and_then(|v| v.as_str().and_then(|s| s.parse::<EntryId>().ok()));
            let id = entry.or_else(|| match point.id.and_then(|p| p.point_id_options) {
                Some(PointIdOptions::Uuid(s)) => s.parse().ok(),
                _ => None,
            });
            // Results come best first: the first piece of an entry is its best.
            if let Some(entry_id) = id
                && !hits.iter().any(|h: &Hit| h.entry_id == entry_id)
            {
                hits.push(Hit { entry_id, score: point.score });
            }
        }
        hits.truncate(limit);
        Ok(hits)
    }
}
