//! The server's integration tests, one binary for all: each file below was a test binary
//! of its own, and linking ~50 binaries of the whole server was most of the test build in
//! CI (`cargo test -p chat-server --test suite realtime::` runs one file's tests).
//! Files that run the `chat-server` binary need the `binary` feature (default).

mod common;
mod services;

mod accounts;
mod api_flow;
mod authorization;
mod backup;
#[cfg(feature = "binary")]
mod binary;
#[cfg(feature = "binary")]
mod binary_cluster;
mod binary_outage;
#[cfg(feature = "binary")]
mod binary_postgres;
mod binary_presence;
mod binary_shared_uploads;
#[cfg(feature = "bots")]
mod bot_stream;
mod bot_tokens;
#[cfg(feature = "binary")]
mod browser;
mod business_hours;
mod canned_responses;
mod channels;
#[cfg(feature = "binary")]
mod cluster_credentials;
mod contacts;
#[cfg(feature = "binary")]
mod email_channel;
mod erasure;
mod error_answers;
mod export;
mod extension;
mod files;
#[cfg(feature = "binary")]
mod full_disk;
mod hardening;
mod identity;
#[cfg(feature = "binary")]
mod kills;
mod logins;
mod mail;
mod malformed;
mod mentions;
mod migrate;
mod openapi;
mod openapi_answers;
mod realtime;
mod realtime_reads;
mod reports;
#[cfg(feature = "binary")]
mod schemathesis;
mod search;
mod settings;
mod slow_clients;
mod snooze;
mod socket_loop;
mod telegram;
mod transcripts;
mod uploads;
mod views;
mod web;
mod webhooks;
#[cfg(feature = "binary")]
mod webhooks_binary;
mod whatsapp;
