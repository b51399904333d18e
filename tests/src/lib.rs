//! End-to-end tests across the workspace's crates: real files, real processes.
//!
//! `src/bin/durability_writer.rs` is the child process the durability test kills; the
//! tests themselves live in `tests/`.
