//! The one error shape of the API: `{"error": {"code": "...", "message": "..."}}`, with a
//! stable machine-readable code.

use hyper::StatusCode;
use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `not_found`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// The input field at fault (422).
    pub field: Option<String>,
    /// Seconds to wait (429, 503 `storage_busy`), sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// The version the server holds now (409 `version_conflict`), so a client can tell
    /// whether its copy is stale without another read.
    pub current_version: Option<u64>,
}

/// Every error answer (the OpenAPI document's `Error`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct Body<'a> {
    #[schema(inline)]
    error: Inner<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    field: Option<&'a str>,
    /// With version_conflict: the version stored now.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    current_version: Option<u64>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            current_version: None,
        }
    }
    /// 400 `malformed_json` (the message gives line and column).
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }
    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 422 `validation_failed` naming the field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Self {
            field: Some(field.clone()),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                format!("{field}: {}", message.into()),
            )
        }
    }
    /// 429 `rate_limited` with Retry-After.
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests; retry later",
            )
        }
    }

    /// 429 `too_many_attempts`: too many failed logins from this address (for this name
    /// or at all); retry after `retry_after` seconds. Nothing was checked.
    pub fn too_many_attempts(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "too many failed logins from here; wait before trying again",
            )
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
                current_version: self.current_version,
            },
        })
        .expect("error bodies serialize")
    }
}

impl From<chat_core::Error> for ApiError {
    fn from(e: chat_core::Error) -> Self {
        match e {
            chat_core::Error::NotFound(what) => Self::not_found(format!("{what} not found")),
            chat_core::Error::Forbidden(what) => Self::forbidden(format!("you may not {what}")),
            chat_core::Error::Conflict(conflict) => Self::conflict(conflict),
            chat_core::Error::InvalidTransition { from, to } => Self::new(
                StatusCode::CONFLICT,
                "invalid_transition",
                format!("a conversation in {from} mode cannot become {to}"),
            ),
            chat_core::Error::Validation { field, message } => Self::invalid(field, message),
            chat_core::Error::Bot(bot) => Self::bot(&bot),
            chat_core::Error::Storage(storage) => Self::storage(&storage),
            // A variant added later: logged, and answered like a failed store.
            other => {
                tracing::error!(error = %other, "unclassified failure");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the service could not complete the request; retry later",
                )
            }
        }
    }
}

/// Seconds a client is asked to wait after a busy store: a lock is held for one
/// transaction, so the next second usually finds it free.
pub const BUSY_RETRY_AFTER_SECONDS: u64 = 1;

/// Seconds a client is asked to wait when the database cannot be reached (restarting, or
/// its connections were cut): the pool opens new connections on the next request.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 2;

impl ApiError {
    /// 409 by [`ConflictKind`](chat_core::ConflictKind): `version_conflict` (with the
    /// current version), `duplicate`, or `conflict` for a state that forbids the action.
    fn conflict(conflict: chat_core::Conflict) -> Self {
        let code = match conflict.kind() {
            chat_core::ConflictKind::VersionRace => "version_conflict",
            chat_core::ConflictKind::Duplicate => "duplicate",
            _ => "conflict",
        };
        Self {
            current_version: conflict.current_version(),
            ..Self::new(StatusCode::CONFLICT, code, conflict.message())
        }
    }

    /// 504 `bot_timeout` or 502 `bot_failed`. The bot crates keep credentials and the
    /// service's error bodies out of their messages, so the message is shown.
    fn bot(bot: &chat_core::BotError) -> Self {
        match bot.kind() {
            chat_core::BotErrorKind::Timeout => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "bot_timeout", bot.message())
            }
            _ => Self::new(StatusCode::BAD_GATEWAY, "bot_failed", bot.message()),
        }
    }

    /// 503 with a code per [`StorageKind`](chat_core::StorageKind) and a fixed message: the
    /// backend's own text (file paths, SQL) stays in the log.
    fn storage(storage: &chat_core::StorageError) -> Self {
        use chat_core::StorageKind;
        tracing::error!(error = %storage, kind = ?storage.kind(), "storage failure");
        let (code, message) = match storage.kind() {
            StorageKind::Busy => {
                return Self {
                    retry_after: Some(BUSY_RETRY_AFTER_SECONDS),
                    ..Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "storage_busy",
                        "the database is busy; retry after the Retry-After delay",
                    )
                };
            }
            StorageKind::Unavailable => {
                return Self {
                    retry_after: Some(UNAVAILABLE_RETRY_AFTER_SECONDS),
                    ..Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "storage_unavailable",
                        "the database cannot be reached; retry after the Retry-After delay",
                    )
                };
            }
            StorageKind::Full => ("storage_full", "the database is full"),
            StorageKind::ReadOnly => ("storage_read_only", "the database cannot be written"),
            StorageKind::Corrupt => ("storage_corrupt", "the database is damaged"),
            _ => (
                "unavailable",
                "the service could not complete the request; retry later",
            ),
        };
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
}

/// What the library's own operations (hashing a password, signing a token) can fail with;
/// HTTP answers use [`ApiError`] instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine or its store refused or failed; the engine's error keeps its kind.
    #[error(transparent)]
    Engine(#[from] chat_core::Error),
    /// argon2 could not hash a password (its parameters or memory).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// A token could not be signed with the configured key.
    #[error("signing the token failed: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    /// A blocking task (password hashing) panicked or was cancelled.
    #[error("a blocking task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}

#[cfg(test)]
mod tests {
    use chat_core::{BotErrorKind, Error, StorageError, StorageKind};

    use super::*;

    fn answer(e: Error) -> (StatusCode, &'static str, serde_json::Value) {
        let api = ApiError::from(e);
        let body = serde_json::from_slice(&api.body()).unwrap();
        (api.status, api.code, body)
    }

    #[test]
    fn each_storage_kind_has_its_code_and_never_the_backends_words() {
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        for (kind, code) in [
            (StorageKind::Busy, "storage_busy"),
            (StorageKind::Full, "storage_full"),
            (StorageKind::ReadOnly, "storage_read_only"),
            (StorageKind::Corrupt, "storage_corrupt"),
            (StorageKind::Io, "unavailable"),
            (StorageKind::Unavailable, "storage_unavailable"),
            (StorageKind::Other, "unavailable"),
        ] {
            let failure =
                StorageError::new(kind, "disk I/O error").context("/srv/chat/tenants/acme/chat.db");
            let api = ApiError::from(Error::Storage(failure));
            assert_eq!((api.status, api.code), (unavailable, code), "{kind:?}");
            assert!(
                !api.message.contains("/srv/chat"),
                "{kind:?}: {}",
                api.message
            );
            assert!(!api.message.contains("I/O"), "{kind:?}: {}", api.message);
            // Only a busy store, or one out of reach (a restart, a lost connection), is
            // worth retrying soon.
            let retry = match kind {
                StorageKind::Busy => Some(BUSY_RETRY_AFTER_SECONDS),
                StorageKind::Unavailable => Some(UNAVAILABLE_RETRY_AFTER_SECONDS),
                _ => None,
            };
            assert_eq!(api.retry_after, retry, "{kind:?}");
        }
    }

    #[test]
    fn conflicts_answer_by_kind_and_a_race_names_the_current_version() {
        let (status, code, body) = answer(Error::version_race("conversation", 3, 5));
        assert_eq!((status, code), (StatusCode::CONFLICT, "version_conflict"));
        assert_eq!(body["error"]["current_version"], 5);
        let (status, code, body) = answer(Error::duplicate("agent e-mail taken"));
        assert_eq!((status, code), (StatusCode::CONFLICT, "duplicate"));
        assert!(body["error"].get("current_version").is_none(), "{body}");
        let (status, code, _) = answer(Error::state_conflict(
            "archived conversations are read-only",
        ));
        assert_eq!((status, code), (StatusCode::CONFLICT, "conflict"));
    }

    #[test]
    fn a_bot_timeout_is_504_and_other_bot_failures_502() {
        let (status, code, _) =
            answer(Error::bot(BotErrorKind::Timeout, "no answer within 200 ms"));
        assert_eq!((status, code), (StatusCode::GATEWAY_TIMEOUT, "bot_timeout"));
        for kind in [
            BotErrorKind::Status(500),
            BotErrorKind::Format,
            BotErrorKind::Transport,
            BotErrorKind::Config,
            BotErrorKind::Other,
        ] {
            let (status, code, _) = answer(Error::bot(kind, "the service failed"));
            assert_eq!(
                (status, code),
                (StatusCode::BAD_GATEWAY, "bot_failed"),
                "{kind:?}"
            );
        }
    }
}
