//! What every starter template in `examples/` needs around its endpoints: the common flags
//! (`--listen`, `--db`, `--demo`), the SQLite engine with one tenant, a signing key kept
//! beside the database, idempotent demo staff, `demo-tokens.json`, and a server that stops
//! gracefully on SIGINT/SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chat_core::{Actor, Agent, Engine, EngineBuilder, Role, TenantId, TenantSettings};
use chat_server::uploads::DirBlobStore;
use chat_server::{Config, Extension, JwtConfig, auth};
use chat_sqlite::SqliteStore;

use crate::Error;

/// The flags every template takes.
#[derive(Debug, Clone, clap::Args)]
pub struct StarterArgs {
    /// Address to listen on (each template has its document's default).
    #[arg(long, env = "CHAT_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// SQLite database file (created if missing).
    #[arg(long, env = "CHAT_DB")]
    pub db: Option<PathBuf>,
    /// Seed the demo data the document describes and write `demo-tokens.json` beside
    /// the database.
    #[arg(long, env = "CHAT_DEMO")]
    pub demo: bool,
    /// Limits, timeouts, trusted proxies, login throttling, CORS origins and the metrics
    /// token: the `chat-server` binary's flags, with its names and defaults.
    #[command(flatten)]
    pub network: chat_server::cli::NetworkArgs,
}

/// A template's engine, its tenant and the server settings, on SQLite.
pub struct Starter {
    /// The engine.
    pub engine: Engine,
    /// The tenant the template serves (the first one, created on first start).
    pub tenant: TenantId,
    /// Server settings: the signing key from beside the database, default limits.
    pub config: Config,
    /// The database file.
    pub db: PathBuf,
}

impl Starter {
    /// Opens (or creates) the database at `db` (attachments go to `uploads/` beside it), finds or creates the tenant named
    /// `tenant_name`, and loads (or generates) the token signing key beside the database.
    /// `shape` adds a bot, a router and so on to the engine.
    pub async fn open(
        db: &Path,
        tenant_name: &str,
        settings: TenantSettings,
        shape: impl FnOnce(EngineBuilder) -> EngineBuilder,
    ) -> Result<Self, Error> {
        let store = SqliteStore::open(db).map_err(|source| Error::Database {
            path: db.to_owned(),
            source,
        })?;
        // Uploads live beside the database, so they survive restarts with it.
        let uploads = beside(db, "uploads");
        let blobs = DirBlobStore::new(&uploads).map_err(|source| Error::File {
            path: uploads,
            source,
        })?;
        let engine = shape(
            Engine::builder_with_backend(Arc::new(store))
                .passwords(Arc::new(chat_server::auth::Argon2Passwords))
                .blobs(Arc::new(blobs)),
        )
        .build();
        let tenant = match engine
            .tenants()
            .await?
            .into_iter()
            .find(|t| t.name == tenant_name)
        {
            Some(t) => t.id,
            None => engine.create_tenant(tenant_name, settings).await?.id,
        };
        let mut config = Config::new(b"replaced below");
        config.jwt = JwtConfig::hs256(&signing_key(&beside(db, "chat-signing.key"))?);
        config.default_tenant = Some(tenant);
        Ok(Self {
            engine,
            tenant,
            config,
            db: db.to_owned(),
        })
    }

    /// Applies the network flags of [`StarterArgs::network`] to the server settings
    /// (call it before [`serve`](Self::serve)).
    pub fn apply_network(&mut self, network: &chat_server::cli::NetworkArgs) -> Result<(), Error> {
        network.apply(&mut self.config).map_err(Error::Flag)
    }

    /// The system actor of the tenant (for seeding).
    pub fn system(&self) -> Actor {
        Actor::System {
            tenant: self.tenant,
        }
    }

    /// The staff member with `email`, created with `password` if missing (so `--demo`
    /// can run on every start). Demo passwords are the document's, so no length rule.
    pub async fn ensure_staff(
        &self,
        name: &str,
        email: &str,
        password: &str,
        role: Role,
    ) -> Result<Agent, Error> {
        Ok(
            chat_server::staff::ensure_staff(
                &self.engine,
                self.tenant,
                name,
                email,
                password,
                role,
            )
            .await?,
        )
    }

    /// A fresh access token for a staff member, as `/v1/auth/login` would issue.
    pub async fn staff_token(&self, agent: &Agent) -> Result<String, Error> {
        let credential = self.engine.credential(self.tenant, agent.id).await?;
        Ok(auth::issue_token(
            &self.config.jwt,
            self.tenant,
            agent.id,
            agent.role,
            credential.token_version,
        )?)
    }

    /// Writes `demo-tokens.json` beside the database (owner-only: the tokens are live
    /// credentials) and returns its path.
    pub fn write_demo_tokens(&self, tokens: &serde_json::Value) -> Result<PathBuf, Error> {
        let path = beside(&self.db, "demo-tokens.json");
        let write = || {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path)?;
            let text = serde_json::to_string_pretty(tokens).map_err(std::io::Error::other)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()
        };
        write().map_err(|source| Error::File {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Serves the built-in API plus `extension` on `listener` until SIGINT/SIGTERM.
    /// Beside serving, the bot answers what a crash of the last run left unanswered.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        extension: Arc<dyn Extension>,
    ) -> std::io::Result<()> {
        // In the background, so the listener answers at once; a turn that also runs
        // through a client's retry still answers once.
        let resuming = self.engine.clone();
        let tenant = self.tenant;
        tokio::spawn(async move {
            match resuming.resume_bot_turns_of(tenant).await {
                Ok(0) => {}
                Ok(turns) => tracing::info!(turns, "bot turns left by the last run answered"),
                Err(e) => tracing::error!(error = %e, "resuming bot turns failed"),
            }
        });
        chat_server::run_with(
            listener,
            self.engine.clone(),
            self.config,
            Some(extension),
            chat_server::shutdown_signal(),
        )
        .await
    }
}

/// A file next to the database.
pub fn beside(db: &Path, name: &str) -> PathBuf {
    db.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(name)
}

/// Reads the HS256 key at `path`, or makes one readable by the owner only.
pub fn signing_key(path: &Path) -> Result<Vec<u8>, Error> {
    Ok(auth::signing_key(path)?)
}

/// Logs to stderr at `info` (or `RUST_LOG`), for template binaries: text, or one JSON
/// object per line when `CHAT_LOG_FORMAT=json` (as the `chat-server` binary's
/// `--log-format json`).
pub fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    let _ = if std::env::var("CHAT_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Logs that `name` listens on `listener`'s bound address (the real port when `:0` was
/// asked for: tools and tests read it from this line) with its database.
pub fn log_listening(name: &str, listener: &tokio::net::TcpListener, db: &Path) {
    match listener.local_addr() {
        Ok(address) => tracing::info!(%address, db = %db.display(), "{name} listening"),
        Err(error) => tracing::warn!(%error, "{name} listening on an unknown address"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        starter: StarterArgs,
    }

    #[tokio::test]
    async fn a_template_takes_the_servers_network_flags() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let mut starter = Starter::open(&db, "T", TenantSettings::default(), |b| b)
            .await
            .unwrap();
        let flags = Flags::parse_from([
            "template",
            "--rate-per-ip",
            "5",
            "--max-websockets-per-token",
            "3",
            "--trusted-proxies",
            "10.0.0.0/8",
            "--login-free-attempts",
            "2",
            "--cors-origins",
            "http://localhost:3000/",
            "--metrics-token",
            "a-scraper-token-of-some-length",
        ]);
        starter.apply_network(&flags.starter.network).unwrap();
        let c = &starter.config;
        assert_eq!(c.limits.per_ip_rps, 5.0);
        assert_eq!(c.limits.max_websockets_per_token, 3);
        assert_eq!(c.limits.login.free_per_name, 2);
        assert!(c.trusted_proxies.contains("10.9.8.7".parse().unwrap()));
        assert_eq!(c.cors_origins, ["http://localhost:3000"]);
        assert!(c.metrics_token.is_some());

        let short = Flags::parse_from(["template", "--metrics-token", "short"]);
        match starter.apply_network(&short.starter.network) {
            Err(Error::Flag(message)) => assert!(message.contains("--metrics-token"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(
            Flags::try_parse_from(["template", "--trusted-proxies", "nonsense"]).is_err(),
            "a bad proxy list is refused before start"
        );
    }
}
