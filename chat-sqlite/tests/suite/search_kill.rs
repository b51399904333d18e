//! The search index survives SIGKILL: a child process posts, edits, deletes messages and
//! deletes conversations as fast as it can and is killed at a random moment, a few times
//! over; after each kill the store reopens, searches are exact at once, and once the
//! indexer has caught up the index holds exactly the messages that are not deleted.
//!
//! The child is this test binary again, running `child_posts_until_killed` with
//! `SEARCH_KILL_DB` set (without it that test does nothing).

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{
    Contact, ContactId, ConversationId, Error, Message, MessageId, MessageKind, NewMessage, Sender,
    Store, Tenant, TenantId, TenantSettings,
};
use chat_sqlite::SqliteStore;
use common::child::Child;
use common::scan::*;
use time::OffsetDateTime;
use uuid::Uuid;

const ROUNDS: usize = 6;
const CHILD_ENV: &str = "SEARCH_KILL_DB";
const TENANT: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0042);

/// The child: writes until killed. Prints `ready` once it has its conversations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_posts_until_killed() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    let tenant = TenantId(TENANT);
    let now = OffsetDateTime::now_utc();
    match store
        .insert_tenant(&Tenant {
            id: tenant,
            name: "Kill".into(),
            settings: TenantSettings::default(),
            settings_version: 0,
            created_at: now,
        })
        .await
    {
        Ok(()) | Err(Error::Conflict(_)) => {}
        Err(e) => panic!("{e}"),
    }
    let contact = Contact {
        id: ContactId(Uuid::now_v7()),
        tenant_id: tenant,
        name: Some("Kill Test".into()),
        email: None,
        email_verified: false,
        phone: None,
        address: None,
        external_id: None,
        metadata: Default::default(),
        created_at: now,
        updated_at: now,
    };
    store.insert_contact(&contact).await.unwrap();
    let mut conversations = Vec::new();
    for _ in 0..4 {
        let c = new_conversation(tenant, contact.id);
        store.create_conversation(&c, vec![]).await.unwrap();
        conversations.push(c.id);
    }
    println!("ready");
    std::io::stdout().flush().unwrap();

    // Four writers, each with its own conversations' messages to edit and delete.
    let mut writers = Vec::new();
    for (w, first) in conversations.into_iter().enumerate() {
        writers.push(tokio::spawn(write_until_killed(
            store.clone(),
            contact.id,
            first,
            w as u64 + 1,
        )));
    }
    for w in writers {
        w.await.unwrap().unwrap();
    }
}

/// One writer of the child: posts (most often), edits, deletes messages, and now and then
/// deletes its conversation for a new one. Returns only on an error.
async fn write_until_killed(
    store: Arc<SqliteStore>,
    contact: ContactId,
    first: ConversationId,
    salt: u64,
) -> chat_core::Result<()> {
    let tenant = TenantId(TENANT);
    let mut rng = Rng::from_clock();
    rng.0 ^= salt;
    let mut conversation = first;
    let mut posted: Vec<Message> = Vec::new();
    loop {
        match rng.below(20) {
            0..=12 => {
                let message = NewMessage {
                    id: MessageId(Uuid::now_v7()),
                    tenant_id: tenant,
                    conversation_id: conversation,
                    sender: Sender::Customer,
                    kind: MessageKind::Text,
                    body: rng.body(),
                    attachments: Vec::new(),
                    reply_to: None,
                    client_message_id: None,
                    entities: Vec::new(),
                    metadata: Default::default(),
                    created_at: OffsetDateTime::now_utc(),
                };
                posted.push(store.append_message(message).await?.message);
            }
            13..=16 if !posted.is_empty() => {
                let i = rng.below(posted.len() as u64) as usize;
                let mut edited = posted[i].clone();
                edited.body = rng.body();
                edited.edited_at = Some(OffsetDateTime::now_utc());
                store.update_message(&edited).await?;
                posted[i] = edited;
            }
            17..=18 if !posted.is_empty() => {
                let i = rng.below(posted.len() as u64) as usize;
                let mut deleted = posted.swap_remove(i);
                deleted.deleted_at = Some(OffsetDateTime::now_utc());
                store.update_message(&deleted).await?;
            }
            19 => {
                store
                    .delete_conversation(tenant, conversation, OffsetDateTime::now_utc())
                    .await?;
                let c = new_conversation(tenant, contact);
                store.create_conversation(&c, vec![]).await?;
                conversation = c.id;
                posted.clear();
            }
            _ => {}
        }
    }
}

/// Runs the child until it says `ready`, lets it write for `run`, kills it.
fn kill_round(db: &Path, run: Duration) {
    let child = Child::spawn("search_kill::child_posts_until_killed", CHILD_ENV, db);
    child.expect_line("ready", Instant::now() + Duration::from_secs(60));
    std::thread::sleep(run);
    child.kill();
}

#[test]
fn the_index_matches_the_messages_after_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kill.db");
    let search = PathBuf::from(format!("{}-search", db.display()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rng = Rng::from_clock();
    eprintln!("kill schedule seed {}", rng.0);
    for round in 0..ROUNDS {
        if round == ROUNDS / 2 {
            // One round starts with no search file: the child rebuilds while it writes.
            std::fs::remove_file(&search).unwrap();
        }
        let run = Duration::from_millis(30 + rng.below(250));
        kill_round(&db, run);
        let live = live_messages(&db);
        eprintln!(
            "round {round}: killed after {run:?}, {} live messages",
            live.len()
        );
        runtime.block_on(async {
            let store = SqliteStore::open(&db).unwrap();
            assert_searches_match_bodies(&store, TenantId(TENANT), &live).await;
            store.wait_for_search_index().await.unwrap();
            assert_index_exact(&db, &search, &live);
            assert_searches_match_bodies(&store, TenantId(TENANT), &live).await;
        });
    }
    eprintln!("{ROUNDS} kills in {:?}", started.elapsed());
}
