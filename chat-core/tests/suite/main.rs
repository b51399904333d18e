//! The engine's integration tests, one binary for all: each file below was a test binary
//! of its own (`cargo test -p chat-engine-core --test suite routing::` runs one file's).

mod common;

mod attachments;
mod business_hours;
mod channels;
mod cluster;
mod durable_bot_turns;
mod email_threads;
mod export;
mod feed;
mod identity;
mod memory_conformance;
mod mode_machine;
mod policy_matrix;
mod properties;
mod routing;
mod support_flow;
