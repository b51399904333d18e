#![doc = include_str!("../README.md")]
#![recursion_limit = "512"]

pub mod accounts;
pub mod api;
pub mod app;
pub mod auth;
mod caps;
pub mod channels;
#[cfg(feature = "cli")]
pub mod cli;
pub mod csv;
pub mod email;
pub mod endpoints;
pub mod error;
pub mod export_files;
pub mod extension;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod openapi;
mod outbox;
mod paths;
mod polling;
pub mod proxies;
pub mod ratelimit;
pub mod realtime;
pub mod runtime;
mod server;
pub mod staff;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;
pub mod thumbnails;
pub mod transcript;
pub mod uploads;
pub mod views;
pub mod web;
pub mod webhooks;

pub use app::{Config, HttpLimits, MetricsToken};
pub use auth::JwtConfig;
pub use extension::{Context, Extension, Handled};
pub use server::{bind, run, run_with, shutdown_signal};
