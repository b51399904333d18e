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
use chat_server::{Config, JwtConfig, auth, bind, shutdown_signal};
use chat_sqlite::{Options, SqliteStore, Synchronous};
use clap::{Parser, Subcommand, ValueEnum};

// The binary's own: the library never seeds data (embedders and templates bring theirs).
mod demo;
mod migrate;

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
    /// CA certificates (PEM) that --store's server certificate must chain to, instead of
    /// the system's roots; with the URL's `sslmode=require` it turns the check on
    /// (`verify-ca`). `sslmode=verify-full` also checks the host name.
    #[arg(long, env = "CHAT_PG_CA")]
    pg_ca: Option<PathBuf>,
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
    /// Page cache of each SQLite reader connection (there are 4), in MiB, for the
    /// database and again for the search file. Readers drop their cache whenever another
    /// connection has committed, so on a busy desk they hold far less than their cap.
    #[arg(long, env = "CHAT_CACHE_MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65536))]
    cache_mib: u64,
    /// Page cache of the SQLite writer, in MiB, and of the search indexer's search file.
    /// These two keep their pages (nobody else writes their files), so each fills with the
    /// pages it touches until this cap: memory grows by up to twice this with the data.
    #[arg(long, env = "CHAT_WRITER_CACHE_MIB", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=65536))]
    writer_cache_mib: u64,
    /// Limit on SQLite's whole heap in this process, in MiB (0: none). Past it, a page
    /// cache that needs a page takes another connection's least recently used one instead
    /// of allocating, so all the caches together stay near this. Default: the sum of the
    /// caches' caps (10 × --cache-mib + 2 × --writer-cache-mib: 656 MiB), which the heap
    /// otherwise passes as the database grows (statements, sorts and temporary tables
    /// come on top of the caches); lower bounds memory more tightly at the cost of cache
    /// hits. Unused with --store.
    #[arg(long, env = "CHAT_SQLITE_HEAP_LIMIT_MIB", value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    sqlite_heap_limit_mib: Option<u64>,
    /// Threads for blocking work beside the async workers: SQLite reads (each read run in
    /// place lends its worker's other tasks to one of them; the 4 readers bound how many
    /// at once, and as many more reads wait for a reader here), file uploads and
    /// downloads, thumbnails, name lookups. Past it, such work waits for a thread rather
    /// than starting one, so the process's threads stay bounded however loaded the
    /// machine is. The default is twice what the reads alone can use; at least 4 (an
    /// export reads on one thread while it writes on another).
    #[arg(long, env = "CHAT_MAX_BLOCKING_THREADS", default_value_t = chat_server::runtime::DEFAULT_MAX_BLOCKING_THREADS as u64, value_parser = clap::value_parser!(u64).range(4..=4096))]
    max_blocking_threads: u64,
    /// Conversations each tenant's realtime follower keeps in memory (its log feed and the
    /// cache sockets read from, about 1.3 KB each), and a socket's replay at most; past it,
    /// they forget them all and read misses from the store. Memory grows with the
    /// conversations seen until this cap.
    #[arg(long, env = "CHAT_CONVERSATION_CACHE", default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    conversation_cache: u64,
    /// Conversations the SQLite writer keeps in memory so that posting a message does not
    /// read back the row it wrote for the previous one (0 turns it off). Unused with
    /// --store.
    #[arg(long, env = "CHAT_WRITER_CONVERSATION_CACHE", default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    writer_conversation_cache: u64,
    /// Folder for uploaded files (created 0700 if missing; each file 0600). Default:
    /// `uploads/` beside the database.
    #[arg(long, env = "CHAT_UPLOADS_DIR")]
    uploads_dir: Option<PathBuf>,
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
    /// Shared secret for identity verification of logged-in customers (HMAC-SHA256).
    #[arg(long, env = "CHAT_IDENTITY_SECRET", hide_env_values = true)]
    identity_secret: Option<String>,
    /// Name of the tenant created on first start.
    #[arg(long, env = "CHAT_TENANT_NAME", default_value = "Default")]
    tenant_name: String,
    /// Longest message in characters.
    #[arg(long, env = "CHAT_MAX_MESSAGE_CHARS", default_value_t = 10_000)]
    max_message_chars: usize,
    /// Limits, timeouts, proxies, login throttling, CORS and the metrics token: the
    /// flags every server built on chat-server takes (the templates too).
    #[command(flatten)]
    network: chat_server::cli::NetworkArgs,
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
    /// PEM file of extra CA certificates the LLM and webhook bots trust for https://
    /// services, beside the bundled Mozilla roots and the system's (a private CA).
    #[arg(long, env = "CHAT_BOT_CA_FILE")]
    bot_ca_file: Option<PathBuf>,
    /// Seconds between runs of the tenants' timers (requeue, inactivity close, event
    /// log compaction).
    #[arg(long, env = "CHAT_TIMER_INTERVAL_SECS", default_value_t = 15)]
    timer_interval_secs: u64,
    /// Event log retention: the newest events of each tenant always kept. An event goes
    /// once it is beyond this count and older than --event-retention-days (and no pending
    /// webhook delivery needs it); a client whose cursor is older is told to resync. Keep
    /// it at least the replay window (50,000).
    #[arg(long, env = "CHAT_EVENT_RETENTION_EVENTS", default_value_t = 200_000)]
    event_retention_events: u64,
    /// Event log retention: events younger than this many days are always kept; 0 keeps
    /// the whole log (no compaction).
    #[arg(long, env = "CHAT_EVENT_RETENTION_DAYS", default_value_t = 30)]
    event_retention_days: u32,
    /// Seconds an agent's presence outlives this server without renewal: with several
    /// servers, one that dies takes its connected agents offline this long after it
    /// stopped (at the next timer run of a server still up). Renewed every third of it.
    #[arg(long, env = "CHAT_PRESENCE_LEASE_SECS", default_value_t = 30)]
    presence_lease_secs: u64,
    /// Let event webhooks reach loopback, private and link-local addresses. Off by
    /// default: an admin's webhook URL must not reach this server's own network (cloud
    /// metadata, the database); turn it on for receivers on this machine or LAN (tests).
    #[arg(long, env = "CHAT_WEBHOOKS_ALLOW_PRIVATE")]
    webhooks_allow_private: bool,
    /// Seconds an event-webhook endpoint has to answer a delivery.
    #[arg(long, env = "CHAT_WEBHOOKS_TIMEOUT_SECS", default_value_t = 10)]
    webhooks_timeout_secs: u64,
    /// Milliseconds before the first retry of a failed webhook delivery; doubled after each
    /// next failure up to an hour, with jitter, for up to a day.
    #[arg(long, env = "CHAT_WEBHOOKS_RETRY_BASE_MS", default_value_t = 10_000)]
    webhooks_retry_base_ms: u64,
    /// Seconds of nothing but failures after which an event webhook is paused (admins get
    /// a `webhook_paused` event and resume it with PATCH state=active).
    #[arg(long, env = "CHAT_WEBHOOKS_PAUSE_AFTER_SECS", default_value_t = 86_400)]
    webhooks_pause_after_secs: u64,
    /// Seconds a Telegram inbox in polling mode lets `getUpdates` wait for an update (its
    /// `timeout`; Telegram allows up to 50). An idle bot costs one request per this long.
    #[arg(long, env = "CHAT_TELEGRAM_LONG_POLL_SECS", default_value_t = 25)]
    telegram_long_poll_secs: u64,
    /// The SMTP relay e-mail is sent through (transcripts, replies to e-mail customers), as
    /// a URL: `smtps://user:password@host:465` (TLS from the start),
    /// `smtp://user:password@host:587?tls=required` (STARTTLS) or `smtp://127.0.0.1:25`
    /// (plain, a local MTA). It holds the relay's password: never logged, never answered.
    /// Without it no e-mail is sent.
    #[arg(long, env = "CHAT_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender of the server's e-mail, `Support <support@example.com>` or a bare
    /// address; its domain names the Message-IDs replies are threaded by. Required with
    /// --smtp-url.
    #[arg(long, env = "CHAT_MAIL_FROM")]
    mail_from: Option<String>,
    /// Seconds within which a customer may have one conversation's transcript mailed once.
    #[arg(
        long,
        env = "CHAT_MAIL_TRANSCRIPT_WINDOW_SECS",
        default_value_t = 3_600
    )]
    mail_transcript_window_secs: u64,
    /// Milliseconds before the first retry of a mail the relay did not take (a 4xx answer,
    /// no connection); doubled after each next failure up to an hour, for up to a day. A
    /// 5xx answer fails the mail at once.
    #[arg(long, env = "CHAT_MAIL_RETRY_BASE_MS", default_value_t = 30_000)]
    mail_retry_base_ms: u64,
    /// Most bytes of files attached to one reply mail, together (before base64 adds a
    /// third); files past it are named in the mail's text instead. The default, 10 MiB,
    /// stays under the 20-25 MB most relays and mailboxes take.
    #[arg(long, env = "CHAT_MAIL_ATTACHMENT_BYTES", default_value_t = chat_server::mail::DEFAULT_ATTACHMENT_BYTES)]
    mail_attachment_bytes: u64,
    #[command(flatten)]
    tenant_defaults: TenantDefaults,
    /// Log format.
    #[arg(long, env = "CHAT_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Settings of the tenant created on first start; afterwards admins change them with
/// `PATCH /v1/settings` (these flags never overwrite a stored tenant).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "New tenant settings")]
struct TenantDefaults {
    /// Welcome message the bot posts when a conversation opens.
    #[arg(long, env = "CHAT_WELCOME_MESSAGE")]
    welcome_message: Option<String>,
    /// Whether new conversations start with the bot (`false`: straight to the queue).
    #[arg(long, env = "CHAT_BOT_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    bot_enabled: bool,
    /// Whether a customer writing to a closed conversation reopens it.
    #[arg(long, env = "CHAT_ALLOW_REOPEN", default_value_t = true, action = clap::ArgAction::Set)]
    allow_reopen: bool,
    /// Seconds after posting during which a sender may edit a message.
    #[arg(long, env = "CHAT_EDIT_WINDOW_SECS", default_value_t = 900)]
    edit_window_secs: u32,
    /// Concurrent conversations per agent unless the agent overrides it.
    #[arg(long, env = "CHAT_DEFAULT_CAPACITY", default_value_t = 5)]
    default_capacity: u32,
    /// Whether queued conversations are routed to agents automatically.
    #[arg(long, env = "CHAT_AUTO_ASSIGN", default_value_t = true, action = clap::ArgAction::Set)]
    auto_assign: bool,
    /// Requeue a conversation whose agent has not answered in this many seconds (off if absent).
    #[arg(long, env = "CHAT_REQUEUE_AFTER_SECS")]
    requeue_after_secs: Option<u32>,
    /// Close a conversation after this many seconds without a customer message (off if absent).
    #[arg(long, env = "CHAT_CLOSE_INACTIVE_AFTER_SECS")]
    close_inactive_after_secs: Option<u32>,
    /// Typical seconds an agent spends on a conversation, for queue wait estimates.
    #[arg(long, env = "CHAT_AVERAGE_HANDLE_SECS", default_value_t = 300)]
    average_handle_secs: u32,
}

impl TenantDefaults {
    /// The settings, validated by the engine's own rule so a bad flag stops the start with
    /// the setting's name instead of storing a tenant the API would refuse.
    fn settings(&self) -> anyhow::Result<TenantSettings> {
        // The rest stays at the engine's defaults as settings without a flag are added.
        #[allow(clippy::needless_update)]
        let settings = TenantSettings {
            welcome_message: self.welcome_message.clone(),
            bot_enabled: self.bot_enabled,
            allow_reopen: self.allow_reopen,
            edit_window_secs: self.edit_window_secs,
            default_capacity: self.default_capacity,
            auto_assign: self.auto_assign,
            requeue_after_secs: self.requeue_after_secs,
            close_inactive_after_secs: self.close_inactive_after_secs,
            average_handle_secs: self.average_handle_secs,
            ..TenantSettings::default()
        };
        settings.validate().context("new tenant settings")?;
        Ok(settings)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Staff administration.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Copy the SQLite database (`--db`) to a new file, consistent as of the start of the
    /// copy, while a server keeps using it; the copy is owner-only (0600). PostgreSQL
    /// stores are backed up with pg_dump instead.
    Backup {
        /// The new file (must not exist).
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Write everything a tenant owns (of `--db`, or of `--store`) to a new file as JSON
    /// Lines, streamed from one consistent state while a server keeps running; the file
    /// is owner-only (0600). It holds password hashes, token digests and webhook secrets
    /// unless --without-secrets. The files its messages carry (with their thumbnails) go
    /// to the folder FILE.files beside it, owner-only, unless --without-files; `import`
    /// takes them from there.
    Export {
        /// The tenant's id; may be left out when the database holds one tenant.
        #[arg(long)]
        tenant: Option<chat_core::TenantId>,
        /// The new file (must not exist).
        #[arg(long)]
        to: std::path::PathBuf,
        /// Leave out password hashes, token digests and webhook secrets (staff and
        /// customers then set new passwords after an import).
        #[arg(long)]
        without_secrets: bool,
        /// Leave out the uploaded files' bytes (the messages still name them; downloads
        /// after an import then answer 404).
        #[arg(long)]
        without_files: bool,
    },
    /// Deliver one e-mail to an `email` inbox: the raw message on standard input is posted
    /// to the server's `POST /v1/inboxes/{id}/email` with the inbox's token. For an MTA's
    /// pipe (Postfix `pipe`, Exim `pipe` transport, a `.forward` or aliases line). Exits
    /// 0 when stored (or already stored), 65 (EX_DATAERR: bounce) when the server refuses
    /// the mail, 75 (EX_TEMPFAIL: try again later) when it cannot be reached or answers
    /// 5xx, 408, 409 or 429, and 78 (EX_CONFIG) when the token file cannot be read.
    EmailInbound {
        /// The server's base URL, as the MTA's machine reaches it (`http://127.0.0.1:8080`).
        #[arg(long, env = "CHAT_EMAIL_SERVER")]
        server: String,
        /// The inbox's id.
        #[arg(long, env = "CHAT_EMAIL_INBOX")]
        inbox: String,
        /// A file holding the inbox's token (shown once when the inbox was created); a
        /// file rather than a flag so the token is in no process list.
        #[arg(long, env = "CHAT_EMAIL_TOKEN_FILE")]
        token_file: std::path::PathBuf,
        /// Longest wait for the server's answer, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// Read an export (`chat-server export`) into an empty database (`--db`, created if
    /// missing, or `--store`), all or nothing. Refuses a database that holds data, an
    /// export of another store or schema version, and a cut-off file. Run it with no
    /// server on the database. The files in FILE.files, if the export has them, are
    /// copied into the uploads folder (--uploads-dir, or `uploads` beside --db).
    Import {
        /// The export file.
        #[arg(long)]
        from: std::path::PathBuf,
    },
    /// Copy a whole SQLite database (every tenant, staff with their passwords, tokens,
    /// webhooks, inboxes, conversations, messages, events) into the empty PostgreSQL
    /// database of --store, all or nothing, counting every table at the end. Run it with
    /// no server on either. Files stay in the uploads folder: start the PostgreSQL servers
    /// on the same --uploads-dir. The signing key beside the SQLite file is copied to
    /// --key-file (or beside --db) if none is there, so issued tokens stay valid.
    Migrate {
        /// The SQLite database file.
        #[arg(long)]
        from: std::path::PathBuf,
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The bounded blocking pool and its reasons are in `chat_server::runtime`, shared
    // with the benches so that they measure this runtime.
    chat_server::runtime::builder(cli.max_blocking_threads as usize)
        .build()
        .context("starting the async runtime")?
        .block_on(serve(cli))
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
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

    // A mail from the MTA's pipe: no store, only a POST to the running server.
    if let Some(Command::EmailInbound {
        server,
        inbox,
        token_file,
        timeout_secs,
    }) = &cli.command
    {
        std::process::exit(email_inbound(server, inbox, token_file, *timeout_secs).await);
    }
    // Before opening the store: a backup runs beside a live server, and must neither
    // migrate the file nor start the store's threads.
    if let Some(Command::Backup { to }) = &cli.command {
        anyhow::ensure!(
            cli.store.is_none(),
            "backup copies a SQLite database (--db); back up PostgreSQL with pg_dump"
        );
        let started = std::time::Instant::now();
        let bytes = chat_sqlite::backup(&cli.db, to)
            .with_context(|| format!("backing up {} to {}", cli.db.display(), to.display()))?;
        println!(
            "backup of {} written to {} ({bytes} bytes, {} ms)",
            cli.db.display(),
            to.display(),
            started.elapsed().as_millis()
        );
        return Ok(());
    }
    if let Some(Command::Import { from }) = &cli.command {
        return import(&cli, from).await;
    }
    if let Some(Command::Migrate { from }) = &cli.command {
        anyhow::ensure!(
            cli.store.is_some(),
            "migrate copies into PostgreSQL: give --store postgres://…"
        );
        let (store, _) = open_postgres(&cli).await?;
        let keys = (
            beside(from, "chat-signing.key"),
            cli.key_file
                .clone()
                .unwrap_or_else(|| beside(&cli.db, "chat-signing.key")),
        );
        return migrate::migrate(from, &store, keys).await;
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
    // Files live on disk beside the database so they survive restarts like the messages
    // that carry them (the engine's default keeps them in memory).
    let uploads = cli
        .uploads_dir
        .clone()
        .unwrap_or_else(|| beside(&cli.db, "uploads"));
    let blobs = Arc::new(
        chat_server::uploads::DirBlobStore::new(&uploads)
            .with_context(|| format!("opening the uploads folder {}", uploads.display()))?,
    );
    let engine = Engine::builder_with_backend(store)
        .blobs(blobs.clone())
        .thumbnails(Arc::new(chat_server::thumbnails::ImageThumbnails::default()))
        .passwords(Arc::new(chat_server::auth::Argon2Passwords))
        .limits(limits)
        .bus(bus)
        .router(router)
        .bot(bot)
        .event_retention(chat_core::EventRetention {
            keep_events: cli.event_retention_events,
            keep_for: time::Duration::days(cli.event_retention_days.into()),
            enabled: cli.event_retention_days > 0,
        })
        .build();
    if let Some(Command::Export {
        tenant,
        to,
        without_secrets,
        without_files,
    }) = &cli.command
    {
        let options = chat_core::export::ExportOptions {
            secrets: !without_secrets,
            ..Default::default()
        };
        let files = (!without_files).then_some(&*blobs);
        return export(&engine, *tenant, to, options, files).await;
    }
    let tenant = match engine.tenants().await?.first() {
        Some(t) => t.id,
        None => {
            engine
                .create_tenant(&cli.tenant_name, cli.tenant_defaults.settings()?)
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
    config.identity_secret = cli.identity_secret.as_ref().map(|s| s.as_bytes().to_vec());
    config.timer_interval = Duration::from_secs(cli.timer_interval_secs.max(1));
    config.realtime.presence_lease = Duration::from_secs(cli.presence_lease_secs.max(1));
    config.realtime.conversation_cache = cli.conversation_cache as usize;
    config.webhooks.allow_private = cli.webhooks_allow_private;
    config.webhooks.timeout = Duration::from_secs(cli.webhooks_timeout_secs.max(1));
    config.webhooks.retry.base = Duration::from_millis(cli.webhooks_retry_base_ms.max(1));
    config.webhooks.retry.pause_after = Duration::from_secs(cli.webhooks_pause_after_secs);
    config.webhooks.telegram_long_poll = Duration::from_secs(cli.telegram_long_poll_secs.min(50));
    config.mail = mail_config(&cli)?;
    cli.network
        .apply(&mut config)
        .map_err(|e| anyhow::anyhow!(e))?;

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

/// `chat-server export`: the engine streams the tenant (as the system actor: secrets
/// included unless left out) into a new owner-only file, and the files its messages carry
/// go to a folder beside it (unless `files` is `None`).
async fn export(
    engine: &Engine,
    tenant: Option<chat_core::TenantId>,
    to: &std::path::Path,
    options: chat_core::export::ExportOptions,
    files: Option<&chat_server::uploads::DirBlobStore>,
) -> anyhow::Result<()> {
    use chat_server::export_files;
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    let tenants = engine.tenants().await?;
    let tenant = match tenant {
        Some(id) => {
            tenants
                .iter()
                .find(|t| t.id == id)
                .with_context(|| format!("no tenant {id} in this database"))?
                .id
        }
        None => match tenants.as_slice() {
            [one] => one.id,
            [] => anyhow::bail!("the database holds no tenant"),
            _ => anyhow::bail!(
                "the database holds {} tenants: name one with --tenant",
                tenants.len()
            ),
        },
    };
    let started = std::time::Instant::now();
    let files_dir = export_files::files_dir(to);
    if files.is_some() && files_dir.exists() {
        anyhow::bail!(
            "{} exists already (an export never overwrites a file)",
            files_dir.display()
        );
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .with_context(|| {
            format!(
                "creating {} (an export never overwrites a file)",
                to.display()
            )
        })?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(256);
    let system = Actor::System { tenant };
    let exporting = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.export_tenant(&system, options, tx).await })
    };
    // Written on a blocking thread, line by line as they come: the tenant is never
    // held in memory.
    let path = to.to_owned();
    // The keys of the files the messages carry are picked from the lines on the way.
    let writing = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, _)> {
        let mut out = std::io::BufWriter::new(file);
        let mut bytes = 0u64;
        let mut keys = std::collections::BTreeSet::new();
        while let Some(line) = rx.blocking_recv() {
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
            bytes += line.len() as u64 + 1;
            export_files::attachment_keys(&line, &mut keys);
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok((bytes, keys))
    });
    let exported = exporting.await?;
    let written = writing.await?;
    let mut result = exported
        .map_err(anyhow::Error::from)
        .and_then(|records| Ok((records, written?)))
        .map(|(records, (bytes, keys))| (records, bytes, keys, None));
    if let (Ok((_, _, keys, copied)), Some(blobs)) = (&mut result, files) {
        match export_files::copy_out(blobs, keys, &files_dir).await {
            Ok(done) => *copied = Some(done),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&files_dir);
                result = Err(anyhow::Error::from(e).context(format!(
                    "copying the uploaded files to {}",
                    files_dir.display()
                )));
            }
        }
    }
    match result {
        Ok((records, bytes, _, copied)) => {
            let files = match copied {
                Some(c) if c.missing > 0 => format!(
                    "; {} files ({} bytes) in {}, {} missing from the uploads folder",
                    c.files,
                    c.bytes,
                    files_dir.display(),
                    c.missing
                ),
                Some(c) => format!(
                    "; {} files ({} bytes) in {}",
                    c.files,
                    c.bytes,
                    files_dir.display()
                ),
                None => String::new(),
            };
            println!(
                "tenant {tenant} exported to {} ({records} records, {bytes} bytes, {} ms){files}",
                path.display(),
                started.elapsed().as_millis()
            );
            Ok(())
        }
        Err(e) => {
            // Leave no partial file that looks like an export.
            let _ = std::fs::remove_file(&path);
            Err(e.context(format!("exporting tenant {tenant} to {}", path.display())))
        }
    }
}

/// `chat-server import`: the store reads the file into its empty database.
async fn import(cli: &Cli, from: &std::path::Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let file = std::io::BufReader::new(
        std::fs::File::open(from).with_context(|| format!("opening {}", from.display()))?,
    );
    let summary = match &cli.store {
        Some(_) => {
            let (store, _) = open_postgres(cli).await?;
            store.import(file).await
        }
        None => {
            let db = cli.db.clone();
            tokio::task::spawn_blocking(move || chat_sqlite::import(&db, file)).await?
        }
    }
    .with_context(|| format!("importing {}", from.display()))?;
    // The files after the rows: an import refused as a whole leaves no files behind.
    let files_dir = chat_server::export_files::files_dir(from);
    let files = if files_dir.is_dir() {
        let uploads = cli
            .uploads_dir
            .clone()
            .unwrap_or_else(|| beside(&cli.db, "uploads"));
        let blobs = chat_server::uploads::DirBlobStore::new(&uploads)
            .with_context(|| format!("opening the uploads folder {}", uploads.display()))?;
        let copied = chat_server::export_files::copy_in(&files_dir, &blobs)
            .await
            .with_context(|| {
                format!(
                    "the rows are imported, but copying the files of {} into {} failed",
                    files_dir.display(),
                    uploads.display()
                )
            })?;
        format!(
            "; {} files ({} bytes) into {}",
            copied.files,
            copied.bytes,
            uploads.display()
        )
    } else {
        String::new()
    };
    println!(
        "tenant {} imported from {} ({} records, {} ms){files}{}",
        summary.tenant,
        from.display(),
        summary.records,
        started.elapsed().as_millis(),
        if summary.secrets {
            ""
        } else {
            "; the export had no secrets: staff and customers set new passwords"
        }
    );
    Ok(())
}

/// The PostgreSQL store of --store.
async fn open_postgres(cli: &Cli) -> anyhow::Result<(PostgresStore, String)> {
    let url = cli.store.as_deref().context("--store is not set")?;
    anyhow::ensure!(
        url.starts_with("postgres://") || url.starts_with("postgresql://"),
        "--store takes a postgres:// URL (the SQLite file is chosen with --db)"
    );
    // The URL may hold a password: errors name the store, never the URL.
    let mut options = chat_postgres::Options::default();
    if let Some(ca) = &cli.pg_ca {
        options = options.ca_file(ca);
    }
    let store = PostgresStore::connect_with(url, options)
        .await
        .context("opening the PostgreSQL store (--store)")?;
    Ok((store, "postgres".to_owned()))
}

/// The store chosen by flags, and how the log names it (never with a password).
async fn open_store(cli: &Cli) -> anyhow::Result<(Arc<dyn Backend>, String)> {
    if cli.store.is_some() {
        let (store, name) = open_postgres(cli).await?;
        return Ok((Arc::new(store), name));
    }
    let synchronous = match cli.synchronous {
        SyncMode::Full => Synchronous::Full,
        SyncMode::Normal => Synchronous::Normal,
    };
    let options = Options::default()
        .synchronous(synchronous)
        .cache_kib(cli.cache_mib * 1024)
        .writer_cache_kib(cli.writer_cache_mib * 1024)
        .conversation_cache(cli.writer_conversation_cache as usize);
    let heap_limit = match cli.sqlite_heap_limit_mib {
        Some(mib) => mib << 20,
        None => options.page_cache_caps_kib() << 10,
    };
    chat_sqlite::set_heap_limit(heap_limit).context("setting --sqlite-heap-limit-mib")?;
    let store = SqliteStore::open_with(&cli.db, options)
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
            config.ca_file = cli.bot_ca_file.clone();
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
            let config = chat_bots::WebhookConfig {
                ca_file: cli.bot_ca_file.clone(),
                ..chat_bots::WebhookConfig::new(url)
            };
            Arc::new(chat_bots::WebhookBot::new(config, secret.into_bytes())?)
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

/// The mail settings from the flags: a relay needs a sender, and neither is ever shown in
/// an error (the URL holds the relay's password).
fn mail_config(cli: &Cli) -> anyhow::Result<chat_server::mail::MailConfig> {
    let mut mail = chat_server::mail::MailConfig {
        transcript_window: Duration::from_secs(cli.mail_transcript_window_secs.max(1)),
        attachment_bytes: cli.mail_attachment_bytes,
        ..Default::default()
    };
    mail.retry.base = Duration::from_millis(cli.mail_retry_base_ms.max(1));
    if let Some(url) = cli.smtp_url.as_deref().filter(|u| !u.trim().is_empty()) {
        let relay = chat_server::mail::SmtpRelay::parse(url)
            .map_err(|why| anyhow::anyhow!("--smtp-url: {why}"))?;
        let from = cli
            .mail_from
            .as_deref()
            .context("--smtp-url needs --mail-from (the sender address)")?;
        mail.from = Some(
            from.parse()
                .map_err(|_| anyhow::anyhow!("--mail-from: not an e-mail address: {from}"))?,
        );
        mail.relay = Some(relay);
    }
    Ok(mail)
}

/// `chat-server email-inbound`: the exit code the MTA acts on.
async fn email_inbound(
    server: &str,
    inbox: &str,
    token_file: &std::path::Path,
    timeout_secs: u64,
) -> i32 {
    use std::io::Read as _;

    const EX_CONFIG: i32 = 78;
    let token = match std::fs::read_to_string(token_file) {
        Ok(t) if !t.trim().is_empty() => t,
        _ => {
            eprintln!(
                "email-inbound: cannot read the inbox token from {}",
                token_file.display()
            );
            return EX_CONFIG;
        }
    };
    let mut raw = Vec::new();
    // One byte over the cap is enough to know the server would refuse it.
    let limit = chat_server::email::MAX_MAIL_BYTES as u64 + 1;
    if let Err(e) = std::io::stdin().take(limit).read_to_end(&mut raw) {
        eprintln!("email-inbound: reading the message failed: {e}");
        return chat_server::email::PipeOutcome::Temporary.code();
    }
    let (outcome, line) = chat_server::email::pipe(
        server,
        inbox,
        &token,
        raw,
        Duration::from_secs(timeout_secs.max(1)),
    )
    .await;
    eprintln!("email-inbound: {line}");
    outcome.code()
}
