//! What an open socket re-checks of the credential it was opened with.
//!
//! A socket outlives the request that authenticated it by hours, so a password change, a
//! disabled account or an expired token must end it too, not only the next HTTP request.
//! The token itself is not kept: a JWT is a few hundred bytes, and idle sockets are most
//! of what the server holds. What is kept is what can change: a staff token's expiry and
//! version (compared with the stored ones, as [`authenticate`](crate::auth::authenticate)
//! does), or a stored token's digest (looked up again: it may expire or be removed).

use base64::Engine as _;
use chat_core::{AgentId, Engine, TenantId};

use crate::auth::{self, BOT_PREFIX, Claims, VISITOR_PREFIX};

/// The part of a socket's credential that can stop holding while the socket is open.
///
/// ```
/// use chat_server::realtime::Credential;
///
/// // A visitor token is re-checked by its digest; a string that is no token checks nothing.
/// assert!(Credential::of_token("vt_abc").is_some());
/// assert!(Credential::of_token("not a token").is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    kind: Kind,
    /// A stored token's expiry as the upgrade's authentication found it (`Some(None)`: it
    /// does not expire), for [`expires_at`](Self::expires_at) to answer without a read.
    known_expiry: Option<Option<time::OffsetDateTime>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// A staff access token: valid until `expires` (Unix seconds) while the stored token
    /// version is still `version` and the account is active.
    Staff {
        tenant: TenantId,
        agent: AgentId,
        version: u64,
        expires: u64,
    },
    /// A visitor or bot token, by the SHA-256 the store keeps.
    Stored { digest: [u8; 32], visitor: bool },
}

impl Credential {
    /// What to re-check of `token`, a bearer token that [`authenticate`](crate::auth::authenticate)
    /// accepted for this socket's request (its signature is not checked again here);
    /// `None` if it is no token the server issues.
    pub fn of_token(token: &str) -> Option<Self> {
        if token.starts_with(VISITOR_PREFIX) || token.starts_with(BOT_PREFIX) {
            let digest = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).into();
            let visitor = token.starts_with(VISITOR_PREFIX);
            return Some(Self::of(Kind::Stored { digest, visitor }));
        }
        let payload = token.split('.').nth(1)?;
        let claims: Claims = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()?,
        )
        .ok()?;
        Some(Self::of(Kind::Staff {
            tenant: claims.tid.parse().ok()?,
            agent: claims.sub.parse().ok()?,
            version: claims.ver,
            expires: claims.exp,
        }))
    }

    fn of(kind: Kind) -> Self {
        Self {
            kind,
            known_expiry: None,
        }
    }

    /// The same credential, with what the authentication of the socket's request found
    /// of a stored token's expiry (`None`: nothing known; a staff token's is in the token).
    pub(crate) fn knowing_expiry(mut self, expiry: Option<Option<time::OffsetDateTime>>) -> Self {
        if matches!(self.kind, Kind::Stored { .. }) {
            self.known_expiry = expiry;
        }
        self
    }

    /// When the credential runs out, as a deadline on the runtime's clock: a staff
    /// token's `exp` (wall-clock), a stored token's expiry (the engine's clock). `None`
    /// when it does not expire or cannot be read now (the periodic re-check remains).
    pub async fn expires_at(&self, engine: &Engine) -> Option<tokio::time::Instant> {
        let (at, now) = match &self.kind {
            Kind::Staff { expires, .. } => (
                time::OffsetDateTime::from_unix_timestamp(i64::try_from(*expires).ok()?).ok()?,
                time::OffsetDateTime::now_utc(),
            ),
            Kind::Stored { digest, visitor } => {
                let at = match self.known_expiry {
                    // Known from the request that opened the socket: no second read.
                    Some(known) => known?,
                    None if *visitor => {
                        engine
                            .visitor_token(&hex::encode(digest))
                            .await
                            .ok()??
                            .expires_at?
                    }
                    None => {
                        engine
                            .bot_token(&hex::encode(digest))
                            .await
                            .ok()??
                            .expires_at?
                    }
                };
                (at, engine.clock().now())
            }
        };
        let left = std::time::Duration::try_from(at - now).unwrap_or_default();
        Some(tokio::time::Instant::now() + left)
    }

    /// Whether the credential still holds. A store that cannot answer right now is no
    /// reason to close every socket: only an answer that says no is.
    pub async fn holds(&self, engine: &Engine) -> bool {
        // A JWT's `exp` is wall-clock time, as the token library checks it at login; a
        // stored token's expiry is the engine's, as every HTTP request checks it.
        let wall = time::OffsetDateTime::now_utc();
        match &self.kind {
            Kind::Staff {
                tenant,
                agent,
                version,
                expires,
            } => {
                if u64::try_from(wall.unix_timestamp()).unwrap_or(0) >= *expires {
                    return false;
                }
                match engine.credential(*tenant, *agent).await {
                    Ok(stored) if stored.token_version != *version => return false,
                    Ok(_) => {}
                    Err(chat_core::Error::NotFound(_)) => return false,
                    Err(_) => return true,
                }
                // The policy's own check: the staff member exists and is active.
                let staff = chat_core::Actor::Staff {
                    tenant: *tenant,
                    agent: *agent,
                };
                !matches!(
                    engine.resolve(&staff).await,
                    Err(chat_core::Error::Forbidden(_) | chat_core::Error::NotFound(_))
                )
            }
            Kind::Stored { digest, visitor } => {
                let digest = hex::encode(digest);
                if *visitor {
                    match engine.visitor_token(&digest).await {
                        Ok(Some(t)) => t.expires_at.is_none_or(|at| at > engine.clock().now()),
                        Ok(None) => false,
                        Err(_) => true,
                    }
                } else {
                    !matches!(engine.bot_token(&digest).await, Ok(None))
                }
            }
        }
    }
}

/// The token a WebSocket upgrade request carries, where the server's route looks for it:
/// `Authorization: Bearer`, the `access_token` query parameter, or (browsers) a
/// subprotocol other than [`SUBPROTOCOL`](super::SUBPROTOCOL).
pub(crate) fn upgrade_token(req: &hyper::Request<hyper::body::Incoming>) -> Option<String> {
    if let Ok(Some(token)) = auth::bearer(req.headers(), req.uri().query()) {
        return Some(token);
    }
    req.headers()
        .get_all(hyper::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| !p.is_empty() && *p != super::SUBPROTOCOL)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chat_core::Engine;
    use chat_core::memory::MemoryStore;

    use super::Credential;

    /// The store has no such token, so an answer can only come from what the upgrade's
    /// authentication passed on: a socket opening does not read its token a second time.
    #[tokio::test]
    async fn a_known_expiry_is_answered_without_reading_the_token_again() {
        let engine = Engine::builder(Arc::new(MemoryStore::new())).build();
        let in_an_hour = engine.clock().now() + time::Duration::hours(1);
        let unknown = Credential::of_token("vt_unknown").unwrap();
        assert_eq!(unknown.clone().expires_at(&engine).await, None);

        let known = unknown.clone().knowing_expiry(Some(Some(in_an_hour)));
        let deadline = known.expires_at(&engine).await.expect("the known expiry");
        let left = deadline - tokio::time::Instant::now();
        assert!(
            left > std::time::Duration::from_secs(3500)
                && left <= std::time::Duration::from_secs(3600),
            "{left:?}"
        );
        // Known not to expire: no deadline, and no read either.
        let never = unknown.knowing_expiry(Some(None));
        assert_eq!(never.expires_at(&engine).await, None);
    }
}
