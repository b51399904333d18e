//! Server settings. The binary fills them from flags and environment variables; an
//! embedder builds them in code.

use std::time::Duration;

use chat_core::TenantId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// Everything the server needs besides the engine.
#[derive(Clone)]
pub struct Config {
    /// How staff access tokens are signed and checked.
    pub jwt: JwtConfig,
    /// Tenant used when a login or a public request names none.
    pub default_tenant: Option<TenantId>,
    /// Input and traffic limits.
    pub limits: HttpLimits,
    /// Origins allowed to call the API from a browser (exact match, e.g.
    /// `http://localhost:3000`). Empty: no cross-origin access.
    pub cors_origins: Vec<String>,
    /// Shared secret for identity verification of customers logged in on the embedding
    /// site (HMAC-SHA256 over `identifier:timestamp`). `None` disables it.
    pub identity_secret: Option<Vec<u8>>,
    /// How long a signed identity stays valid.
    pub identity_max_age: Duration,
    /// How long a visitor token lives.
    pub visitor_token_ttl: Duration,
    /// WebSocket settings.
    pub realtime: crate::realtime::RealtimeConfig,
    /// How often the tenants' timers (requeue, inactivity close) run.
    pub timer_interval: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys and secrets never reach logs.
        f.debug_struct("Config")
            .field("jwt.algorithm", &self.jwt.algorithm)
            .field("jwt.issuer", &self.jwt.issuer)
            .field("default_tenant", &self.default_tenant)
            .field("limits", &self.limits)
            .field("cors_origins", &self.cors_origins)
            .field("identity_verification", &self.identity_secret.is_some())
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
            cors_origins: Vec::new(),
            identity_secret: None,
            identity_max_age: Duration::from_secs(10 * 60),
            visitor_token_ttl: Duration::from_secs(30 * 24 * 3600),
            realtime: crate::realtime::RealtimeConfig::default(),
            timer_interval: Duration::from_secs(15),
        }
    }
}

/// JWT signing and validation settings.
#[derive(Clone)]
pub struct JwtConfig {
    /// The one algorithm accepted (pinned: a token claiming another is refused).
    pub algorithm: Algorithm,
    /// Signs tokens.
    pub encoding: EncodingKey,
    /// Checks tokens.
    pub decoding: DecodingKey,
    /// `iss` written and required.
    pub issuer: String,
    /// `aud` written and required.
    pub audience: String,
    /// Token lifetime.
    pub ttl: Duration,
}

impl JwtConfig {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8]) -> Self {
        Self {
            algorithm: Algorithm::HS256,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            issuer: "chat-server".into(),
            audience: "chat-api".into(),
            ttl: Duration::from_secs(12 * 3600),
        }
    }

    /// An asymmetric pair (RS256, ES256, EdDSA ...) from PEM files' contents.
    pub fn asymmetric(
        algorithm: Algorithm,
        private_pem: &[u8],
        public_pem: &[u8],
    ) -> anyhow::Result<Self> {
        let (encoding, decoding) = match algorithm {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => (
                EncodingKey::from_rsa_pem(private_pem)?,
                DecodingKey::from_rsa_pem(public_pem)?,
            ),
            Algorithm::ES256 | Algorithm::ES384 => (
                EncodingKey::from_ec_pem(private_pem)?,
                DecodingKey::from_ec_pem(public_pem)?,
            ),
            Algorithm::EdDSA => (
                EncodingKey::from_ed_pem(private_pem)?,
                DecodingKey::from_ed_pem(public_pem)?,
            ),
            other => anyhow::bail!("{other:?} is not an asymmetric algorithm"),
        };
        Ok(Self {
            algorithm,
            encoding,
            decoding,
            ..Self::hs256(b"unused")
        })
    }
}

/// Limits on what clients may send and how fast.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// Largest request body.
    pub body_bytes: usize,
    /// Time allowed to send request headers.
    pub header_read_timeout: Duration,
    /// Idle keep-alive connections are closed after this.
    pub keep_alive_idle: Duration,
    /// Open connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// Requests per second per client IP (token bucket refill rate).
    pub per_ip_rps: f64,
    /// Requests per second per bearer token.
    pub per_token_rps: f64,
    /// Bucket size: how many requests may come at once.
    pub burst: f64,
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
            keep_alive_idle: Duration::from_secs(75),
            max_connections: 10_000,
            per_ip_rps: 200.0,
            per_token_rps: 50.0,
            burst: 400.0,
            socket_send_buffer: Some(256 * 1024),
        }
    }
}
