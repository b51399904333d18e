#![doc = include_str!("../README.md")]

mod codec;
mod credentials;
mod error;
mod export;
mod inboxes;
mod list;
mod mail;
mod migrations;
mod presence;
mod reports;
mod search;
mod store;
mod webhooks;

pub use migrations::SCHEMA_VERSION;
pub use store::{Options, PostgresStore};
