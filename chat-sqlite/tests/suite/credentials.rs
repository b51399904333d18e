//! The SQLite store keeps credentials as chat-core's suite specifies.

use std::sync::Arc;

use chat_core::Backend;
use chat_sqlite::SqliteStore;

async fn backend() -> (Arc<dyn Backend>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("chat.db")).unwrap();
    (Arc::new(store), dir)
}

chat_core::credentials_conformance_tests!(backend);
