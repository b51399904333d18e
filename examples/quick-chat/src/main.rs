//! The Quick Chat template's binary: `cargo run -p example-quick-chat -- --demo`.

use std::net::SocketAddr;
use std::path::PathBuf;

use chat_core::Role;
use chat_starter::{self as starter, StarterArgs};
use clap::Parser;
use serde_json::json;

/// Seed document 000's Quick Chat API on the chat engine, kept in SQLite.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    starter: StarterArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    starter::init_logging();
    let cli = Cli::parse();
    // The document's Flask backend runs on port 5000.
    let listen = cli
        .starter
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5000)));
    let db = cli
        .starter
        .db
        .unwrap_or_else(|| PathBuf::from("quick-chat.db"));
    let mut starter = example_quick_chat::open(&db).await?;
    starter.apply_network(&cli.starter.network)?;
    if cli.starter.demo {
        // The document has no login route, so the staff routes are reached with these
        // tokens (see demo-tokens.json).
        let admin = starter
            .ensure_staff("Admin", "admin@example.com", "admin123", Role::Admin)
            .await?;
        let agent = starter
            .ensure_staff(
                "Support Agent",
                "agent@example.com",
                "agent123",
                Role::Agent,
            )
            .await?;
        let tokens = json!({
            "admin": { "email": admin.email, "token": starter.staff_token(&admin).await? },
            "agent": { "email": agent.email, "token": starter.staff_token(&agent).await? },
        });
        let path = starter.write_demo_tokens(&tokens)?;
        tracing::info!(path = %path.display(), "demo staff ready; bearer tokens written");
    }
    let extension = example_quick_chat::extension(&starter);
    let listener = starter::bind(listen)?;
    starter::log_listening("quick chat", &listener, &db);
    starter.serve(listener, extension).await?;
    Ok(())
}
