//! The `chat-server` binary: flags and environment, logging, the store (SQLite, or
//! PostgreSQL with `--store`), bind, run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chat_core::Manual;
use chat_core::SilentBot;
use chat_core::{
    Actor, Backend, Bot, Engine, EventBus, InProcessBus, LeastLoaded, Limits, NewAgent, Role,
    RoundRobin, Router, RuleBot, TenantSettings,
};
use chat_postgres::PostgresStore;
use chat_server::auth::signing_key;
use chat_server::{Config, HttpLimits, JwtConfig, auth, bind, shutdown_signal};
use chat_sqlite::{Options, SqliteStore, Synchronous};
use clap::{Parser, Subcommand, ValueEnum};

// The binary's own: the library never seeds data (embedders and templates bring theirs).
mod demo;

/// Customer-support chat server: HTTP API and WebSocket on one port, data in SQLite (or
/// PostgreSQL with --store).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "CHAT_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// SQLite database file (created if missing). Unused with --store.
    #[arg(long, env = "CHAT_DB", default_value = "chat.db")]
    db: PathBuf,
    /// Keep the data in PostgreSQL instead of the SQLite file --db:
    /// postgres://user:password@host:port/database (the schema is created or migrated on
    /// start). Servers sharing one database need the same --key-file.
    #[arg(long, env = "CHAT_STORE", hide_env_values = true)]
    store: Option<String>,
    /// Share live events with the other servers on the same store through NATS:
    /// nats://host:4222 (comma-separated for a cluster). The in-process bus otherwise.
    #[arg(long, env = "CHAT_BUS", hide_env_values = true)]
    bus: Option<String>,
    /// Subject prefix on --bus: servers sharing a store share it.
    #[arg(long, env = "CHAT_BUS_PREFIX", default_value = "default")]
    bus_prefix: String,
    /// Durability of each commit: `full` survives power loss, `normal` only crashes.
    #[arg(long, env = "CHAT_SYNCHRONOUS", value_enum, default_value = "full")]
    synchronous: SyncMode,
    /// HS256 signing key file; generated (mode 0600) beside the database if missing.
    #[arg(long, env = "CHAT_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Token algorithm. Asymmetric ones need --jwt-private-key and --jwt-public-key.
    #[arg(long, env = "CHAT_JWT_ALGORITHM", value_enum, default_value = "hs256")]
    jwt_algorithm: JwtAlgorithm,
    /// PEM private key for asymmetric tokens.
    #[arg(long, env = "CHAT_JWT_PRIVATE_KEY")]
    jwt_private_key: Option<PathBuf>,
    /// PEM public key for asymmetric tokens.
    #[arg(long, env = "CHAT_JWT_PUBLIC_KEY")]
    jwt_public_key: Option<PathBuf>,
    /// Access token lifetime in seconds.
    #[arg(long, env = "CHAT_JWT_TTL_SECS", default_value_t = 12 * 3600)]
    jwt_ttl_secs: u64,
    /// Browser origins allowed to call the API, comma-separated (e.g. http://localhost:3000);
    /// named origins may send credentials, `*` lets any other site call without them.
    #[arg(long, env = "CHAT_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Shared secret for identity verification of logged-in customers (HMAC-SHA256).
    #[arg(long, env = "CHAT_IDENTITY_SECRET", hide_env_values = true)]
    identity_secret: Option<String>,
    /// Name of the tenant created on first start.
    #[arg(long, env = "CHAT_TENANT_NAME", default_value = "Default")]
    tenant_name: String,
    /// Largest request body in bytes.
    #[arg(long, env = "CHAT_BODY_LIMIT", default_value_t = 1024 * 1024)]
    body_limit: usize,
    /// Longest message in characters.
    #[arg(long, env = "CHAT_MAX_MESSAGE_CHARS", default_value_t = 10_000)]
    max_message_chars: usize,
    /// Seconds a client may take to send request headers.
    #[arg(long, env = "CHAT_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a client may take to send a whole request body once its headers are in;
    /// later: 408 and the connection is closed.
    #[arg(long, env = "CHAT_BODY_TIMEOUT_SECS", default_value_t = 15)]
    body_timeout_secs: u64,
    /// Bytes per second a body still coming after --body-timeout-secs must keep up: each
    /// this many bytes received move the body's and the request's deadlines 1 s later
    /// (0 = fixed deadlines).
    #[arg(long, env = "CHAT_BODY_MIN_RATE", default_value_t = 32 * 1024)]
    body_min_rate: usize,
    /// Seconds a whole request may take, body and handling; later: 503
    /// `deadline_exceeded` and the connection is closed.
    #[arg(long, env = "CHAT_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    request_timeout_secs: u64,
    /// Seconds an idle keep-alive connection stays open; a client that stopped reading
    /// its answer is dropped after as long again with nothing sent.
    #[arg(long, env = "CHAT_IDLE_TIMEOUT_SECS", default_value_t = 75)]
    idle_timeout_secs: u64,
    /// Most open HTTP connections; more wait in the listen backlog.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Most open HTTP connections per client IP (0 = no cap); one more gets 429 and is
    /// closed.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    max_connections_per_ip: usize,
    /// Most open WebSockets (0 = no cap); one more upgrade gets 503.
    #[arg(long, env = "CHAT_MAX_WEBSOCKETS", default_value_t = 10_000)]
    max_websockets: usize,
    /// Most open WebSockets per client IP (0 = no cap); one more upgrade gets 429.
    #[arg(long, env = "CHAT_MAX_WEBSOCKETS_PER_IP", default_value_t = 100)]
    max_websockets_per_ip: usize,
    /// Most open WebSockets per token (0 = no cap); one more upgrade gets 429.
    #[arg(long, env = "CHAT_MAX_WEBSOCKETS_PER_TOKEN", default_value_t = 20)]
    max_websockets_per_token: usize,
    /// Requests per second per client IP (0 = unlimited).
    #[arg(long, env = "CHAT_RATE_PER_IP", default_value_t = 200.0)]
    rate_per_ip: f64,
    /// Requests per second per token (0 = unlimited).
    #[arg(long, env = "CHAT_RATE_PER_TOKEN", default_value_t = 50.0)]
    rate_per_token: f64,
    /// Requests that may arrive at once before the rates apply.
    #[arg(long, env = "CHAT_RATE_BURST", default_value_t = 400.0)]
    rate_burst: f64,
    /// Reverse proxies (addresses or CIDR ranges, comma-separated) whose `Forwarded` /
    /// `X-Forwarded-For` names the client; per-address limits then apply to the client,
    /// and the proxies' own connections are not capped per address. Nobody's by default.
    #[arg(long, env = "CHAT_TRUSTED_PROXIES", value_parser = parse_proxies)]
    trusted_proxies: Option<chat_server::proxies::TrustedProxies>,
    /// Failed logins of one name from one address before each next attempt must wait
    /// (1 s, then doubling; 0 = no throttle).
    #[arg(long, env = "CHAT_LOGIN_FREE_ATTEMPTS", default_value_t = 5)]
    login_free_attempts: u32,
    /// Failed logins from one address, any names, before waits begin (0 = no throttle).
    #[arg(
        long,
        env = "CHAT_LOGIN_FREE_ATTEMPTS_PER_ADDRESS",
        default_value_t = 30
    )]
    login_free_attempts_per_address: u32,
    /// The longest wait between login attempts, in seconds.
    #[arg(long, env = "CHAT_LOGIN_MAX_WAIT_SECS", default_value_t = 900)]
    login_max_wait_secs: u64,
    /// The bearer token a Prometheus scraper sends for `/metrics` (16 characters or
    /// more); without it, only admins' tokens read it.
    #[arg(long, env = "CHAT_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Seed demo staff and conversations (password: demo-password).
    #[arg(long, env = "CHAT_DEMO")]
    demo: bool,
    /// Create this admin at start-up if no staff member has the e-mail (with --admin-password).
    #[arg(long, env = "CHAT_ADMIN_EMAIL")]
    admin_email: Option<String>,
    /// Password for --admin-email.
    #[arg(long, env = "CHAT_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// How queued conversations reach agents.
    #[arg(long, env = "CHAT_ROUTER", value_enum, default_value = "least-loaded")]
    router: RouterKind,
    /// Who answers first in bot mode.
    #[arg(long, env = "CHAT_BOT", value_enum, default_value = "rule")]
    bot: BotKind,
    /// JSON rules for the rule bot (intents with keywords or regular expressions,
    /// handoff phrases, fallback); the built-in rules otherwise.
    #[arg(long, env = "CHAT_BOT_RULES")]
    bot_rules: Option<PathBuf>,
    /// OpenAI-compatible base URL for `--bot llm` (e.g. http://127.0.0.1:11434/v1).
    #[arg(long, env = "CHAT_LLM_BASE_URL")]
    llm_base_url: Option<String>,
    /// Model for `--bot llm`.
    #[arg(long, env = "CHAT_LLM_MODEL", default_value = "gpt-4o-mini")]
    llm_model: String,
    /// Name of the environment variable holding the LLM API key (the key itself never
    /// goes on the command line).
    #[arg(long, env = "CHAT_LLM_API_KEY_ENV", default_value = "OPENAI_API_KEY")]
    llm_api_key_env: String,
    /// System prompt for `--bot llm`.
    #[arg(long, env = "CHAT_LLM_SYSTEM_PROMPT")]
    llm_system_prompt: Option<String>,
    /// URL that `--bot webhook` POSTs signed events to.
    #[arg(long, env = "CHAT_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// Shared secret for webhook signatures.
    #[arg(long, env = "CHAT_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Seconds between runs of the tenants' timers (requeue, inactivity close).
    #[arg(long, env = "CHAT_TIMER_INTERVAL_SECS", default_value_t = 15)]
    timer_interval_secs: u64,
    /// Log format.
    #[arg(long, env = "CHAT_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Staff administration.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
}

#[derive(Debug, Subcommand)]
enum AdminAction {
    /// Create an admin in the default tenant.
    Create {
        /// Login e-mail.
        #[arg(long)]
        email: String,
        /// Password (10 characters or more).
        #[arg(long, env = "CHAT_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        /// Display name.
        #[arg(long, default_value = "Admin")]
        name: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RouterKind {
    LeastLoaded,
    RoundRobin,
    Manual,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BotKind {
    Rule,
    Llm,
    Webhook,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SyncMode {
    Full,
    Normal,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum JwtAlgorithm {
    Hs256,
    Rs256,
    Es256,
    Eddsa,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match cli.log_format {
        // Logs go to stderr; stdout is for command output (`admin create`).
        LogFormat::Text => tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init(),
    }

    let (store, store_name) = open_store(&cli).await?;
    let limits = Limits {
        max_message_chars: cli.max_message_chars,
        ..Limits::default()
    };
    let bus: Arc<dyn EventBus> = match &cli.bus {
        // The URL may hold a password: errors name the bus, never the URL.
        Some(url) => Arc::new(
            chat_nats::NatsBus::connect(url, chat_nats::Options::default().prefix(&cli.bus_prefix))
                .await
                .context("connecting the NATS bus (--bus)")?,
        ),
        None => Arc::new(InProcessBus::default()),
    };
    let router: Arc<dyn Router> = match cli.router {
        RouterKind::LeastLoaded => Arc::new(LeastLoaded),
        RouterKind::RoundRobin => Arc::new(RoundRobin::default()),
        RouterKind::Manual => Arc::new(Manual),
    };
    let bot = bot(&cli, bus.clone())?;
    let engine = Engine::builder_with_backend(store)
        .passwords(Arc::new(chat_server::auth::Argon2Passwords))
        .limits(limits)
        .bus(bus)
        .router(router)
        .bot(bot)
        .build();
    let tenant = match engine.tenants().await?.first() {
        Some(t) => t.id,
        None => {
            engine
                .create_tenant(&cli.tenant_name, TenantSettings::default())
                .await?
                .id
        }
    };
    let system = Actor::System { tenant };

    if let Some(Command::Admin {
        action:
            AdminAction::Create {
                email,
                password,
                name,
            },
    }) = &cli.command
    {
        create_admin(&engine, &system, name, email, password).await?;
        println!("admin {email} created");
        return Ok(());
    }
    if let (Some(email), Some(password)) = (&cli.admin_email, &cli.admin_password)
        && engine.agent_by_email(&system, email).await?.is_none()
    {
        create_admin(&engine, &system, "Admin", email, password).await?;
        tracing::info!(%email, "bootstrap admin created");
    }
    if cli.demo {
        let staff = demo::seed(&engine, tenant).await?;
        if !staff.is_empty() {
            tracing::info!(?staff, password = demo::DEMO_PASSWORD, "demo data seeded");
        }
    }

    let mut config = Config::new(b"replaced below");
    config.jwt = jwt_config(&cli)?;
    config.default_tenant = Some(tenant);
    config.cors_origins = cli
        .cors_origins
        .iter()
        .map(|o| o.trim().trim_end_matches('/').to_owned())
        .filter(|o| !o.is_empty())
        .collect();
    config.identity_secret = cli.identity_secret.as_ref().map(|s| s.as_bytes().to_vec());
    config.timer_interval = Duration::from_secs(cli.timer_interval_secs.max(1));
    config.limits = HttpLimits {
        body_bytes: cli.body_limit,
        header_read_timeout: Duration::from_secs(cli.header_timeout_secs),
        body_read_timeout: Duration::from_secs(cli.body_timeout_secs.max(1)),
        body_min_rate: cli.body_min_rate,
        request_timeout: Duration::from_secs(cli.request_timeout_secs.max(1)),
        keep_alive_idle: Duration::from_secs(cli.idle_timeout_secs.max(1)),
        max_connections: cli.max_connections,
        max_connections_per_ip: cli.max_connections_per_ip,
        max_websockets: cli.max_websockets,
        max_websockets_per_ip: cli.max_websockets_per_ip,
        max_websockets_per_token: cli.max_websockets_per_token,
        per_ip_rps: cli.rate_per_ip,
        per_token_rps: cli.rate_per_token,
        burst: cli.rate_burst,
        login: chat_server::throttle::LoginLimits {
            free_per_name: cli.login_free_attempts,
            free_per_address: cli.login_free_attempts_per_address,
            max_wait: Duration::from_secs(cli.login_max_wait_secs.max(1)),
            ..Default::default()
        },
        ..HttpLimits::default()
    };
    config.trusted_proxies = cli.trusted_proxies.clone().unwrap_or_default();
    config.metrics_token = cli
        .metrics_token
        .as_deref()
        .map(chat_server::MetricsToken::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--metrics-token: {e}"))?;

    // A crash may have left visitors' messages without the bot's answer: answer them
    // beside serving, so the listener comes up at once (a turn run twice answers once).
    let resuming = engine.clone();
    tokio::spawn(async move {
        match resuming.resume_bot_turns().await {
            Ok(0) => {}
            Ok(turns) => tracing::info!(turns, "bot turns left by the last run answered"),
            Err(e) => tracing::error!(error = %e, "resuming bot turns failed"),
        }
    });

    let listener = bind(cli.listen)?;
    tracing::info!(address = %listener.local_addr()?, store = %store_name, bus = if cli.bus.is_some() { "nats" } else { "in-process" }, "chat-server listening");
    chat_server::run(listener, engine.clone(), config, shutdown_signal()).await?;
    // Dropping the last engine handle lets the store's writer finish what is queued.
    drop(engine);
    tracing::info!("stopped");
    Ok(())
}

/// The store chosen by flags, and how the log names it (never with a password).
async fn open_store(cli: &Cli) -> anyhow::Result<(Arc<dyn Backend>, String)> {
    if let Some(url) = &cli.store {
        anyhow::ensure!(
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "--store takes a postgres:// URL (the SQLite file is chosen with --db)"
        );
        // The URL may hold a password: errors name the store, never the URL.
        let store = PostgresStore::connect(url)
            .await
            .context("opening the PostgreSQL store (--store)")?;
        return Ok((Arc::new(store), "postgres".to_owned()));
    }
    let synchronous = match cli.synchronous {
        SyncMode::Full => Synchronous::Full,
        SyncMode::Normal => Synchronous::Normal,
    };
    let store = SqliteStore::open_with(&cli.db, Options::default().synchronous(synchronous))
        .with_context(|| format!("opening the database {}", cli.db.display()))?;
    Ok((Arc::new(store), format!("sqlite:{}", cli.db.display())))
}

/// The bot chosen by flags.
fn bot(cli: &Cli, bus: Arc<dyn EventBus>) -> anyhow::Result<Arc<dyn Bot>> {
    Ok(match cli.bot {
        BotKind::Rule => match &cli.bot_rules {
            Some(path) => {
                let json = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Arc::new(
                    RuleBot::from_json(&json)
                        .with_context(|| format!("rules in {}", path.display()))?,
                )
            }
            None => Arc::new(RuleBot::default()),
        },
        BotKind::Llm => {
            let base = cli
                .llm_base_url
                .clone()
                .context("--bot llm needs --llm-base-url")?;
            let mut config = chat_bots::LlmConfig::new(base, cli.llm_model.clone());
            // Local servers (Ollama, llama.cpp) need no key: only name the variable if set.
            if std::env::var_os(&cli.llm_api_key_env).is_some() {
                config.api_key_env = Some(cli.llm_api_key_env.clone());
            }
            if let Some(prompt) = &cli.llm_system_prompt {
                config.system_prompt = prompt.clone();
            }
            config.stream = true;
            Arc::new(
                chat_bots::LlmBot::new(config)?
                    .on_delta(chat_server::realtime::relay_bot_deltas(bus)),
            )
        }
        BotKind::Webhook => {
            let url = cli
                .webhook_url
                .clone()
                .context("--bot webhook needs --webhook-url")?;
            let secret = cli
                .webhook_secret
                .clone()
                .context("--bot webhook needs --webhook-secret")?;
            Arc::new(chat_bots::WebhookBot::new(
                chat_bots::WebhookConfig::new(url),
                secret.into_bytes(),
            )?)
        }
        BotKind::None => Arc::new(SilentBot),
    })
}

async fn create_admin(
    engine: &Engine,
    system: &Actor,
    name: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        password.chars().count() >= 10,
        "the password needs 10 characters or more"
    );
    let input = NewAgent {
        name: name.into(),
        email: email.into(),
        role: Role::Admin,
        capacity: None,
        departments: vec![],
    };
    let agent = engine
        .create_agent(system, input)
        .await
        .with_context(|| format!("creating {email}"))?;
    engine
        .set_password(system, agent.id, &auth::hash_password(password)?)
        .await?;
    Ok(())
}

/// A file next to the database (the signing key's default place).
fn beside(db: &std::path::Path, name: &str) -> PathBuf {
    db.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
        .join(name)
}

fn jwt_config(cli: &Cli) -> anyhow::Result<JwtConfig> {
    let mut jwt = match cli.jwt_algorithm {
        JwtAlgorithm::Hs256 => {
            let path = cli
                .key_file
                .clone()
                .unwrap_or_else(|| beside(&cli.db, "chat-signing.key"));
            JwtConfig::hs256(&signing_key(&path)?)
        }
        other => {
            let algorithm = match other {
                JwtAlgorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
                JwtAlgorithm::Es256 => jsonwebtoken::Algorithm::ES256,
                _ => jsonwebtoken::Algorithm::EdDSA,
            };
            let read = |p: &Option<PathBuf>, what: &str| -> anyhow::Result<Vec<u8>> {
                let p = p
                    .as_ref()
                    .with_context(|| format!("--jwt-{what}-key is required for {algorithm:?}"))?;
                std::fs::read(p).with_context(|| format!("reading {}", p.display()))
            };
            JwtConfig::asymmetric(
                algorithm,
                &read(&cli.jwt_private_key, "private")?,
                &read(&cli.jwt_public_key, "public")?,
            )?
        }
    };
    jwt.ttl = Duration::from_secs(cli.jwt_ttl_secs.max(60));
    Ok(jwt)
}

/// The list of `--trusted-proxies`.
fn parse_proxies(item: &str) -> Result<chat_server::proxies::TrustedProxies, String> {
    item.parse()
}
