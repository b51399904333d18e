//! The AI chatbot template's binary: `cargo run -p example-ai-chatbot -- --demo`.

use std::net::SocketAddr;
use std::path::PathBuf;

use chat_core::Role;
use chat_starter::{self as starter, StarterArgs};
use clap::Parser;
use example_ai_chatbot::LlmSettings;
use serde_json::json;

/// Seed document 004's AI chatbot API on the chat engine, kept in SQLite.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    starter: StarterArgs,
    /// OpenAI-compatible base URL (e.g. http://127.0.0.1:11434/v1); without it the rule
    /// bot answers.
    #[arg(long, env = "CHAT_LLM_BASE_URL")]
    llm_base_url: Option<String>,
    /// Model name.
    #[arg(long, env = "CHAT_LLM_MODEL", default_value = "gpt-3.5-turbo")]
    llm_model: String,
    /// Environment variable holding the API key (read at start, never logged).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    llm_api_key_env: String,
    /// System prompt.
    #[arg(long, env = "CHAT_LLM_SYSTEM_PROMPT")]
    llm_system_prompt: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    starter::init_logging();
    let cli = Cli::parse();
    // The document runs uvicorn on port 8000.
    let listen = cli
        .starter
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000)));
    let db = cli
        .starter
        .db
        .unwrap_or_else(|| PathBuf::from("ai-chatbot.db"));
    let llm = cli.llm_base_url.map(|base_url| LlmSettings {
        base_url,
        model: cli.llm_model,
        api_key: std::env::var(&cli.llm_api_key_env).ok(),
        system_prompt: cli.llm_system_prompt,
    });
    let mut starter = example_ai_chatbot::open(&db, llm).await?;
    starter.apply_network(&cli.starter.network)?;
    if cli.starter.demo {
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
        // A demo user of the document's own API, so the Flutter app can log in at once.
        let demo = "demo";
        let system = chat_core::Actor::System {
            tenant: starter.tenant,
        };
        if starter.engine.find_account(&system, demo).await?.is_none() {
            let sign_up = chat_core::SignUp {
                username: demo.into(),
                email: Some("demo@example.com".into()),
                password: "demo123".into(),
                name: None,
            };
            starter.engine.sign_up(&system, sign_up).await?;
        }
        let (_, _, user_token) = chat_server::accounts::login(
            &starter.engine,
            &starter.config,
            starter.tenant,
            demo,
            "demo123",
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo user's password was changed"))?;
        let tokens = json!({
            "admin": { "email": admin.email, "token": starter.staff_token(&admin).await? },
            "agent": { "email": agent.email, "token": starter.staff_token(&agent).await? },
            "demo": { "username": demo, "password": "demo123", "token": user_token },
        });
        let path = starter.write_demo_tokens(&tokens)?;
        tracing::info!(path = %path.display(), "demo users ready; bearer tokens written");
    }
    let extension = example_ai_chatbot::extension(&starter);
    let listener = starter::bind(listen)?;
    starter::log_listening("ai chatbot", &listener, &db);
    starter.serve(listener, extension).await?;
    Ok(())
}
