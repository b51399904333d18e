//! The PostgreSQL-backed tests are compiled only when `CHAT_TEST_POSTGRES_URL` names a
//! database: chat-core's conformance macros expand to tests that need a store, and a test
//! cannot skip itself from inside the macro. Without it, one test per file says it was
//! skipped (or fails, under `CHAT_REQUIRE_SERVICES=1`). The library itself does not change.
fn main() {
    println!("cargo::rerun-if-env-changed=CHAT_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(chat_test_postgres)");
    if std::env::var_os("CHAT_TEST_POSTGRES_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=chat_test_postgres");
    }
}
