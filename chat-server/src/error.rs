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
    /// Seconds to wait (429).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
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

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
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
            chat_core::Error::Conflict(why) => Self::new(StatusCode::CONFLICT, "conflict", why),
            chat_core::Error::InvalidTransition { from, to } => Self::new(
                StatusCode::CONFLICT,
                "invalid_transition",
                format!("a conversation in {from} mode cannot become {to}"),
            ),
            chat_core::Error::Validation { field, message } => Self::invalid(field, message),
            chat_core::Error::Bot(why) => Self::new(StatusCode::BAD_GATEWAY, "bot_failed", why),
            // Storage details stay in the log; the client learns only that it failed.
            other => {
                let kind = other.storage_kind_of();
                tracing::error!(error = %other, kind = ?kind, "storage failure");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the service could not complete the request; retry later",
                )
            }
        }
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
