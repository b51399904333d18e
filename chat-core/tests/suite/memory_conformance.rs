//! The in-memory store runs the conformance suite like every other backend.

use std::sync::Arc;

use chat_core::{Store, memory::MemoryStore};

async fn store() -> (Arc<dyn Store>, ()) {
    (Arc::new(MemoryStore::new()), ())
}

chat_core::store_conformance_tests!(store);

async fn backend() -> (Arc<dyn chat_core::Backend>, ()) {
    (Arc::new(MemoryStore::new()), ())
}

chat_core::credentials_conformance_tests!(backend);
