//! The bots' integration tests, one binary for all: each file below was a test binary of
//! its own (`cargo test -p chat-bots --test suite llm::` runs one file's).

mod common;

mod engine;
mod https;
mod llm;
mod webhook;
