//! The one error type of the engine and its store contract.

use crate::mode::Mode;

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
///
/// Servers map these onto status codes (404, 403, 409, 422, 500); embedders branch on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing does not exist, or the actor may not know that it exists.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The actor can see the thing but may not do this to it.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// Someone else changed it first (optimistic concurrency), or a unique key is taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The mode state machine has no such transition.
    #[error("invalid transition from {from} to {to}")]
    InvalidTransition {
        /// Mode the conversation is in.
        from: Mode,
        /// Mode that was asked for.
        to: Mode,
    },
    /// Input breaks a rule; `field` names the offending input.
    #[error("invalid {field}: {message}")]
    Validation {
        /// The input field at fault, e.g. `body` or `rating.score`.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The store failed; the operation did not happen.
    #[error("storage: {0}")]
    Storage(String),
    /// A bot failed or timed out.
    #[error("bot: {0}")]
    Bot(String),
}

impl Error {
    /// Shorthand for [`Error::Validation`].
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        Error::Validation {
            field,
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Storage`].
    pub fn storage(err: impl std::fmt::Display) -> Self {
        Error::Storage(err.to_string())
    }
}
