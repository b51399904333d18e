//! The example's tests, one binary for all: each file below was a test binary of its
//! own, and every one linked the whole server (`cargo test --test suite widget::` runs one
//! file's).

mod common;

mod binary;
mod document;
mod realtime;
mod security;
mod uploads;
mod widget;
