//! The server's network flags as a `clap` group, for the `chat-server` binary and every
//! server built on the library (the starter templates flatten it into their own flags),
//! so a template takes the same limits, timeouts, proxy list, login throttle, CORS origins
//! and metrics token as the server, with the same names and environment variables.

use std::time::Duration;

use crate::proxies::TrustedProxies;
use crate::throttle::LoginLimits;
use crate::{Config, HttpLimits, MetricsToken};

/// Limits, timeouts, proxies, login throttling, CORS and the metrics token.
///
/// ```
/// use clap::Parser;
///
/// #[derive(Parser)]
/// struct Flags {
///     #[command(flatten)]
///     network: chat_server::cli::NetworkArgs,
/// }
///
/// let flags = Flags::parse_from(["server", "--rate-per-ip", "50", "--trusted-proxies", "10.0.0.0/8"]);
/// let mut config = chat_server::Config::new(b"a secret of thirty-two bytes....");
/// flags.network.apply(&mut config).unwrap();
/// assert_eq!(config.limits.per_ip_rps, 50.0);
/// assert!(config.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
/// ```
#[derive(Debug, Clone, clap::Args)]
pub struct NetworkArgs {
    /// Browser origins allowed to call the API, comma-separated (e.g. http://localhost:3000);
    /// named origins may send credentials, `*` lets any other site call without them.
    #[arg(long, env = "CHAT_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Largest request body in bytes.
    #[arg(long, env = "CHAT_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Seconds a client may take to send request headers.
    #[arg(long, env = "CHAT_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a client may take to send a whole request body once its headers are in;
    /// later: 408 and the connection is closed.
    #[arg(long, env = "CHAT_BODY_TIMEOUT_SECS", default_value_t = 15)]
    pub body_timeout_secs: u64,
    /// Bytes per second a body still coming after --body-timeout-secs must keep up: each
    /// this many bytes received move the body's and the request's deadlines 1 s later
    /// (0 = fixed deadlines).
    #[arg(long, env = "CHAT_BODY_MIN_RATE", default_value_t = 32 * 1024)]
    pub body_min_rate: usize,
    /// Seconds a whole request may take, body and handling; later: 503
    /// `deadline_exceeded` and the connection is closed.
    #[arg(long, env = "CHAT_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub request_timeout_secs: u64,
    /// Seconds an idle keep-alive connection stays open; a client that stopped reading
    /// its answer is dropped after as long again with nothing sent.
    #[arg(long, env = "CHAT_IDLE_TIMEOUT_SECS", default_value_t = 75)]
    pub idle_timeout_secs: u64,
    /// Most open HTTP connections; more wait in the listen backlog.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most open HTTP connections per client IP (0 = no cap); one more gets 429 and is
    /// closed.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    pub max_connections_per_ip: usize,
    /// Most open WebSockets (0 = no cap); one more upgrade gets 503.
    #[arg(long, env = "CHAT_MAX_WEBSOCKETS", default_value_t = 10_000)]
    pub max_websockets: usize,
    /// Most open WebSockets per client IP (0 = no cap); one more upgrade gets 429.
    #[arg(long, env = "CHAT_MAX_WEBSOCKETS_PER_IP", default_value_t = 100)]
    pub max_websockets_per_ip: usize,
    /// Most open WebSockets per token (0 = no cap); one more upgrade gets 429.
    #[arg(long, env = "CHAT_MAX_WEBSOCKETS_PER_TOKEN", default_value_t = 20)]
    pub max_websockets_per_token: usize,
    /// Requests per second per client IP (0 = unlimited).
    #[arg(long, env = "CHAT_RATE_PER_IP", default_value_t = 200.0)]
    pub rate_per_ip: f64,
    /// Requests per second per token (0 = unlimited).
    #[arg(long, env = "CHAT_RATE_PER_TOKEN", default_value_t = 50.0)]
    pub rate_per_token: f64,
    /// Requests that may arrive at once before the rates apply.
    #[arg(long, env = "CHAT_RATE_BURST", default_value_t = 400.0)]
    pub rate_burst: f64,
    /// Reverse proxies (addresses or CIDR ranges, comma-separated) whose `Forwarded` /
    /// `X-Forwarded-For` names the client; per-address limits then apply to the client,
    /// and the proxies' own connections are not capped per address. Nobody's by default.
    #[arg(long, env = "CHAT_TRUSTED_PROXIES", value_parser = parse_proxies)]
    pub trusted_proxies: Option<TrustedProxies>,
    /// Failed logins of one name from one address before each next attempt must wait
    /// (1 s, then doubling; 0 = no throttle).
    #[arg(long, env = "CHAT_LOGIN_FREE_ATTEMPTS", default_value_t = 5)]
    pub login_free_attempts: u32,
    /// Failed logins from one address, any names, before waits begin (0 = no throttle).
    #[arg(
        long,
        env = "CHAT_LOGIN_FREE_ATTEMPTS_PER_ADDRESS",
        default_value_t = 30
    )]
    pub login_free_attempts_per_address: u32,
    /// The longest wait between login attempts, in seconds.
    #[arg(long, env = "CHAT_LOGIN_MAX_WAIT_SECS", default_value_t = 900)]
    pub login_max_wait_secs: u64,
    /// The bearer token a Prometheus scraper sends for `/metrics` (16 characters or
    /// more); without it, only admins' tokens read it.
    #[arg(long, env = "CHAT_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

impl NetworkArgs {
    /// Sets `config`'s limits, proxies, CORS origins and metrics token from the flags;
    /// `Err` names a flag whose value cannot be used.
    pub fn apply(&self, config: &mut Config) -> Result<(), String> {
        config.cors_origins = self
            .cors_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        config.limits = HttpLimits {
            body_bytes: self.body_limit,
            header_read_timeout: Duration::from_secs(self.header_timeout_secs),
            body_read_timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
            body_min_rate: self.body_min_rate,
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            keep_alive_idle: Duration::from_secs(self.idle_timeout_secs.max(1)),
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            max_websockets: self.max_websockets,
            max_websockets_per_ip: self.max_websockets_per_ip,
            max_websockets_per_token: self.max_websockets_per_token,
            per_ip_rps: self.rate_per_ip,
            per_token_rps: self.rate_per_token,
            burst: self.rate_burst,
            login: LoginLimits {
                free_per_name: self.login_free_attempts,
                free_per_address: self.login_free_attempts_per_address,
                max_wait: Duration::from_secs(self.login_max_wait_secs.max(1)),
                ..LoginLimits::default()
            },
            ..config.limits.clone()
        };
        config.trusted_proxies = self.trusted_proxies.clone().unwrap_or_default();
        config.metrics_token = self
            .metrics_token
            .as_deref()
            .map(MetricsToken::new)
            .transpose()
            .map_err(|e| format!("--metrics-token: {e}"))?;
        Ok(())
    }
}

/// The list of `--trusted-proxies`.
fn parse_proxies(list: &str) -> Result<TrustedProxies, String> {
    list.parse()
}
