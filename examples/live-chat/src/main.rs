//! The LocalPro Live Chat API (seed document 003) on the chat engine.
//!
//! ```text
//! cargo run -p example-live-chat -- --demo
//! ```
//!
//! Listens on 127.0.0.1:5000 and keeps its data in `live-chat.db` unless told otherwise.
//! `--demo` makes an admin, two support agents and the document's example chat, and writes `demo-tokens.json` with a
//! fresh staff token for each, beside the database.

use std::net::SocketAddr;
use std::path::PathBuf;

use chat_core::Role;
use chat_starter::{StarterArgs, bind, init_logging, log_listening};
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
#[command(about = "The LocalPro Live Chat API on the chat engine")]
struct Args {
    #[command(flatten)]
    starter: StarterArgs,
}

/// The demo staff: the document's roles (`admin`, `support`) and the names its examples
/// use, so its transfer example has a second agent.
const DEMO_STAFF: [(&str, &str, &str, &str, Role); 3] = [
    (
        "admin",
        "Admin User",
        "admin@localpro.example",
        "admin123",
        Role::Admin,
    ),
    (
        "support",
        "Jane Smith",
        "jane@localpro.example",
        "agent123",
        Role::Agent,
    ),
    (
        "support2",
        "Bob Wilson",
        "bob@localpro.example",
        "agent123",
        Role::Agent,
    ),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let args = Args::parse();
    let listen: SocketAddr = args
        .starter
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5000)));
    let db = args
        .starter
        .db
        .unwrap_or_else(|| PathBuf::from("live-chat.db"));
    let mut starter = example_live_chat::open(&db).await?;
    starter.apply_network(&args.starter.network)?;
    // The document's frontends run on the usual dev servers.
    starter.config.cors_origins = vec![
        "http://localhost:3000".into(),
        "http://localhost:5173".into(),
    ];
    let extension =
        example_live_chat::live_chat(&starter, example_live_chat::Options::default()).await?;
    if args.starter.demo {
        let mut tokens = serde_json::Map::new();
        for (key, name, email, password, role) in DEMO_STAFF {
            let agent = starter.ensure_staff(name, email, password, role).await?;
            tokens.insert(
                key.into(),
                json!({
                    "id": agent.id.to_string(),
                    "name": agent.name,
                    "email": agent.email,
                    "password": password,
                    "role": role,
                    "token": starter.staff_token(&agent).await?,
                }),
            );
        }
        // The document's example chat, so the dashboard has something to show and the
        // widget a session to resume.
        tokens.insert(
            "demoSessionId".into(),
            json!(extension.seed_demo(&starter.engine).await?),
        );
        let path = starter.write_demo_tokens(&serde_json::Value::Object(tokens))?;
        tracing::info!(path = %path.display(), "demo staff ready");
    }
    let listener = bind(listen)?;
    log_listening("live chat", &listener, &db);
    starter.serve(listener, extension).await?;
    Ok(())
}
