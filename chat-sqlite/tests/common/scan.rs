//! Checks of searches and of the search file against a scan of the message bodies, and a
//! bounded workload that posts, edits, deletes messages and deletes conversations.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use chat_core::store::{ConversationQuery, Scope};
use chat_core::{
    Contact, ContactId, Conversation, ConversationId, Message, MessageId, MessageKind, Mode,
    NewMessage, Sender, Store, TenantId,
};
use chat_sqlite::SqliteStore;
use rusqlite::{Connection, OpenFlags};
use time::OffsetDateTime;
use uuid::Uuid;

/// Words of the bodies: fixed width, so that one is never inside another and a substring
/// search for one means the same as a word search.
pub const WORDS: usize = 24;

pub fn word(i: usize) -> String {
    format!("w{i:02}q")
}

/// `pk -> (conversation, body)` of every message that is not deleted.
pub type Live = HashMap<i64, (Vec<u8>, String)>;

pub fn live_messages(db: &Path) -> Live {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn
        .prepare("SELECT pk, conversation_id, body FROM messages WHERE deleted_at IS NULL")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Searches through `store` give, for every word, the conversations that hold a live
/// message with it (chat-core's `text_matches`): the word, its prefix (both looked up in
/// the index for messages the indexer has applied, read from the bodies for the others)
/// and the inside of a word (which matches nothing).
pub async fn assert_searches_match_bodies(store: &SqliteStore, tenant: TenantId, live: &Live) {
    for i in 0..WORDS {
        let w = word(i);
        for needle in [
            format!(" {w}"),
            w[..w.len() - 1].to_owned(),
            w[1..].to_owned(),
        ] {
            let expected: BTreeSet<Uuid> = live
                .values()
                .filter(|(_, body)| chat_core::store::text_matches(body, &needle))
                .map(|(c, _)| Uuid::from_slice(c).unwrap())
                .collect();
            let q = ConversationQuery {
                text: Some(needle.clone()),
                limit: 10_000,
                ..ConversationQuery::new(tenant, Scope::Tenant)
            };
            let found: BTreeSet<Uuid> = store
                .list_conversations(&q)
                .await
                .unwrap()
                .items
                .iter()
                .map(|c| c.id.0)
                .collect();
            assert_eq!(found, expected, "search for {needle:?}");
        }
    }
}

/// `(file_id, watermark, rebuilt_to)` of the search file.
pub fn search_state(search: &Path) -> (i64, i64, Option<i64>) {
    Connection::open_with_flags(search, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row(
            "SELECT file_id, watermark, rebuilt_to FROM search_state",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

/// The search file is sound and holds exactly the live messages, applied up to the newest
/// event: the same rows, and for every word the messages whose bodies contain it. An event
/// applied twice or skipped leaves a row too many or too few, or a word on the wrong
/// message.
pub fn assert_index_exact(db: &Path, search: &Path, live: &Live) {
    let conn = Connection::open_with_flags(search, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let (_, watermark, rebuilt_to) = search_state(search);
    let newest: i64 = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row("SELECT coalesce(max(rowid), 0) FROM events", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!((watermark, rebuilt_to), (newest, None), "the watermark");
    let mut stmt = conn
        .prepare("SELECT pk, conversation_id FROM search_rows")
        .unwrap();
    let rows: HashMap<i64, Vec<u8>> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: HashMap<i64, Vec<u8>> =
        live.iter().map(|(pk, (c, _))| (*pk, c.clone())).collect();
    assert_eq!(rows, expected, "search_rows differs from the live messages");
    let mut matching = conn
        .prepare("SELECT rowid FROM message_search WHERE message_search MATCH ?1")
        .unwrap();
    for i in 0..WORDS {
        let w = word(i);
        let found: BTreeSet<i64> = matching
            .query_map([format!("\"{w}\"")], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let scanned: BTreeSet<i64> = live
            .iter()
            .filter(|(_, (_, body))| chat_core::store::contains_ci(body, &w))
            .map(|(pk, _)| *pk)
            .collect();
        assert_eq!(found, scanned, "the index and a scan disagree on {w}");
    }
}

/// xorshift64*: a reproducible stream from a seed.
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from the clock and the process id: a different stream every run (print the
    /// seed to replay one).
    pub fn from_clock() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng((nanos ^ u64::from(std::process::id()).rotate_left(32)) | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    pub fn body(&mut self) -> String {
        let n = 1 + self.below(4) as usize;
        (0..n)
            .map(|_| word(self.below(WORDS as u64) as usize))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub fn contact_of(tenant: TenantId, n: u64) -> Contact {
    Contact {
        id: ContactId(super::id(n)),
        tenant_id: tenant,
        // Nothing in the name or e-mail looks like a word of the bodies.
        name: Some("Shared Test".into()),
        email: None,
        email_verified: false,
        phone: None,
        address: None,
        external_id: None,
        metadata: Default::default(),
        created_at: super::at(0),
        updated_at: super::at(0),
    }
}

/// A conversation in bot mode, new now, with a fresh id.
pub fn new_conversation(tenant: TenantId, contact: ContactId) -> Conversation {
    Conversation {
        version: 0,
        ..Conversation::new(
            ConversationId(Uuid::now_v7()),
            tenant,
            contact,
            Mode::Bot,
            OffsetDateTime::now_utc(),
        )
    }
}

/// `ops` operations on a conversation of its own: posts (most often), edits, deletes
/// messages, and now and then deletes the conversation for a new one. Every operation goes
/// through `store`; what it leaves is read back from the file, not remembered here.
pub async fn churn(
    store: Arc<SqliteStore>,
    tenant: TenantId,
    contact: ContactId,
    ops: usize,
    seed: u64,
) {
    let mut rng = Rng(seed | 1);
    let c = new_conversation(tenant, contact);
    store.create_conversation(&c, vec![]).await.unwrap();
    let mut conversation = c.id;
    let mut posted: Vec<Message> = Vec::new();
    for _ in 0..ops {
        match rng.below(50) {
            0..=32 => {
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
                posted.push(store.append_message(message).await.unwrap().message);
            }
            33..=40 if !posted.is_empty() => {
                let i = rng.below(posted.len() as u64) as usize;
                let mut edited = posted[i].clone();
                edited.body = rng.body();
                edited.edited_at = Some(OffsetDateTime::now_utc());
                store.update_message(&edited).await.unwrap();
                posted[i] = edited;
            }
            41..=46 if !posted.is_empty() => {
                let i = rng.below(posted.len() as u64) as usize;
                let mut deleted = posted.swap_remove(i);
                deleted.deleted_at = Some(OffsetDateTime::now_utc());
                store.update_message(&deleted).await.unwrap();
            }
            47 => {
                store
                    .delete_conversation(tenant, conversation, OffsetDateTime::now_utc())
                    .await
                    .unwrap();
                let c = new_conversation(tenant, contact);
                store.create_conversation(&c, vec![]).await.unwrap();
                conversation = c.id;
                posted.clear();
            }
            _ => {}
        }
    }
}
