//! The starter kit's one error type.

use std::path::PathBuf;

/// Why starting a template failed. Each variant names what to fix: the file, the key, or
/// the engine's own error with its kind kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SQLite database could not be opened (missing folder, not a database, locked).
    #[error("opening the database {}: {source}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// The store's error, with its kind.
        source: chat_core::Error,
    },
    /// A file or folder beside the database could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token signing key could not be loaded or made.
    #[error(transparent)]
    Key(#[from] chat_server::auth::KeyError),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] chat_core::Error),
    /// Hashing a password or signing a token failed.
    #[error(transparent)]
    Server(#[from] chat_server::error::Error),
    /// A flag's value cannot be used (it names the flag).
    #[error("{0}")]
    Flag(String),
    /// Binding or serving the listener failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
