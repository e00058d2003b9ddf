//! The composition root: builds every backend from `Settings`, the agent, the
//! HTTP server and the job workers. The only place concrete backends are named.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use dadly_agent::agent::AgentSettings;
use dadly_agent::blob::LocalBlobs;
use dadly_agent::capsule::CapsuleKey;
use dadly_agent::jobs::{Housekeeping, WorkerSettings, spawn_housekeeping, spawn_prompts, spawn_workers};
use dadly_agent::metrics::Metrics;
use dadly_agent::models::{ChatModel, Embedder, OfflineModels, OpenAiModels, Transcriber};
use dadly_agent::blob::{BlobStore, S3Blobs};
use dadly_agent::store::{PostgresStore, SqliteStore, Store};
use dadly_agent::trace::{FileTraceSink, LangSmithSettings, LangSmithSink, TraceSink, Tracer};
use dadly_agent::vector::{EmbeddedIndex, QdrantIndex, VectorIndex};
use dadly_agent::{Agent, Backends};
use dadly_api::{AppState, Auth};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::settings::{BlobBackend, IndexBackend, ModelBackend, Settings, StoreBackend};

/// Token minting and checking as configured (secret, issuer, maximum lifetime).
pub fn auth(settings: &Settings) -> anyhow::Result<Auth> {
    let policy = dadly_api::auth::TokenPolicy { issuer: settings.jwt_issuer.clone(), max_lifetime: chrono::Duration::days(settings.token_max_days) };
    Ok(Auth::with_policy(&jwt_secret(settings)?, policy))
}

/// The master key of time capsules: `DADLY_CAPSULE_KEY`, or generated once
/// into `<data dir>/capsule_key` — never in the database it protects.
pub fn capsule_key(settings: &Settings) -> anyhow::Result<CapsuleKey> {
    if let Some(k) = &settings.capsule_key {
        return CapsuleKey::from_hex(&k.0).context("DADLY_CAPSULE_KEY must be 64 hex characters (32 bytes)");
    }
    if matches!(settings.store, StoreBackend::Postgres { .. }) {
        tracing::warn!("DADLY_CAPSULE_KEY is not set: capsules are sealed with a key in this instance's data dir; set it to the same key on every instance");
    }
    let hex_key = String::from_utf8(secret_file(settings, "capsule_key")?).context("reading <data dir>/capsule_key")?;
    CapsuleKey::from_hex(&hex_key).context("<data dir>/capsule_key is not 64 hex characters")
}

/// The JWT secret: configured, or generated once and kept in the data dir.
pub fn jwt_secret(settings: &Settings) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = &settings.jwt_secret {
        return Ok(s.0.as_bytes().to_vec());
    }
    secret_file(settings, "jwt_secret")
}

/// A random secret kept in `<data dir>/<name>` (created 0600 on first use).
fn secret_file(settings: &Settings, name: &str) -> anyhow::Result<Vec<u8>> {
    let path = settings.data_dir.join(name);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(existing.trim().as_bytes().to_vec());
    }
    std::fs::create_dir_all(&settings.data_dir).with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let secret: String = {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut f) => {
            std::io::Write::write_all(&mut f, secret.as_bytes())?;
            Ok(secret.into_bytes())
        }
        // Another process (the CLI beside the server) made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(std::fs::read_to_string(&path)?.trim().as_bytes().to_vec()),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// Applies the schema: SQLite in place; Postgres as the owner role
/// (`DADLY_DATABASE_OWNER_URL`, or `DATABASE_URL` when that is the owner).
/// Applies the schema, and says where. `DADLY_DATABASE_OWNER_URL` (Postgres
/// only) names the database by itself, so
/// `DADLY_DATABASE_OWNER_URL=postgres://owner@… dadly migrate` migrates it
/// without `DATABASE_URL` (which would otherwise default to the local SQLite
/// file); else the store `DATABASE_URL` names is migrated.
pub async fn migrate(settings: &Settings) -> anyhow::Result<&'static str> {
    match (&settings.store, settings.database_owner_url.as_deref()) {
        (_, Some(owner)) => {
            PostgresStore::migrate_as_owner(owner).await.context("migrating Postgres as the owner role (DADLY_DATABASE_OWNER_URL)")?;
            Ok("Postgres, as the owner role")
        }
        (StoreBackend::Postgres { url, .. }, None) => {
            PostgresStore::migrate_as_owner(url).await.context("migrating Postgres (DATABASE_URL; set DADLY_DATABASE_OWNER_URL to migrate as the owner role)")?;
            Ok("Postgres")
        }
        (StoreBackend::Sqlite(_), None) => open_store(settings).await.map(|_| "SQLite"),
    }
}

/// Opens the store named by `DATABASE_URL` (creating the data dir) and migrates it.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| format!("creating {}", settings.data_dir.display()))?;
    Ok(match &settings.store {
        StoreBackend::Sqlite(url) => Arc::new(SqliteStore::connect(url).await.context("opening the SQLite database (DATABASE_URL)")?),
        StoreBackend::Postgres { url, max_connections } => {
            if let Some(owner) = &settings.database_owner_url {
                PostgresStore::migrate_as_owner(owner).await.context("migrating Postgres as the owner role (DADLY_DATABASE_OWNER_URL)")?;
            }
            Arc::new(PostgresStore::connect(url, *max_connections).await.context("connecting to Postgres as the runtime role (DATABASE_URL)")?)
        }
    })
}

/// Everything wired, not yet serving.
pub struct App {
    pub agent: Arc<Agent>,
    pub state: AppState,
    pub settings: Settings,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = open_store(&settings).await?;
        let (blobs, local_blobs): (Arc<dyn BlobStore>, Option<Arc<LocalBlobs>>) = match &settings.blobs {
            BlobBackend::Local => {
                let media_secret = secret_file(&settings, "media_secret")?;
                let media = settings.data_dir.join("media");
                std::fs::create_dir_all(&media).with_context(|| format!("creating the media folder {}", media.display()))?;
                let local = Arc::new(LocalBlobs::new(media, media_secret, settings.public_url.clone()));
                (local.clone(), Some(local))
            }
            BlobBackend::S3(s3) => {
                let blobs = S3Blobs::new(s3).context("configuring S3 (S3_ENDPOINT, S3_BUCKET, R2_ACCESS_KEY, R2_SECRET_KEY)")?;
                blobs.check().await.with_context(|| format!("reaching bucket {} (S3_ENDPOINT / S3_BUCKET / credentials)", s3.bucket))?;
                (Arc::new(blobs), None)
            }
        };
        let (chat, embedder, transcriber): (Arc<dyn ChatModel>, Arc<dyn Embedder>, Arc<dyn Transcriber>) = match &settings.models {
            ModelBackend::Offline => {
                (Arc::new(OfflineModels::chat()), Arc::new(OfflineModels::embedder()), Arc::new(OfflineModels::transcriber()))
            }
            ModelBackend::OpenAi(o) => (
                if o.use_chat { Arc::new(OpenAiModels::chat(o)) } else { Arc::new(OfflineModels::chat()) },
                if o.use_embeddings { Arc::new(OpenAiModels::embedder(o)) } else { Arc::new(OfflineModels::embedder()) },
                if o.use_transcription { Arc::new(OpenAiModels::transcriber(o)) } else { Arc::new(OfflineModels::transcriber()) },
            ),
        };
        let index: Arc<dyn VectorIndex> = match &settings.index {
            IndexBackend::Embedded => Arc::new(EmbeddedIndex::with_cache_bytes(store.clone(), settings.index_cache_bytes)),
            IndexBackend::Qdrant { url, api_key, collection } => Arc::new(
                QdrantIndex::connect(url, api_key.as_ref().map(|k| k.0.as_str()), collection, embedder.dimensions())
                    .await
                    .with_context(|| format!("preparing Qdrant collection {collection} at {url} (QDRANT_URL)"))?,
            ),
        };
        let metrics = Arc::new(Metrics::default());
        let sink: Arc<dyn TraceSink> = match &settings.langsmith {
            Some(ls) => {
                let ls_settings = LangSmithSettings { backoff_base: ls.backoff, ..LangSmithSettings::new(&ls.endpoint, &ls.api_key.0) };
                Arc::new(LangSmithSink::start(ls_settings, metrics.clone()))
            }
            None => Arc::new(FileTraceSink::start(settings.data_dir.join("traces"))),
        };
        let tracer = Tracer::new(sink, &settings.trace_project, settings.trace_content);
        let mut agent_settings = AgentSettings::for_embedder(embedder.provider());
        match settings.min_score {
            Some(min) => agent_settings.min_score = min,
            // A real embedder's scores live in its own range (e5: 0.7–0.9 for anything): measure it.
            None => agent_settings.calibrate_min_score = embedder.provider() != "offline",
        }
        agent_settings.dense_weight = settings.dense_weight;
        agent_settings.lexical_weight = settings.lexical_weight;
        agent_settings.cross_language = settings.cross_language.unwrap_or(embedder.provider() != "offline");
        agent_settings.prices = settings.prices.clone();
        agent_settings.default_offset = settings.utc_offset;
        agent_settings.messages_per_minute = settings.messages_per_minute;
        agent_settings.embed_max_tokens = settings.embed_max_tokens;
        if let ModelBackend::OpenAi(o) = &settings.models
            && o.use_embeddings
        {
            agent_settings.embed_query_prefix = o.query_prefix.clone();
            agent_settings.embed_passage_prefix = o.passage_prefix.clone();
        }
        let mut channels: Vec<Arc<dyn dadly_agent::channel::Channel>> = Vec::new();
        if let Some(t) = &settings.telegram {
            channels.push(Arc::new(dadly_bot::TelegramChannel::new(t.bot(), t.max_file_bytes)));
        }
        let capsule_key = Some(capsule_key(&settings)?);
        let backends = Backends { store, index, blobs, chat, embedder, transcriber, tracer, metrics, channels, capsule_key };
        let agent = Arc::new(Agent::new(backends, agent_settings));
        let auth = Arc::new(auth(&settings)?);
        let state = AppState::new(agent.clone(), auth, local_blobs, settings.metrics_token.as_ref().map(|t| t.0.clone())).with_allowed_origins(settings.allowed_origins.clone());
        let state = AppState { ready_requires_models: settings.ready_requires_models, ..state };
        Ok(Self { agent, state, settings })
    }

    /// What the daily housekeeping keeps, as configured.
    pub fn housekeeping(&self) -> Housekeeping {
        Housekeeping {
            keep: chrono::Duration::days(self.settings.housekeeping_days),
            keep_traces: chrono::Duration::days(self.settings.trace_retention_days),
            keep_audio: self.settings.audio_retention_days.map(chrono::Duration::days),
            ..Housekeeping::default()
        }
    }

    fn worker_settings(&self) -> WorkerSettings {
        WorkerSettings {
            concurrency: self.settings.workers,
            poll: self.settings.job_poll,
            backoff_base: self.settings.job_backoff,
            job_timeout: self.settings.job_timeout,
            backoff_max: self.settings.job_backoff_max.max(self.settings.job_backoff),
            lease: self.settings.job_lease,
            embed_workers: self.settings.embed_workers,
            embed_batch: self.settings.embed_batch,
            enrich_batch: self.settings.enrich_batch,
        }
    }

    /// Binds, starts workers and serves until `shutdown` turns true; then
    /// stops taking requests, lets workers finish their job and flushes traces.
    pub async fn serve(self, shutdown: watch::Receiver<bool>) -> anyhow::Result<Running> {
        let listener = tokio::net::TcpListener::bind(self.settings.bind)
            .await
            .with_context(|| format!("binding {} (DADLY_BIND / PORT)", self.settings.bind))?;
        let addr = listener.local_addr()?;
        let mut workers = spawn_workers(self.agent.clone(), self.worker_settings(), shutdown.clone());
        let housekeeping = self.housekeeping();
        workers.push(spawn_housekeeping(self.agent.clone(), housekeeping, shutdown.clone()));
        if self.settings.telegram.is_some() {
            workers.push(spawn_prompts(self.agent.clone(), self.settings.prompt_poll, shutdown.clone()));
        }
        let mut channel_routes = axum::Router::new();
        let mut telegram_task = None;
        if let Some(t) = self.settings.telegram.clone() {
            let runtime = dadly_bot::TelegramBot::new(self.agent.clone(), t)
                .start(shutdown.clone())
                .await
                .context("starting the Telegram bot (TELEGRAM_BOT_TOKEN / TELEGRAM_API_URL / TELEGRAM_WEBHOOK_URL)")?;
            if let Some(webhook) = runtime.router {
                channel_routes = channel_routes.merge(webhook);
            }
            telegram_task = runtime.task;
        }
        // The webhook sits behind the same limits, timeout, tracing and metrics as the API.
        let router = dadly_api::router_with(self.state.clone(), channel_routes);
        let mut stop = shutdown.clone();
        let agent = self.agent.clone();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            for w in workers {
                let _ = w.await;
            }
            if let Some(t) = telegram_task {
                let _ = t.await;
            }
            // Send what traces are queued, but never hang shutdown on an unreachable LangSmith.
            if tokio::time::timeout(std::time::Duration::from_secs(15), agent.backends().tracer.sink().flush()).await.is_err() {
                tracing::warn!("gave up flushing traces at shutdown");
            }
            // SQLite: fold the write-ahead log into the database and truncate it, so a clean stop leaves no WAL behind.
            if let Err(e) = agent.store().compact().await {
                tracing::warn!(error = %e, "could not checkpoint the store at shutdown");
            }
            served.context("serving HTTP")
        });
        Ok(Running { addr, server })
    }
}

/// A serving app.
pub struct Running {
    pub addr: SocketAddr,
    pub server: JoinHandle<anyhow::Result<()>>,
}
