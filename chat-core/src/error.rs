//! The one error type of the engine and its store contract.

use crate::mode::Mode;

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
///
/// Servers map these onto status codes (404, 403, 409, 422, 502, 503); embedders branch on
/// them, and on the kinds of [`Conflict`], [`StorageError`] and [`BotError`] within.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing does not exist, or the actor may not know that it exists.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The actor can see the thing but may not do this to it.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// Someone else changed it first, a unique key is taken, or the thing's state forbids
    /// the action; [`Conflict::kind`] says which.
    #[error("conflict: {0}")]
    Conflict(Conflict),
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
    /// A bot failed or timed out; [`BotError::kind`] says how.
    #[error("bot: {0}")]
    Bot(BotError),
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

    /// A [`ConflictKind::VersionRace`]: the caller wrote from `expected`, the store holds
    /// `current`.
    pub fn version_race(what: &str, expected: u64, current: u64) -> Self {
        Error::Conflict(Conflict {
            kind: ConflictKind::VersionRace,
            message: format!("{what} changed (version {expected} is now {current})"),
            current_version: Some(current),
        })
    }

    /// A [`ConflictKind::Duplicate`]: the id or a unique key (`message` says which) is taken.
    pub fn duplicate(message: impl Into<String>) -> Self {
        Error::Conflict(Conflict::new(ConflictKind::Duplicate, message))
    }

    /// A [`ConflictKind::State`]: the thing's state (archived, deleted, its mode, who holds
    /// it) forbids the action.
    pub fn state_conflict(message: impl Into<String>) -> Self {
        Error::Conflict(Conflict::new(ConflictKind::State, message))
    }

    /// A bot failure of `kind`.
    pub fn bot(kind: BotErrorKind, message: impl Into<String>) -> Self {
        Error::Bot(BotError::new(kind, message))
    }

    /// The conflict kind, for a conflict.
    pub fn conflict_kind(&self) -> Option<ConflictKind> {
        match self {
            Error::Conflict(c) => Some(c.kind()),
            _ => None,
        }
    }

    /// The bot failure kind, for a bot failure.
    pub fn bot_kind(&self) -> Option<BotErrorKind> {
        match self {
            Error::Bot(b) => Some(b.kind()),
            _ => None,
        }
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

/// Which kind of conflict happened, so a caller can act on it without parsing messages:
/// re-read and retry after a `VersionRace`, pick another key after a `Duplicate`, tell the
/// user after a `State` conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConflictKind {
    /// Someone else wrote first (optimistic concurrency); the read it was based on is stale.
    VersionRace,
    /// The id exists, or a unique key (an e-mail, a username, a token) is taken.
    Duplicate,
    /// The thing's state forbids the action: an archived (read-only) conversation, a deleted
    /// message, a mode in which the actor may not act, an agent already holding it.
    State,
}

/// A conflict: its kind, a message for people, and for a version race the version the store
/// holds now (where the store knows it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Conflict {
    kind: ConflictKind,
    message: String,
    current_version: Option<u64>,
}

impl Conflict {
    /// A conflict of `kind` with `message`.
    pub fn new(kind: ConflictKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            current_version: None,
        }
    }

    /// Its kind.
    pub fn kind(&self) -> ConflictKind {
        self.kind
    }

    /// Its message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For a version race, the version the store holds now, if it knows it.
    pub fn current_version(&self) -> Option<u64> {
        self.current_version
    }
}

/// A conflict described only by text is about state (read-only, mode, holder): version
/// races and duplicates are built with [`Error::version_race`] and [`Error::duplicate`],
/// which say so. Keeps `Error::Conflict("…".into())` short where state is meant.
impl From<&str> for Conflict {
    fn from(message: &str) -> Self {
        Self::new(ConflictKind::State, message)
    }
}

/// See the `From<&str>` conversion: text alone means a [`ConflictKind::State`] conflict.
impl From<String> for Conflict {
    fn from(message: String) -> Self {
        Self::new(ConflictKind::State, message)
    }
}

/// How a bot failed, so the engine and servers can answer accordingly (a timeout is a 504,
/// a refusing service a 502) without parsing messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BotErrorKind {
    /// The service did not answer in time.
    Timeout,
    /// The service answered with this HTTP status (not a success).
    Status(u16),
    /// The service's answer is not what the protocol says (bad JSON, empty, too large,
    /// an unknown action).
    Format,
    /// The service could not be reached (connection refused, DNS, TLS, a broken stream).
    Transport,
    /// The bot is not usable as configured (a bad key, an unbuildable request).
    Config,
    /// Anything else; the message says what.
    Other,
}

/// A bot failure: its kind, a message for people (never a credential), and the underlying
/// error as the [`source`](std::error::Error::source) where there is one.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct BotError {
    kind: BotErrorKind,
    message: String,
    #[source]
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl BotError {
    /// A failure of `kind` with `message` and no source.
    pub fn new(kind: BotErrorKind, message: impl Into<String>) -> Self {
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

    /// Its kind.
    pub fn kind(&self) -> BotErrorKind {
        self.kind
    }

    /// Its message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A bot failure described only by text is of kind [`BotErrorKind::Other`].
impl From<&str> for BotError {
    fn from(message: &str) -> Self {
        Self::new(BotErrorKind::Other, message)
    }
}

/// See the `From<&str>` conversion.
impl From<String> for BotError {
    fn from(message: String) -> Self {
        Self::new(BotErrorKind::Other, message)
    }
}

impl From<BotError> for Error {
    fn from(e: BotError) -> Self {
        Error::Bot(e)
    }
}
