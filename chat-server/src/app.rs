//! The state a running server shares with every request, and the settings it starts
//! from.
//!
//! This module sits below the request handling: the accept loop ([`crate::run`]), the
//! built-in handlers and extensions all depend on it, and it depends on none of them, so
//! settings and shared state can be read anywhere without pulling in the endpoint table.

use std::sync::Arc;
use std::time::Duration;

use chat_core::{Engine, TenantId};
use tokio::sync::watch;

use crate::auth::{self, Caller, JwtConfig};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::ratelimit::Limiter;
use crate::realtime::{Hub, RealtimeConfig};

/// Shared state of a running server. Its parts are the crate's own; an extension sees
/// what it needs of them through [`Context`](crate::extension::Context).
pub struct App {
    /// The engine.
    pub(crate) engine: Engine,
    /// Settings.
    pub(crate) config: Config,
    /// Counters.
    pub(crate) metrics: Arc<Metrics>,
    /// Realtime connections.
    pub(crate) hub: Arc<Hub>,
    pub(crate) per_ip: Limiter,
    per_token: Limiter,
    /// Visitor and bot tokens already verified (see [`auth::TokenCache`]).
    tokens: auth::TokenCache,
    /// Failed logins per name and address.
    pub(crate) logins: crate::throttle::LoginThrottle,
    /// Flips to `true` when the server shuts down; long-lived connections watch it.
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl App {
    /// The state of a server that stops when `shutdown` flips to `true`.
    pub(crate) fn new(engine: Engine, config: Config, shutdown: watch::Receiver<bool>) -> Self {
        let limits = &config.limits;
        let metrics = Arc::new(Metrics::default());
        Self {
            per_ip: Limiter::new(limits.per_ip_rps, limits.burst),
            per_token: Limiter::new(limits.per_token_rps, limits.burst),
            tokens: auth::TokenCache::default(),
            logins: crate::throttle::LoginThrottle::new(limits.login.clone()),
            hub: Hub::new(engine.clone(), config.realtime.clone(), metrics.clone()),
            metrics,
            engine,
            config,
            shutdown,
        }
    }

    /// Turns a bearer token into a caller, counting it against the per-token rate limit
    /// (429 beyond it). No token is [`Caller::Anonymous`]; a bad one is 401, never
    /// anonymous.
    pub(crate) async fn authenticate(&self, token: Option<&str>) -> Result<Caller, ApiError> {
        if let Some(token) = token
            && self.per_token.is_enabled()
        {
            self.per_token
                .check(&auth::token_digest(token)[..32])
                .map_err(ApiError::rate_limited)?;
        }
        auth::authenticate(&self.engine, &self.config.jwt, &self.tokens, token).await
    }

    /// The expiry of a visitor or bot token that [`authenticate`](Self::authenticate) has
    /// just accepted, if the token cache holds it (see [`auth::TokenCache`]); no store read.
    pub(crate) fn cached_token_expiry(&self, token: &str) -> Option<Option<time::OffsetDateTime>> {
        self.tokens.expiry(token)
    }

    /// Forgets the verified tokens this server keeps (see [`auth::TokenCache`]): a contact
    /// merge re-points tokens, and the next request must see where they point now.
    pub(crate) fn forget_cached_tokens(&self) {
        self.tokens.clear();
    }
}

/// Everything the server needs besides the engine.
#[derive(Clone)]
pub struct Config {
    /// How staff access tokens are signed and checked.
    pub jwt: JwtConfig,
    /// Tenant used when a login or a public request names none.
    pub default_tenant: Option<TenantId>,
    /// Input and traffic limits.
    pub limits: HttpLimits,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` names the client (none by
    /// default: every client is known by its connection's address). Connections from
    /// them are also exempt from the per-address connection cap, which would otherwise
    /// count a whole site as one client.
    pub trusted_proxies: crate::proxies::TrustedProxies,
    /// Origins allowed to call the API from a browser (exact match, e.g.
    /// `http://localhost:3000`). Empty: no cross-origin access.
    pub cors_origins: Vec<String>,
    /// Shared secret for identity verification of customers logged in on the embedding
    /// site (HMAC-SHA256 over `identifier:timestamp`). `None` disables it.
    pub identity_secret: Option<Vec<u8>>,
    /// The bearer token a metrics scraper sends to read `/metrics` (admins' own tokens
    /// read it too). `None`: admins only. Kept as its SHA-256, compared in constant time.
    pub metrics_token: Option<MetricsToken>,
    /// How long a signed identity stays valid.
    pub identity_max_age: Duration,
    /// How long a visitor token lives.
    pub visitor_token_ttl: Duration,
    /// WebSocket settings.
    pub realtime: RealtimeConfig,
    /// How often the tenants' timers (requeue, inactivity close) run.
    pub timer_interval: Duration,
    /// Event-webhook delivery.
    pub webhooks: crate::webhooks::WebhookConfig,
    /// Outbound e-mail (the SMTP relay and the mail worker).
    pub mail: crate::mail::MailConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys and secrets never reach logs.
        f.debug_struct("Config")
            .field("jwt.algorithm", &self.jwt.algorithm)
            .field("jwt.issuer", &self.jwt.issuer)
            .field("default_tenant", &self.default_tenant)
            .field("limits", &self.limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("cors_origins", &self.cors_origins)
            .field("identity_verification", &self.identity_secret.is_some())
            .field("metrics_token", &self.metrics_token.is_some())
            .finish()
    }
}

impl Config {
    /// Settings with an HS256 key and the default limits.
    pub fn new(hs256_secret: &[u8]) -> Self {
        Self {
            jwt: JwtConfig::hs256(hs256_secret),
            default_tenant: None,
            limits: HttpLimits::default(),
            trusted_proxies: crate::proxies::TrustedProxies::none(),
            cors_origins: Vec::new(),
            identity_secret: None,
            metrics_token: None,
            identity_max_age: Duration::from_secs(10 * 60),
            visitor_token_ttl: Duration::from_secs(30 * 24 * 3600),
            realtime: RealtimeConfig::default(),
            timer_interval: Duration::from_secs(15),
            webhooks: crate::webhooks::WebhookConfig::default(),
            mail: crate::mail::MailConfig::default(),
        }
    }
}

/// Limits on what clients may send and how fast.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// Largest request body.
    pub body_bytes: usize,
    /// Time allowed to send request headers.
    pub header_read_timeout: Duration,
    /// Time allowed to send a whole request body, counted from the end of its headers. A
    /// client that has not sent it all by then gets 408 `request_timeout` and its
    /// connection is closed, so slow bodies cannot hold connection slots.
    pub body_read_timeout: Duration,
    /// Bytes per second a body still coming past `body_read_timeout` must keep up (0 = a
    /// fixed deadline): each `body_min_rate` bytes received move the body's deadline, and
    /// the request's, one second later, so a large upload on a slow link gets through
    /// while a client that trickles falls behind and is cut off.
    pub body_min_rate: usize,
    /// Time allowed for a whole request, body and handler included: past it the answer is
    /// 503 `deadline_exceeded` and the connection is closed. A backstop for what the body
    /// deadline does not see (an extension reading its body by other means, a stuck call).
    pub request_timeout: Duration,
    /// Idle keep-alive connections are closed after this. One asked to close that sends
    /// nothing for as long again (its client stopped reading a response) is dropped.
    pub keep_alive_idle: Duration,
    /// Open connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// Open HTTP connections per client IP at most (0 = no cap); one more is answered 429
    /// `too_many_connections` and closed at once, so one address cannot take every slot.
    pub max_connections_per_ip: usize,
    /// Open WebSockets at most (0 = no cap); they leave their HTTP connection slot at the
    /// upgrade, so this is their own. One more upgrade is answered 503
    /// `too_many_websockets` with `Retry-After`.
    pub max_websockets: usize,
    /// Open WebSockets per client IP at most (0 = no cap); one more upgrade is answered
    /// 429 `too_many_websockets`.
    pub max_websockets_per_ip: usize,
    /// Open WebSockets per token at most (0 = no cap); one more upgrade is answered 429
    /// `too_many_websockets`.
    pub max_websockets_per_token: usize,
    /// Requests per second per client IP (token bucket refill rate).
    pub per_ip_rps: f64,
    /// Requests per second per bearer token.
    pub per_token_rps: f64,
    /// Bucket size: how many requests may come at once.
    pub burst: f64,
    /// Failed logins (staff and customer accounts) before waits begin, per login name
    /// and address and per address; see [`crate::throttle`].
    pub login: crate::throttle::LoginLimits,
    /// Kernel send buffer per connection. Fixed rather than autotuned (up to 4 MiB on
    /// Linux), so 10,000 sockets cannot pin gigabytes and a client that stops reading
    /// blocks its connection soon, which is what cuts a slow WebSocket consumer off.
    pub socket_send_buffer: Option<usize>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            body_bytes: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(15),
            body_min_rate: 32 * 1024,
            request_timeout: Duration::from_secs(60),
            keep_alive_idle: Duration::from_secs(75),
            max_connections: 10_000,
            max_connections_per_ip: 64,
            max_websockets: 10_000,
            max_websockets_per_ip: 100,
            max_websockets_per_token: 20,
            per_ip_rps: 200.0,
            per_token_rps: 50.0,
            burst: 400.0,
            login: crate::throttle::LoginLimits::default(),
            socket_send_buffer: Some(256 * 1024),
        }
    }
}

/// The scraper's token for `/metrics`, kept as a digest so the secret is not held in
/// memory as typed, and compared without leaking how much of a guess was right.
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    /// A token for `secret` (at least 16 characters: it guards the server's internals).
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.chars().count() < 16 {
            return Err("the metrics token needs at least 16 characters".into());
        }
        Ok(Self(
            <sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()).into(),
        ))
    }

    /// Whether `presented` is the token, in time that does not depend on where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(presented.as_bytes()).into();
        digest
            .iter()
            .zip(self.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}
