//! The store's integration tests, one binary for all: each file below was a test binary of
//! its own (`cargo test -p chat-sqlite --test suite search::` runs one file's). Tests that
//! count the process's threads or set SQLite's process-wide heap limit stay binaries of
//! their own (tests/threads.rs, tests/read_threads.rs, tests/heap_limit.rs).

#[path = "../common/mod.rs"]
mod common;

mod concurrency;
mod conformance;
mod credentials;
mod file_modes;
mod migrations;
mod read_cache;
mod reference;
mod reliability;
mod search;
mod search_kill;
mod search_shared;
mod search_stuck;
mod writer_cache;
