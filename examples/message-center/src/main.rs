//! `cargo run -p example-message-center -- [--listen ADDR] [--db PATH] [--demo]`
//!
//! Serves seed document 001's message-center API on 127.0.0.1:8000 by default.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use chat_starter::{self as starter, StarterArgs};
use clap::Parser;

/// The message-center backend of document 001 on the chat engine.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    starter: StarterArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    starter::init_logging();
    let args = Args::parse().starter;
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000)));
    let db = args
        .db
        .unwrap_or_else(|| PathBuf::from("message-center.db"));
    let mut starter = example_message_center::open(&db).await?;
    starter.apply_network(&args.network)?;
    let center = example_message_center::message_center(&starter).await?;
    if args.demo {
        let users = example_message_center::seed_demo(&starter, &center).await?;
        let mut tokens = serde_json::Map::new();
        for (name, user) in &users {
            tokens.insert(name.clone(), starter.staff_token(user).await?.into());
        }
        let path = starter.write_demo_tokens(&serde_json::Value::Object(tokens))?;
        tracing::info!(
            tokens = %path.display(),
            "demo data ready: log in as admin/admin123 or agent/agent123"
        );
    }
    let listener = starter::bind(listen).context("binding the listen address")?;
    starter::log_listening("message center", &listener, &db);
    starter.serve(listener, center).await?;
    Ok(())
}
