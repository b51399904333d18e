//! `cargo run -p example-salon-chat -- [--listen ADDR] [--db PATH] [--demo]`
//!
//! Serves seed document 002's salon chat API on 127.0.0.1:8000 by default.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use chat_starter::{self as starter, StarterArgs};
use clap::Parser;

/// The salon chat backend of document 002 on the chat engine.
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
    // The document runs uvicorn on port 8000.
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000)));
    let db = args.db.unwrap_or_else(|| PathBuf::from("salon-chat.db"));
    let mut starter = example_salon_chat::open(&db).await?;
    starter.apply_network(&args.network)?;
    let salons = example_salon_chat::SalonChat::load(&starter).await?;
    if args.demo {
        let logins = example_salon_chat::seed_demo(&starter, &salons).await?;
        let path = starter.write_demo_tokens(&logins)?;
        tracing::info!(
            tokens = %path.display(),
            "demo data ready: staff admin@salon.com / password, customer +1234567890 / password"
        );
    }
    let listener = starter::bind(listen).context("binding the listen address")?;
    starter::log_listening("salon chat", &listener, &db);
    starter.serve(listener, salons).await?;
    Ok(())
}
