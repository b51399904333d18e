//! What the start-up resume of bot turns costs on a desk full of idle bot chats: fills a
//! SQLite file with `<chats>` conversations the bot answered (and `<hanging>` it did not),
//! then times `Engine::resume_bot_turns` on a fresh engine, as after a restart.
//!
//! ```text
//! cargo run --release -p chat-tests --bin bot_resume_scan -- 10000 10
//! ```
//!
//! Output: one line, `resumed <turns> of <chats> bot chats in <ms> ms`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chat_core::{
    Actor, Bot, BotDecision, BotFailure, BotTurn, Engine, Error, OpenConversation, TenantSettings,
};
use chat_sqlite::{Options, SqliteStore, Synchronous};

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Answers at once, or (while filling) fails for the chats meant to hang.
struct Answering {
    fail: bool,
}

#[async_trait]
impl Bot for Answering {
    async fn respond(&self, turn: BotTurn<'_>) -> chat_core::Result<BotDecision> {
        if self.fail {
            return Err(Error::Bot("the process died here".into()));
        }
        Ok(BotDecision::Reply {
            text: format!(
                "About \"{}\": it ships tomorrow.",
                turn.last_customer_text()
            ),
            metadata: BTreeMap::new(),
        })
    }
}

fn engine(store: Arc<SqliteStore>, fail: bool) -> Engine {
    Engine::builder_with_backend(store)
        .bot(Arc::new(Answering { fail }))
        // A failed turn stays in bot mode unanswered: what a crash leaves.
        .on_bot_failure(BotFailure::Ignore)
        .build()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bot_resume_scan <chats> <hanging>";
    let chats: usize = args.next().ok_or(usage)?.parse()?;
    let hanging: usize = args.next().ok_or(usage)?.parse()?;
    let dir = std::env::temp_dir().join(format!("bot-resume-scan-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("scan.db");
    {
        // Filling is not what is measured: no fsync per commit.
        let store = Arc::new(SqliteStore::open_with(
            &path,
            Options::default().synchronous(Synchronous::Normal),
        )?);
        let tenant = engine(store.clone(), false)
            .create_tenant("Scan", TenantSettings::default())
            .await?
            .id;
        let system = Actor::System { tenant };
        for n in 0..chats + hanging {
            let filler = engine(store.clone(), n >= chats);
            let opening = OpenConversation {
                first_message: Some(format!("Where is order {n}?")),
                ..Default::default()
            };
            filler.open_conversation(&system, opening).await?;
        }
    }
    let store = Arc::new(SqliteStore::open(&path)?);
    let restarted = engine(store, false);
    let started = Instant::now();
    let turns = restarted.resume_bot_turns().await?;
    let took = started.elapsed();
    println!(
        "resumed {turns} of {} bot chats in {} ms",
        chats + hanging,
        took.as_millis()
    );
    drop(restarted);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
