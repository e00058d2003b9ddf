//! `dadly`: the family-journal assistant. `dadly` (or `dadly serve`) runs the
//! server; other subcommands manage families and tokens.

use clap::{Parser, Subcommand};
use dadly::app::App;
use dadly::settings::{ModelBackend, Settings};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "dadly", version, about = "A family journal you talk to")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, web chat and job workers (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage families.
    Family {
        #[command(subcommand)]
        command: FamilyCommand,
    },
    /// Queue re-embedding of every entry (after changing the embedding model).
    Reindex,
    /// Write a family's data (JSON, with media links) to a file or stdout.
    Export {
        #[arg(long)]
        family: String,
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Restore an archive (from `dadly export --out FILE.zip`) as a new family.
    Import {
        file: std::path::PathBuf,
        /// The restored family's name.
        #[arg(long, default_value = "Imported family")]
        name: String,
    },
    /// Show recent traces (from the local JSONL files) as trees.
    Traces {
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Mint a bearer token for a parent, or revoke all of theirs.
    Token {
        #[arg(long, required_unless_present = "revoke")]
        user: Option<String>,
        /// Refuse every token this user holds now (a leaked token stops working).
        #[arg(long, value_name = "USER", conflicts_with = "user")]
        revoke: Option<String>,
        #[arg(long, default_value_t = dadly::cli::TOKEN_DAYS)]
        days: i64,
    },
}

#[derive(Subcommand)]
enum FamilyCommand {
    /// Create a family with a parent and children; prints a token for the parent.
    Create {
        name: String,
        #[arg(long)]
        parent: String,
        /// NAME[:BIRTH_DATE][:ALIAS,ALIAS], e.g. Minji:2018-03-14:민지 (repeatable).
        #[arg(long = "child")]
        children: Vec<String>,
        /// Print {"family_id","user_id","token"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time code that links a parent's Telegram account.
    Invite {
        #[arg(long)]
        user: String,
    },
}

fn init_logs(json: bool, sentry: bool) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        let project = std::env::var("GOOGLE_CLOUD_PROJECT").ok().filter(|p| !p.is_empty());
        fmt.with_ansi(false).event_format(dadly::logs::GcpJson { project }).boxed()
    } else {
        fmt.boxed()
    };
    // With Sentry: error events go to it as issues, info and warnings as their breadcrumbs.
    use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
    use tracing_subscriber::filter::LevelFilter;
    let errors = sentry.then(|| ErrorLayer::new().with_filter(LevelFilter::ERROR));
    let breadcrumbs = sentry.then(|| BreadcrumbLayer::new().with_filter(LevelFilter::INFO));
    tracing_subscriber::registry().with(filter).with(fmt).with(errors).with(breadcrumbs).init();
}

/// Starts Sentry when `SENTRY_DSN` is set (release and `SENTRY_ENVIRONMENT`
/// attached; no personal data: no IPs, headers or bodies).
fn init_sentry(settings: &Settings) -> Option<sentry::ClientInitGuard> {
    let dsn = settings.sentry_dsn.as_ref()?;
    let mut options = sentry::ClientOptions::new().dsn(&dsn.0).send_default_pii(false);
    if let Some(release) = sentry::release_name!() {
        options = options.release(release);
    }
    if let Some(env) = std::env::var("SENTRY_ENVIRONMENT").ok().filter(|e| !e.is_empty()) {
        options = options.environment(env);
    }
    Some(sentry::init(options))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // sqlx, tonic and rust-s3 enable rustls' ring backend and reqwest 0.13 its
    // aws-lc-rs one; with both compiled in, rustls cannot choose a process
    // default itself, so any client built without an explicit provider would panic.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dadly: configuration error: {e}");
            std::process::exit(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    if !matches!(command, Command::Migrate)
        && let Some(problem) = settings.runtime_store_problem()
    {
        eprintln!("dadly: configuration error: {problem}");
        std::process::exit(2);
    }
    match command {
        Command::Serve => {
            let _sentry = init_sentry(&settings);
            init_logs(settings.json_logs, _sentry.is_some());
            serve(settings).await
        }
        Command::Migrate => {
            let migrated = dadly::app::migrate(&settings).await?;
            println!("migrations applied to {migrated}");
            Ok(())
        }
        Command::Family { command: FamilyCommand::Create { name, parent, children, json } } => {
            dadly::cli::family_create(&settings, &name, &parent, &children, json).await
        }
        Command::Family { command: FamilyCommand::Invite { user } } => dadly::cli::invite(&settings, &user).await,
        Command::Token { revoke: Some(user), .. } => dadly::cli::revoke(&settings, &user).await,
        Command::Token { user, days, .. } => dadly::cli::token(&settings, user.as_deref().unwrap_or_default(), days).await,
        Command::Traces { limit } => dadly::cli::traces(&settings, limit),
        Command::Reindex => dadly::cli::reindex(&settings).await,
        Command::Export { family, out } => dadly::cli::export(&settings, &family, out.as_deref()).await,
        Command::Import { file, name } => dadly::cli::import(&settings, &file, &name).await,
    }
}

/// Which backend serves each port, without any URL or secret.
fn backend_names(settings: &Settings) -> String {
    use dadly::settings::{BlobBackend, IndexBackend, StoreBackend};
    let store = match settings.store {
        StoreBackend::Sqlite(_) => "SQLite",
        StoreBackend::Postgres { .. } => "Postgres",
    };
    let index = match settings.index {
        IndexBackend::Embedded => "embedded vector index",
        IndexBackend::Qdrant { .. } => "Qdrant",
    };
    let blobs = match settings.blobs {
        BlobBackend::Local => "local media folder",
        BlobBackend::S3(_) => "S3 media",
    };
    let traces = if settings.langsmith.is_some() { "LangSmith traces" } else { "trace files" };
    format!("{store}, {index}, {blobs}, {traces}")
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let models = match &settings.models {
        ModelBackend::Offline => "offline fallback models (set OPENAI_API_KEY or OPENAI_BASE_URL for real ones)".to_string(),
        ModelBackend::OpenAi(o) => {
            let at = |own: &Option<String>| own.clone().unwrap_or_else(|| o.base_url.clone());
            let part = |on: bool, what: &str, model: &str, own: &Option<String>| if on { format!("{what} {model} at {}", at(own)) } else { format!("{what} offline") };
            [part(o.use_chat, "chat", &o.chat_model, &o.chat_base_url), part(o.use_embeddings, "embeddings", &o.embedding_model, &o.embeddings_base_url), part(o.use_transcription, "transcription", &o.transcription_model, &o.transcription_base_url)].join("; ")
        }
    };
    let data_dir = format!("{} ({})", settings.data_dir.display(), backend_names(&settings));
    if matches!(settings.blobs, dadly::settings::BlobBackend::Local) && settings.bind.ip().is_unspecified() && std::env::var("DADLY_PUBLIC_URL").is_err() {
        tracing::warn!("media links will point at {}; set DADLY_PUBLIC_URL to the address clients use", settings.public_url);
    }
    let app = App::build(settings).await?;
    // The app's own store: opening another would connect (and check the schema) twice.
    let local_token = dadly::cli::local_family_token(&app.settings, app.agent.store()).await?;
    let (stop, stopped) = watch::channel(false);
    let running = app.serve(stopped).await?;
    eprintln!("\nDadly is listening on http://{}", running.addr);
    eprintln!("  data:   {data_dir}");
    eprintln!("  models: {models}");
    match local_token {
        Some((token, link)) => {
            eprintln!("  open the app: {link}\n  (the link signs you in once, within 15 minutes; or paste the token below)");
            eprintln!("  your local family is ready; its parent's token (valid {} days):\n\n    export TOKEN={token}\n", dadly::cli::TOKEN_DAYS);
            eprintln!("  add a child:  curl -s http://{}/v1/members -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' -d '{{\"name\":\"Minji\",\"aliases\":[\"민지\"]}}'", running.addr);
        }
        None => eprintln!("  get a token:  dadly family create \"My family\" --parent Me --child Minji:2018-03-14:민지"),
    }
    eprintln!("  chat:         curl -s http://{}/v1/chat -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' -d '{{\"message\":\"Minji lost her first tooth today\"}}'\n", running.addr);
    let signal = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    };
    signal.await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    running.server.await??;
    Ok(())
}
