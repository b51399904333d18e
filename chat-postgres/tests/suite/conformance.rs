//! chat-core's store conformance suite, unchanged, on PostgreSQL (a schema per test).

use crate::common;

#[cfg(chat_test_postgres)]
async fn store() -> (std::sync::Arc<dyn chat_core::Store>, common::Schema) {
    let (store, schema) = common::store().await;
    (std::sync::Arc::new(store), schema)
}

#[cfg(chat_test_postgres)]
chat_core::store_conformance_tests!(store);

#[cfg(not(chat_test_postgres))]
#[test]
fn skipped_chat_test_postgres_url_unset() {
    common::skipped();
}
