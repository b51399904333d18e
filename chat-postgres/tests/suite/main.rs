//! The PostgreSQL store's integration tests, one binary for all: each file below was a test
//! binary of its own (`cargo test -p chat-postgres --test suite conformance::` runs one
//! file's).

mod common;

mod conformance;
mod conversation_event_references;
mod copy;
mod credentials;
mod desk;
mod event_references;
mod postgres;
mod tls;
mod two_nodes;
