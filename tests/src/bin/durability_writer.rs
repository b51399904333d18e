//! The child process of the durability test (`tests/durability.rs`): posts messages
//! through a `SqliteStore` from several tasks as fast as it can and prints one line per
//! acknowledged message, until it is killed.
//!
//! ```text
//! cargo run -p chat-tests --bin durability_writer -- /tmp/chat.db
//! ```
//!
//! Output: `ready` once its conversations exist, then `ack <conversation> <seq> <message>`
//! per message, each line flushed as soon as the store has acknowledged it.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use chat_core::{
    Contact, ContactId, Conversation, ConversationId, Error, MessageId, MessageKind, Mode,
    NewMessage, Sender, Store, Tenant, TenantId, TenantSettings,
};
use chat_sqlite::SqliteStore;
use time::OffsetDateTime;
use uuid::Uuid;

/// The tenant every round writes to, so the checker knows where to look.
pub const TENANT: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
const CONVERSATIONS: usize = 4;
const POSTERS: usize = 16;

fn conversation(tenant: TenantId, contact: ContactId, now: OffsetDateTime) -> Conversation {
    Conversation {
        version: 0,
        ..Conversation::new(
            ConversationId(Uuid::now_v7()),
            tenant,
            contact,
            Mode::Bot,
            now,
        )
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: durability_writer <database file>")?;
    let store = Arc::new(SqliteStore::open(&path)?);
    let now = OffsetDateTime::now_utc();
    let tenant = TenantId(TENANT);
    let t = Tenant {
        id: tenant,
        name: "Durability".into(),
        settings: TenantSettings::default(),
        settings_version: 0,
        created_at: now,
    };
    match store.insert_tenant(&t).await {
        Ok(()) | Err(Error::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let contact = Contact {
        id: ContactId(Uuid::now_v7()),
        tenant_id: tenant,
        name: Some("Crash Test".into()),
        email: None,
        email_verified: false,
        phone: None,
        address: None,
        external_id: None,
        metadata: BTreeMap::new(),
        created_at: now,
        updated_at: now,
    };
    store.insert_contact(&contact).await?;
    let mut conversations = Vec::new();
    for _ in 0..CONVERSATIONS {
        let c = store
            .create_conversation(&conversation(tenant, contact.id, now), Vec::new())
            .await?;
        conversations.push(c.conversation.id);
    }
    println!("ready");
    std::io::stdout().flush()?;

    let mut posters = Vec::new();
    for i in 0..POSTERS {
        let store = store.clone();
        let conversation_id = conversations[i % CONVERSATIONS];
        posters.push(tokio::spawn(async move {
            for n in 0u64.. {
                let message = NewMessage {
                    id: MessageId(Uuid::now_v7()),
                    tenant_id: tenant,
                    conversation_id,
                    sender: Sender::Customer,
                    kind: MessageKind::Text,
                    body: format!("poster {i} message {n}"),
                    attachments: Vec::new(),
                    reply_to: None,
                    client_message_id: None,
                    entities: Vec::new(),
                    metadata: BTreeMap::new(),
                    created_at: OffsetDateTime::now_utc(),
                };
                let appended = store.append_message(message).await.expect("append");
                let m = appended.message;
                // One write per line, flushed: a line on stdout is an acknowledgement.
                let line = format!("ack {} {} {}\n", m.conversation_id, m.seq, m.id);
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes()).expect("stdout");
                out.flush().expect("stdout");
            }
        }));
    }
    for p in posters {
        p.await?;
    }
    Ok(())
}
