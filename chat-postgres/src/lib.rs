#![doc = include_str!("../README.md")]

mod codec;
mod credentials;
mod error;
mod events;
mod export;
mod inboxes;
mod list;
mod mail;
mod migrate;
mod migrations;
mod outbox;
mod presence;
mod reports;
mod search;
mod store;
mod tls;
mod webhooks;

pub use migrate::{CopySummary, SKIPPED, SQLITE_SCHEMA};
pub use migrations::SCHEMA_VERSION;
pub use store::{Options, PostgresStore};
