#![doc = include_str!("../README.md")]
#![recursion_limit = "512"]

pub mod accounts;
pub mod api;
pub mod auth;
pub mod config;
pub mod demo;
pub mod error;
pub mod extension;
pub mod fastapi;
pub mod http;
pub mod metrics;
pub mod numbering;
pub mod openapi;
pub mod ratelimit;
pub mod realtime;
pub mod routes;
mod server;
pub mod starter;
#[cfg(feature = "testing")]
pub mod testing;
pub mod uploads;

pub use config::{Config, HttpLimits, JwtConfig};
pub use extension::{Extension, Handled};
pub use server::{App, run, run_with};
