//! chat-core's credentials conformance suite, unchanged, on PostgreSQL.

use crate::common;

#[cfg(chat_test_postgres)]
async fn backend() -> (std::sync::Arc<dyn chat_core::Backend>, common::Schema) {
    let (store, schema) = common::store().await;
    (std::sync::Arc::new(store), schema)
}

#[cfg(chat_test_postgres)]
chat_core::credentials_conformance_tests!(backend);

#[cfg(not(chat_test_postgres))]
#[test]
fn skipped_chat_test_postgres_url_unset() {
    common::skipped();
}
