//! An in-memory Qdrant that speaks the real gRPC protocol: it implements the
//! server traits generated in qdrant-client, so our real `QdrantIndex` code
//! talks to it unchanged. It covers the calls Dadly makes — collections
//! (create, exists, info), field indexes, upsert, set payload, delete, search,
//! and the Query API's nearest-neighbour query on the dense vector or a
//! sparse one — with Qdrant's semantics: cosine scores, sparse dot products
//! with the collection's IDF modifier (`ln(1 + (N − n + 0.5)/(n + 0.5))`, N
//! the points holding that sparse vector, n those holding the dimension),
//! `must`/`should`/`must_not` filters (nested too) with keyword,
//! any-of-keywords, datetime-range, has-id and is-empty conditions, and the `api-key` header. Anything
//! else (prefetches, fusion, other query kinds) answers `UNIMPLEMENTED`
//! rather than pretending.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use ::qdrant_client::qdrant::collections_server::{Collections, CollectionsServer};
use ::qdrant_client::qdrant::points_server::{Points, PointsServer};
use ::qdrant_client::qdrant::qdrant_server::{Qdrant, QdrantServer};
use ::qdrant_client::qdrant::*;
use tonic::{Request, Response, Status};

#[derive(Clone)]
struct Point {
    vector: Vec<f32>,
    /// Sparse vectors by name: dimensions (ascending) and values.
    sparse: HashMap<String, (Vec<u32>, Vec<f32>)>,
    payload: HashMap<String, Value>,
}

struct Collection {
    size: u64,
    /// Sparse vectors by name, with their modifier (`Modifier` as i32).
    sparse: HashMap<String, i32>,
    points: HashMap<String, Point>,
    indexes: HashMap<String, i32>,
}

impl Collection {
    /// Qdrant's IDF of one dimension of a sparse vector, over the points holding that vector.
    fn idf(&self, name: &str, dim: u32) -> f32 {
        let holding = self.points.values().filter_map(|p| p.sparse.get(name));
        let (mut n_all, mut n_dim) = (0f32, 0f32);
        for (dims, _) in holding {
            n_all += 1.0;
            if dims.binary_search(&dim).is_ok() {
                n_dim += 1.0;
            }
        }
        (1.0 + (n_all - n_dim + 0.5) / (n_dim + 0.5)).ln()
    }
}

#[derive(Default)]
struct State {
    collections: HashMap<String, Collection>,
    /// Every point read or write that selects by filter, in order (for isolation tests).
    calls: Vec<Call>,
    /// Points whose upserts are refused (see `refuse_upserts_of`).
    refused: std::collections::HashSet<String>,
    /// The next upsert waits here (see `hold_next_upsert`).
    hold: Option<UpsertHold>,
    /// Vectors go out in the fields servers before 1.16 use (see `answer_like_1_15`).
    legacy_vectors: bool,
}

/// An upsert held before it is applied, so a test can make something
/// happen while a write is in flight.
#[derive(Clone, Default)]
pub struct UpsertHold {
    arrived: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

impl UpsertHold {
    /// Returns once the held upsert has reached the server.
    pub async fn arrived(&self) {
        self.arrived.notified().await
    }

    /// Lets the held upsert be applied.
    pub fn release(&self) {
        self.release.notify_one()
    }
}

/// One search, scroll, set-payload or delete the stand-in received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: &'static str,
    /// The `owner_id` a top-level `must` keyword condition demands, if any.
    pub must_owner: Option<String>,
}

/// The owner a filter's top-level `must` insists on (a nested or `should`
/// condition does not confine anything, so it does not count).
fn must_owner(filter: Option<&Filter>) -> Option<String> {
    filter?.must.iter().find_map(|c| match &c.condition_one_of {
        Some(condition::ConditionOneOf::Field(f)) if f.key == "owner_id" => match f.r#match.as_ref()?.match_value.as_ref()? {
            r#match::MatchValue::Keyword(k) => Some(k.clone()),
            _ => None,
        },
        _ => None,
    })
}

fn selector_filter(selector: Option<&PointsSelector>) -> Option<&Filter> {
    match selector?.points_selector_one_of.as_ref()? {
        points_selector::PointsSelectorOneOf::Filter(f) => Some(f),
        points_selector::PointsSelectorOneOf::Points(_) => None,
    }
}

/// A payload value as JSON.
fn to_json(v: &Value) -> serde_json::Value {
    match &v.kind {
        Some(value::Kind::NullValue(_)) | None => serde_json::Value::Null,
        Some(value::Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(value::Kind::IntegerValue(i)) => serde_json::json!(i),
        Some(value::Kind::DoubleValue(d)) => serde_json::json!(d),
        Some(value::Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(value::Kind::ListValue(l)) => serde_json::Value::Array(l.values.iter().map(to_json).collect()),
        Some(value::Kind::StructValue(s)) => serde_json::Value::Object(s.fields.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

/// A running stand-in. Dropping it does not stop the server task.
#[derive(Clone)]
pub struct QdrantStandIn {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl QdrantStandIn {
    /// Starts on a random local port; `api_key` makes it demand the `api-key` header.
    pub async fn start(api_key: Option<&str>) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let svc = Service { state: state.clone() };
        let key = api_key.map(String::from);
        let check = move |req: Request<()>| -> Result<Request<()>, Status> {
            match &key {
                Some(k) if req.metadata().get("api-key").and_then(|v| v.to_str().ok()) != Some(k.as_str()) => {
                    Err(Status::unauthenticated("Must provide an API key or an Authorization bearer token"))
                }
                _ => Ok(req),
            }
        };
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(QdrantServer::with_interceptor(svc.clone(), check.clone()))
                .add_service(CollectionsServer::with_interceptor(svc.clone(), check.clone()))
                .add_service(PointsServer::with_interceptor(svc, check))
                .serve_with_incoming(incoming),
        );
        Self { url: format!("http://{addr}"), state }
    }

    /// How many points a collection holds (for assertions).
    pub fn count(&self, collection: &str) -> usize {
        self.state.lock().unwrap().collections.get(collection).map(|c| c.points.len()).unwrap_or(0)
    }

    /// Every search, scroll, set-payload and delete received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// A point's payload as JSON (for assertions).
    pub fn payload(&self, collection: &str, point_id: &str) -> Option<serde_json::Value> {
        let state = self.state.lock().unwrap();
        let point = state.collections.get(collection)?.points.get(&point_id.to_lowercase())?;
        Some(serde_json::Value::Object(point.payload.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()))
    }

    /// Makes every upsert that holds this point fail with `INVALID_ARGUMENT`,
    /// whole, as a real server refuses a request with one point it will not
    /// take (a payload past its limit, say).
    pub fn refuse_upserts_of(&self, point_id: &str) {
        self.state.lock().unwrap().refused.insert(point_id.to_lowercase());
    }

    /// Holds the next upsert (whichever collection) until `release`.
    pub fn hold_next_upsert(&self) -> UpsertHold {
        let hold = UpsertHold::default();
        self.state.lock().unwrap().hold = Some(hold.clone());
        hold
    }

    /// The payload indexes of a collection: field → `FieldType` as i32.
    pub fn indexes(&self, collection: &str) -> HashMap<String, i32> {
        self.state.lock().unwrap().collections.get(collection).map(|c| c.indexes.clone()).unwrap_or_default()
    }

    /// Sends vectors back as Qdrant servers before 1.16 do: a sparse vector
    /// in `VectorOutput`'s older `data` and `indices` fields, not its `vector`.
    pub fn answer_like_1_15(&self) {
        self.state.lock().unwrap().legacy_vectors = true;
    }

    /// A collection's sparse vectors: name → `Modifier` as i32.
    pub fn sparse_vectors(&self, collection: &str) -> HashMap<String, i32> {
        self.state.lock().unwrap().collections.get(collection).map(|c| c.sparse.clone()).unwrap_or_default()
    }

    /// A point's sparse vector `name` (dimensions, values), if it has one.
    pub fn sparse_vector(&self, collection: &str, point_id: &str, name: &str) -> Option<(Vec<u32>, Vec<f32>)> {
        let state = self.state.lock().unwrap();
        state.collections.get(collection)?.points.get(&point_id.to_lowercase())?.sparse.get(name).cloned()
    }
}

#[derive(Clone)]
struct Service {
    state: Arc<Mutex<State>>,
}

fn ok_update() -> Response<PointsOperationResponse> {
    Response::new(PointsOperationResponse {
        result: Some(UpdateResult { operation_id: Some(0), status: UpdateStatus::Completed as i32 }),
        time: 0.0,
        usage: None,
    })
}

fn id_key(id: &PointId) -> Result<String, Status> {
    match &id.point_id_options {
        Some(point_id::PointIdOptions::Uuid(u)) => Ok(u.to_lowercase()),
        Some(point_id::PointIdOptions::Num(n)) => Ok(n.to_string()),
        None => Err(Status::invalid_argument("point id is empty")),
    }
}

fn key_to_id(key: &str) -> PointId {
    match key.parse::<u64>() {
        Ok(n) => PointId::from(n),
        Err(_) => PointId::from(key.to_string()),
    }
}

#[allow(deprecated)]
fn dense(v: &Vector) -> Result<Vec<f32>, Status> {
    match &v.vector {
        Some(vector::Vector::Dense(d)) => Ok(d.data.clone()),
        Some(_) => Err(Status::unimplemented("only dense and sparse vectors are supported by the stand-in")),
        None if v.indices.is_some() => Err(Status::invalid_argument("Wrong input: expected a dense vector, got a sparse one")),
        None => Ok(v.data.clone()),
    }
}

/// A sparse vector as Qdrant checks it: as many values as dimensions, each
/// dimension once; kept sorted by dimension.
fn checked_sparse(indices: &[u32], values: &[f32]) -> Result<(Vec<u32>, Vec<f32>), Status> {
    if indices.len() != values.len() {
        return Err(Status::invalid_argument("Wrong input: sparse vector indices and values must have the same length"));
    }
    let mut pairs: Vec<(u32, f32)> = indices.iter().copied().zip(values.iter().copied()).collect();
    pairs.sort_by_key(|p| p.0);
    if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(Status::invalid_argument("Wrong input: sparse vector indices must be unique"));
    }
    Ok(pairs.into_iter().unzip())
}

#[allow(deprecated)]
fn sparse(v: &Vector) -> Result<(Vec<u32>, Vec<f32>), Status> {
    match (&v.vector, &v.indices) {
        (Some(vector::Vector::Sparse(s)), _) => checked_sparse(&s.indices, &s.values),
        (None, Some(ix)) => checked_sparse(&ix.data, &v.data),
        _ => Err(Status::invalid_argument("Wrong input: expected a sparse vector")),
    }
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

fn strings(v: &Value) -> Vec<String> {
    match &v.kind {
        Some(value::Kind::StringValue(s)) => vec![s.clone()],
        Some(value::Kind::ListValue(l)) => l.values.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

fn to_datetime(ts: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts.seconds, ts.nanos as u32)
}

fn field_matches(point: &Point, f: &FieldCondition) -> Result<bool, Status> {
    let values = point.payload.get(&f.key).map(strings).unwrap_or_default();
    if let Some(m) = &f.r#match {
        return match &m.match_value {
            Some(r#match::MatchValue::Keyword(k)) => Ok(values.iter().any(|v| v == k)),
            Some(r#match::MatchValue::Keywords(ks)) => Ok(values.iter().any(|v| ks.strings.contains(v))),
            Some(r#match::MatchValue::ExceptKeywords(ks)) => Ok(!values.iter().any(|v| ks.strings.contains(v))),
            _ => Err(Status::unimplemented("the stand-in supports keyword matches only")),
        };
    }
    if let Some(r) = &f.datetime_range {
        let times: Vec<DateTime<Utc>> = values.iter().filter_map(|v| DateTime::parse_from_rfc3339(v).ok().map(|t| t.to_utc())).collect();
        return Ok(times.iter().any(|t| {
            r.gte.as_ref().and_then(to_datetime).is_none_or(|b| *t >= b)
                && r.gt.as_ref().and_then(to_datetime).is_none_or(|b| *t > b)
                && r.lte.as_ref().and_then(to_datetime).is_none_or(|b| *t <= b)
                && r.lt.as_ref().and_then(to_datetime).is_none_or(|b| *t < b)
        }));
    }
    Err(Status::unimplemented("the stand-in supports match and datetime_range field conditions only"))
}

fn condition_matches(key: &str, point: &Point, c: &Condition) -> Result<bool, Status> {
    match &c.condition_one_of {
        Some(condition::ConditionOneOf::Field(f)) => field_matches(point, f),
        Some(condition::ConditionOneOf::HasId(h)) => Ok(h.has_id.iter().filter_map(|i| id_key(i).ok()).any(|k| k == key)),
        Some(condition::ConditionOneOf::Filter(f)) => filter_matches(key, point, Some(f)),
        // Qdrant's is_empty: the field missing, null, or an empty list.
        Some(condition::ConditionOneOf::IsEmpty(c)) => Ok(match point.payload.get(&c.key).and_then(|v| v.kind.as_ref()) {
            None | Some(value::Kind::NullValue(_)) => true,
            Some(value::Kind::ListValue(l)) => l.values.is_empty(),
            Some(_) => false,
        }),
        _ => Err(Status::unimplemented("condition not supported by the stand-in")),
    }
}

fn filter_matches(key: &str, point: &Point, filter: Option<&Filter>) -> Result<bool, Status> {
    let Some(f) = filter else { return Ok(true) };
    for c in &f.must {
        if !condition_matches(key, point, c)? {
            return Ok(false);
        }
    }
    for c in &f.must_not {
        if condition_matches(key, point, c)? {
            return Ok(false);
        }
    }
    if !f.should.is_empty() {
        let mut any = false;
        for c in &f.should {
            any |= condition_matches(key, point, c)?;
        }
        if !any {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The keys of the points a selector names.
fn selected(coll: &Collection, selector: Option<&PointsSelector>) -> Result<Vec<String>, Status> {
    match selector.and_then(|s| s.points_selector_one_of.as_ref()) {
        Some(points_selector::PointsSelectorOneOf::Points(list)) => {
            list.ids.iter().map(id_key).filter(|k| k.as_ref().map(|k| coll.points.contains_key(k)).unwrap_or(true)).collect()
        }
        Some(points_selector::PointsSelectorOneOf::Filter(f)) => {
            let mut keys = Vec::new();
            for (k, p) in &coll.points {
                if filter_matches(k, p, Some(f))? {
                    keys.push(k.clone());
                }
            }
            Ok(keys)
        }
        None => Err(Status::invalid_argument("points selector is empty")),
    }
}

/// The vectors a query asked to see: all (`true`) or those named; `legacy`:
/// in the fields servers before 1.16 use.
#[allow(deprecated)]
fn vectors_output(p: &Point, selector: Option<&WithVectorsSelector>, legacy: bool) -> Option<VectorsOutput> {
    let wanted = |name: &str| match selector.and_then(|s| s.selector_options.as_ref()) {
        Some(with_vectors_selector::SelectorOptions::Enable(all)) => *all,
        Some(with_vectors_selector::SelectorOptions::Include(names)) => names.names.iter().any(|n| n == name),
        None => false,
    };
    let mut named = HashMap::new();
    if wanted("") {
        named.insert(String::new(), VectorOutput { vector: Some(vector_output::Vector::Dense(DenseVector { data: p.vector.clone() })), ..Default::default() });
    }
    for (name, (dims, values)) in &p.sparse {
        if wanted(name) {
            let out = match legacy {
                true => VectorOutput { data: values.clone(), indices: Some(SparseIndices { data: dims.clone() }), ..Default::default() },
                false => VectorOutput { vector: Some(vector_output::Vector::Sparse(SparseVector { indices: dims.clone(), values: values.clone() })), ..Default::default() },
            };
            named.insert(name.clone(), out);
        }
    }
    (!named.is_empty()).then_some(VectorsOutput { vectors_options: Some(vectors_output::VectorsOptions::Vectors(NamedVectorsOutput { vectors: named })) })
}

impl Service {
    fn record(&self, method: &'static str, filter: Option<&Filter>) {
        self.state.lock().unwrap().calls.push(Call { method, must_owner: must_owner(filter) });
    }

    fn with<T>(&self, name: &str, f: impl FnOnce(&mut Collection) -> Result<T, Status>) -> Result<T, Status> {
        let mut state = self.state.lock().unwrap();
        let coll = state.collections.get_mut(name).ok_or_else(|| Status::not_found(format!("Collection `{name}` doesn't exist!")))?;
        f(coll)
    }
}

/// Methods answered `UNIMPLEMENTED`, written in the form `async_trait`
/// expands to (the attribute cannot see methods a macro produces).
macro_rules! unimplemented_calls {
    ($($name:ident($req:ty) -> $resp:ty;)*) => {
        $(fn $name<'life0, 'async_trait>(
            &'life0 self,
            _r: Request<$req>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<$resp>, Status>> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async { Err(Status::unimplemented(concat!(stringify!($name), " is not supported by the Qdrant stand-in"))) })
        })*
    };
}

#[tonic::async_trait]
impl Qdrant for Service {
    async fn health_check(&self, _r: Request<HealthCheckRequest>) -> Result<Response<HealthCheckReply>, Status> {
        Ok(Response::new(HealthCheckReply { title: "qdrant stand-in".into(), version: "1.20.0".into(), commit: None }))
    }
}

#[tonic::async_trait]
impl Collections for Service {
    async fn get(&self, r: Request<GetCollectionInfoRequest>) -> Result<Response<GetCollectionInfoResponse>, Status> {
        let name = r.into_inner().collection_name;
        self.with(&name, |c| {
            let params = CollectionParams {
                vectors_config: Some(VectorsConfig {
                    config: Some(vectors_config::Config::Params(VectorParams { size: c.size, distance: Distance::Cosine as i32, ..Default::default() })),
                }),
                shard_number: 1,
                sparse_vectors_config: (!c.sparse.is_empty()).then(|| SparseVectorConfig {
                    map: c.sparse.iter().map(|(name, m)| (name.clone(), SparseVectorParams { index: None, modifier: Some(*m) })).collect(),
                }),
                ..Default::default()
            };
            Ok(Response::new(GetCollectionInfoResponse {
                result: Some(CollectionInfo {
                    status: CollectionStatus::Green as i32,
                    points_count: Some(c.points.len() as u64),
                    segments_count: 1,
                    config: Some(CollectionConfig { params: Some(params), ..Default::default() }),
                    ..Default::default()
                }),
                time: 0.0,
            }))
        })
    }

    async fn list(&self, _r: Request<ListCollectionsRequest>) -> Result<Response<ListCollectionsResponse>, Status> {
        let names = self.state.lock().unwrap().collections.keys().map(|n| CollectionDescription { name: n.clone() }).collect();
        Ok(Response::new(ListCollectionsResponse { collections: names, time: 0.0 }))
    }

    async fn create(&self, r: Request<CreateCollection>) -> Result<Response<CollectionOperationResponse>, Status> {
        let req = r.into_inner();
        let size = match req.vectors_config.and_then(|v| v.config) {
            Some(vectors_config::Config::Params(p)) if p.distance == Distance::Cosine as i32 => p.size,
            Some(vectors_config::Config::Params(_)) => return Err(Status::unimplemented("the stand-in supports cosine distance only")),
            _ => return Err(Status::invalid_argument("one unnamed vector config is required")),
        };
        let sparse = req.sparse_vectors_config.map(|s| s.map.into_iter().map(|(name, p)| (name, p.modifier.unwrap_or(Modifier::None as i32))).collect()).unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        if state.collections.contains_key(&req.collection_name) {
            return Err(Status::already_exists(format!("Collection `{}` already exists!", req.collection_name)));
        }
        state.collections.insert(req.collection_name, Collection { size, sparse, points: HashMap::new(), indexes: HashMap::new() });
        Ok(Response::new(CollectionOperationResponse { result: true, time: 0.0 }))
    }

    async fn delete(&self, r: Request<DeleteCollection>) -> Result<Response<CollectionOperationResponse>, Status> {
        let removed = self.state.lock().unwrap().collections.remove(&r.into_inner().collection_name).is_some();
        Ok(Response::new(CollectionOperationResponse { result: removed, time: 0.0 }))
    }

    async fn collection_exists(&self, r: Request<CollectionExistsRequest>) -> Result<Response<CollectionExistsResponse>, Status> {
        let exists = self.state.lock().unwrap().collections.contains_key(&r.into_inner().collection_name);
        Ok(Response::new(CollectionExistsResponse { result: Some(CollectionExists { exists }), time: 0.0 }))
    }

    unimplemented_calls! {
        update(UpdateCollection) -> CollectionOperationResponse;
        update_aliases(ChangeAliases) -> CollectionOperationResponse;
        list_collection_aliases(ListCollectionAliasesRequest) -> ListAliasesResponse;
        list_aliases(ListAliasesRequest) -> ListAliasesResponse;
        collection_cluster_info(CollectionClusterInfoRequest) -> CollectionClusterInfoResponse;
        update_collection_cluster_setup(UpdateCollectionClusterSetupRequest) -> UpdateCollectionClusterSetupResponse;
        create_shard_key(CreateShardKeyRequest) -> CreateShardKeyResponse;
        delete_shard_key(DeleteShardKeyRequest) -> DeleteShardKeyResponse;
        list_shard_keys(ListShardKeysRequest) -> ListShardKeysResponse;
    }
}

#[tonic::async_trait]
impl Points for Service {
    async fn upsert(&self, r: Request<UpsertPoints>) -> Result<Response<PointsOperationResponse>, Status> {
        let req = r.into_inner();
        let hold = self.state.lock().unwrap().hold.take();
        if let Some(hold) = hold {
            hold.arrived.notify_one();
            hold.release.notified().await;
        }
        let refused = self.state.lock().unwrap().refused.clone();
        self.with(&req.collection_name, |c| {
            // Every point is checked before any is written: a refused request changes nothing.
            let mut points = Vec::with_capacity(req.points.len());
            for p in req.points {
                let key = id_key(p.id.as_ref().ok_or_else(|| Status::invalid_argument("point without id"))?)?;
                if refused.contains(&key) {
                    return Err(Status::invalid_argument(format!("Wrong input: payload of point {key} is too large")));
                }
                let mut sparse_vectors = HashMap::new();
                let mut vector = match p.vectors.and_then(|v| v.vectors_options) {
                    Some(vectors::VectorsOptions::Vector(v)) => dense(&v)?,
                    // Named: the unnamed dense vector is "", the rest are the collection's sparse vectors.
                    Some(vectors::VectorsOptions::Vectors(named)) => {
                        let mut found = None;
                        for (name, v) in &named.vectors {
                            if name.is_empty() {
                                found = Some(dense(v)?);
                            } else if c.sparse.contains_key(name) {
                                sparse_vectors.insert(name.clone(), sparse(v)?);
                            } else {
                                return Err(Status::invalid_argument(format!("Wrong input: Not existing vector name error: {name}")));
                            }
                        }
                        found.ok_or_else(|| Status::unimplemented("the stand-in needs the unnamed dense vector on every point"))?
                    }
                    None => return Err(Status::invalid_argument("point without vectors")),
                };
                if vector.len() as u64 != c.size {
                    return Err(Status::invalid_argument(format!(
                        "Wrong input: Vector dimension error: expected dim: {}, got {}",
                        c.size,
                        vector.len()
                    )));
                }
                normalise(&mut vector);
                points.push((key, Point { vector, sparse: sparse_vectors, payload: p.payload }));
            }
            c.points.extend(points);
            Ok(ok_update())
        })
    }

    async fn delete(&self, r: Request<DeletePoints>) -> Result<Response<PointsOperationResponse>, Status> {
        let req = r.into_inner();
        self.record("delete", selector_filter(req.points.as_ref()));
        self.with(&req.collection_name, |c| {
            for key in selected(c, req.points.as_ref())? {
                c.points.remove(&key);
            }
            Ok(ok_update())
        })
    }

    async fn set_payload(&self, r: Request<SetPayloadPoints>) -> Result<Response<PointsOperationResponse>, Status> {
        let req = r.into_inner();
        if req.key.is_some() {
            return Err(Status::unimplemented("nested payload keys are not supported by the stand-in"));
        }
        self.record("set_payload", selector_filter(req.points_selector.as_ref()));
        self.with(&req.collection_name, |c| {
            for key in selected(c, req.points_selector.as_ref())? {
                if let Some(p) = c.points.get_mut(&key) {
                    p.payload.extend(req.payload.clone());
                }
            }
            Ok(ok_update())
        })
    }

    async fn create_field_index(&self, r: Request<CreateFieldIndexCollection>) -> Result<Response<PointsOperationResponse>, Status> {
        let req = r.into_inner();
        self.with(&req.collection_name, |c| {
            c.indexes.insert(req.field_name, req.field_type.unwrap_or_default());
            Ok(ok_update())
        })
    }

    #[allow(deprecated)]
    async fn search(&self, r: Request<SearchPoints>) -> Result<Response<SearchResponse>, Status> {
        let req = r.into_inner();
        self.record("search", req.filter.as_ref());
        self.with(&req.collection_name, |c| {
            if req.vector.len() as u64 != c.size {
                return Err(Status::invalid_argument(format!("Wrong input: Vector dimension error: expected dim: {}, got {}", c.size, req.vector.len())));
            }
            let mut query = req.vector.clone();
            normalise(&mut query);
            let mut scored = Vec::new();
            for (key, p) in &c.points {
                if filter_matches(key, p, req.filter.as_ref())? {
                    let score: f32 = p.vector.iter().zip(&query).map(|(a, b)| a * b).sum();
                    if req.score_threshold.is_none_or(|t| score >= t) {
                        scored.push((key.clone(), score, p));
                    }
                }
            }
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let with_payload = req.with_payload.is_some_and(|w| matches!(w.selector_options, Some(with_payload_selector::SelectorOptions::Enable(true))));
            let result = scored
                .into_iter()
                .skip(req.offset.unwrap_or(0) as usize)
                .take(req.limit as usize)
                .map(|(key, score, p)| ScoredPoint {
                    id: Some(key_to_id(&key)),
                    payload: if with_payload { p.payload.clone() } else { HashMap::new() },
                    score,
                    version: 0,
                    ..Default::default()
                })
                .collect();
            Ok(Response::new(SearchResponse { result, time: 0.0, usage: None }))
        })
    }

    /// The Query API's nearest-neighbour query, on the dense vector (no
    /// `using`, or "") or on a sparse one by name; no prefetch, no fusion.
    async fn query(&self, r: Request<QueryPoints>) -> Result<Response<QueryResponse>, Status> {
        let req = r.into_inner();
        self.record("query", req.filter.as_ref());
        if !req.prefetch.is_empty() {
            return Err(Status::unimplemented("prefetch is not supported by the Qdrant stand-in"));
        }
        let input = match req.query.as_ref().and_then(|q| q.variant.as_ref()) {
            Some(query::Variant::Nearest(v)) => v.variant.clone(),
            _ => return Err(Status::unimplemented("the Qdrant stand-in answers nearest-neighbour queries only")),
        };
        let using = req.using.clone().unwrap_or_default();
        let legacy = self.state.lock().unwrap().legacy_vectors;
        self.with(&req.collection_name, |c| {
            let mut scored: Vec<(String, f32)> = Vec::new();
            match input {
                Some(vector_input::Variant::Dense(d)) if using.is_empty() => {
                    if d.data.len() as u64 != c.size {
                        return Err(Status::invalid_argument(format!("Wrong input: Vector dimension error: expected dim: {}, got {}", c.size, d.data.len())));
                    }
                    let mut query = d.data.clone();
                    normalise(&mut query);
                    for (key, p) in &c.points {
                        if filter_matches(key, p, req.filter.as_ref())? {
                            scored.push((key.clone(), p.vector.iter().zip(&query).map(|(a, b)| a * b).sum()));
                        }
                    }
                }
                Some(vector_input::Variant::Sparse(s)) => {
                    let Some(modifier) = c.sparse.get(&using) else {
                        return Err(Status::invalid_argument(format!("Wrong input: Not existing vector name error: {using}")));
                    };
                    let (dims, values) = checked_sparse(&s.indices, &s.values)?;
                    // The query's weights, times each dimension's IDF when the collection applies it.
                    let weights: Vec<f32> = dims
                        .iter()
                        .zip(&values)
                        .map(|(d, v)| if *modifier == Modifier::Idf as i32 { v * c.idf(&using, *d) } else { *v })
                        .collect();
                    for (key, p) in &c.points {
                        let Some((pd, pv)) = p.sparse.get(&using) else { continue };
                        // Only points sharing a dimension with the query score at all.
                        let mut score = 0f32;
                        let mut shared = false;
                        for (d, w) in dims.iter().zip(&weights) {
                            if let Ok(i) = pd.binary_search(d) {
                                score += w * pv[i];
                                shared = true;
                            }
                        }
                        if shared && filter_matches(key, p, req.filter.as_ref())? {
                            scored.push((key.clone(), score));
                        }
                    }
                }
                Some(vector_input::Variant::Dense(_)) => return Err(Status::invalid_argument(format!("Wrong input: vector {using} is not a dense vector of this collection"))),
                _ => return Err(Status::unimplemented("the Qdrant stand-in queries dense or sparse vectors only")),
            }
            scored.retain(|(_, s)| req.score_threshold.is_none_or(|t| *s >= t));
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let with_payload = req.with_payload.is_some_and(|w| matches!(w.selector_options, Some(with_payload_selector::SelectorOptions::Enable(true))));
            let result = scored
                .into_iter()
                .skip(req.offset.unwrap_or(0) as usize)
                .take(req.limit.unwrap_or(10) as usize)
                .map(|(key, score)| {
                    let p = &c.points[&key];
                    ScoredPoint {
                        id: Some(key_to_id(&key)),
                        payload: if with_payload { p.payload.clone() } else { HashMap::new() },
                        score,
                        version: 0,
                        vectors: vectors_output(p, req.with_vectors.as_ref(), legacy),
                        ..Default::default()
                    }
                })
                .collect();
            Ok(Response::new(QueryResponse { result, time: 0.0, usage: None }))
        })
    }

    unimplemented_calls! {
        get(GetPoints) -> GetResponse;
        update_vectors(UpdatePointVectors) -> PointsOperationResponse;
        delete_vectors(DeletePointVectors) -> PointsOperationResponse;
        overwrite_payload(SetPayloadPoints) -> PointsOperationResponse;
        delete_payload(DeletePayloadPoints) -> PointsOperationResponse;
        clear_payload(ClearPayloadPoints) -> PointsOperationResponse;
        delete_field_index(DeleteFieldIndexCollection) -> PointsOperationResponse;
        create_vector_name(CreateVectorNameRequest) -> PointsOperationResponse;
        delete_vector_name(DeleteVectorNameRequest) -> PointsOperationResponse;
        search_batch(SearchBatchPoints) -> SearchBatchResponse;
        search_groups(SearchPointGroups) -> SearchGroupsResponse;
        scroll(ScrollPoints) -> ScrollResponse;
        recommend(RecommendPoints) -> RecommendResponse;
        recommend_batch(RecommendBatchPoints) -> RecommendBatchResponse;
        recommend_groups(RecommendPointGroups) -> RecommendGroupsResponse;
        discover(DiscoverPoints) -> DiscoverResponse;
        discover_batch(DiscoverBatchPoints) -> DiscoverBatchResponse;
        count(CountPoints) -> CountResponse;
        update_batch(UpdateBatchPoints) -> UpdateBatchResponse;
        query_batch(QueryBatchPoints) -> QueryBatchResponse;
        query_groups(QueryPointGroups) -> QueryGroupsResponse;
        facet(FacetCounts) -> FacetResponse;
        search_matrix_pairs(SearchMatrixPoints) -> SearchMatrixPairsResponse;
        search_matrix_offsets(SearchMatrixPoints) -> SearchMatrixOffsetsResponse;
    }
}
