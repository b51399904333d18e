//! chat-core's store conformance suite, unchanged, on a SQLite file in a temp dir.

use std::sync::Arc;

use chat_sqlite::SqliteStore;

async fn store() -> (Arc<dyn chat_core::Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("chat.db")).expect("open store");
    (Arc::new(store), dir)
}

chat_core::store_conformance_tests!(store);
