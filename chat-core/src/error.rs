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
    Storage(StorageError),
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

    /// A storage failure of no particular [`StorageKind`] (`Other`), with this message.
    pub fn storage(err: impl std::fmt::Display) -> Self {
        Error::Storage(StorageError::new(StorageKind::Other, err.to_string()))
    }

    /// A storage failure of `kind`.
    pub fn storage_kind(kind: StorageKind, message: impl Into<String>) -> Self {
        Error::Storage(StorageError::new(kind, message))
    }
}

impl From<crate::mode::InvalidTransition> for Error {
    fn from(e: crate::mode::InvalidTransition) -> Self {
        Error::InvalidTransition {
            from: e.from,
            to: e.to,
        }
    }
}

impl From<crate::mode::UnknownMode> for Error {
    fn from(e: crate::mode::UnknownMode) -> Self {
        Error::validation("mode", e.to_string())
    }
}

/// What kind of storage failure happened, so a caller can act on it without parsing
/// messages: retry when `Busy`, alert an operator on `Full`, `ReadOnly` or `Corrupt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StorageKind {
    /// Another connection or process holds a lock; trying again later may succeed.
    Busy,
    /// The disk or the database is full.
    Full,
    /// The file is damaged or is not a database of this store.
    Corrupt,
    /// The database cannot be written (permissions, read-only media).
    ReadOnly,
    /// The file cannot be opened, or an I/O operation failed.
    Io,
    /// The store is stopped or not configured (a thread ended, no credential store).
    Unavailable,
    /// Anything else; the message says what.
    Other,
}

/// A storage failure: its kind, a message for people, and the backend's own error as the
/// [`source`](std::error::Error::source) where there is one. Cheap to clone (the source
/// is shared), because one failed group commit fails every operation in it.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    kind: StorageKind,
    message: String,
    #[source]
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StorageError {
    /// A failure of `kind` with `message` and no source.
    pub fn new(kind: StorageKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The same failure, caused by `source`.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(std::sync::Arc::new(source));
        self
    }

    /// The same failure with `context` put before the message (e.g. the file's path).
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Its kind.
    pub fn kind(&self) -> StorageKind {
        self.kind
    }

    /// Its message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl Error {
    /// The storage kind, for a storage failure.
    pub fn storage_kind_of(&self) -> Option<StorageKind> {
        match self {
            Error::Storage(e) => Some(e.kind()),
            _ => None,
        }
    }
}
