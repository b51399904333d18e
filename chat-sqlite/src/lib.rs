#![doc = include_str!("../README.md")]

mod backup;
mod checkpoint;
mod codec;
mod connection;
mod credentials;
mod erasure;
mod error;
mod events;
mod export;
mod heap;
mod hits;
mod inboxes;
mod list;
mod mail;
mod migrations;
mod names;
mod options;
mod presence;
mod read;
mod readers;
mod reports;
mod search;
mod store;
mod webhooks;
mod write;
mod writer;

#[cfg(test)]
mod plans;

pub use backup::backup;
pub use export::import;
pub use heap::set_heap_limit;
pub use migrations::SCHEMA_VERSION;
pub use options::{Options, Synchronous};
pub use store::{ReadCounts, SqliteStore};
