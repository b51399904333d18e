#![doc = include_str!("../README.md")]

mod error;
pub mod fastapi;
pub mod numbering;
mod starter;

pub use chat_server::staff::ensure_staff;
pub use chat_server::{bind, shutdown_signal};
pub use error::Error;
pub use starter::{Starter, StarterArgs, beside, init_logging, log_listening, signing_key};
