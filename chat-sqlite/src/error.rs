//! SQLite errors in chat-core's terms. Callers branch on [`chat_core::Error`] variants,
//! never on rusqlite types.

use chat_core::{Error, StorageError, StorageKind};
use rusqlite::ErrorCode;

/// `?` for rusqlite results inside store code.
pub(crate) trait Db<T> {
    /// Maps the error with [`map`].
    fn db(self) -> chat_core::Result<T>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> chat_core::Result<T> {
        self.map_err(map)
    }
}

/// Unique and primary-key violations are conflicts; everything else is a storage failure
/// of the matching [`StorageKind`], with a message that says what to do about it and the
/// rusqlite error as its source.
pub(crate) fn map(err: rusqlite::Error) -> Error {
    let rusqlite::Error::SqliteFailure(failure, message) = &err else {
        let message = err.to_string();
        return Error::Storage(StorageError::new(StorageKind::Other, message).with_source(err));
    };
    let detail = message.clone().unwrap_or_else(|| failure.to_string());
    let (kind, what) = match failure.code {
        ErrorCode::ConstraintViolation
            if matches!(
                failure.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ) =>
        {
            return Error::duplicate(detail);
        }
        ErrorCode::DiskFull => (StorageKind::Full, "database or disk is full"),
        ErrorCode::NotADatabase => (StorageKind::Corrupt, "file is not a SQLite database"),
        ErrorCode::DatabaseCorrupt => (StorageKind::Corrupt, "database file is corrupt"),
        ErrorCode::CannotOpen => (StorageKind::Io, "cannot open the database file"),
        ErrorCode::ReadOnly => (StorageKind::ReadOnly, "database is read-only"),
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => (
            StorageKind::Busy,
            "database is locked by another connection",
        ),
        ErrorCode::SystemIoFailure => (StorageKind::Io, "disk I/O error"),
        _ => {
            return Error::Storage(StorageError::new(StorageKind::Other, detail).with_source(err));
        }
    };
    Error::Storage(StorageError::new(kind, format!("{what}: {detail}")).with_source(err))
}

/// A row whose JSON no longer parses: the file was changed behind the store's back.
pub(crate) fn corrupt_row(what: &str, err: impl std::fmt::Display) -> Error {
    Error::storage_kind(
        StorageKind::Corrupt,
        format!("unreadable {what} row: {err}"),
    )
}
