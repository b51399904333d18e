//! The store conformance suites. Every [`Store`] backend expands
//! [`store_conformance_tests!`](crate::store_conformance_tests) in its tests, and every
//! [`Credentials`](crate::Credentials) backend (staff secrets, tokens, customer accounts)
//! [`credentials_conformance_tests!`](crate::credentials_conformance_tests); each must
//! pass them unchanged. A bug found in one backend becomes a test here.
//!
//! ```ignore
//! // In a backend's tests/conformance.rs (needs tokio with `macros` and `rt-multi-thread`):
//! async fn store() -> (std::sync::Arc<dyn chat_core::Store>, tempfile::TempDir) {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = MyStore::open(dir.path().join("chat.db")).unwrap();
//!     (std::sync::Arc::new(store), dir)
//! }
//! chat_core::store_conformance_tests!(store);
//! ```
#![allow(missing_docs, clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::sync::Arc;

use time::{Duration, OffsetDateTime, macros::datetime};

use crate::error::Error;
use crate::ids::{AgentId, ContactId, ConversationId, MessageId, TenantId};
use crate::mode::Mode;
use crate::model::*;
use crate::store::*;

mod credentials;
mod inboxes;
mod mail;
mod presence;
mod reports;
mod retention;
mod store;
mod webhooks;

pub use credentials::*;
pub use inboxes::*;
pub use mail::*;
pub use presence::*;
pub use reports::*;
pub use retention::*;
pub use store::*;
pub use webhooks::*;

type S = Arc<dyn Store>;

const T0: OffsetDateTime = datetime!(2026-01-01 10:00 UTC);

fn at(secs: i64) -> OffsetDateTime {
    T0 + Duration::seconds(secs)
}

fn id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// A fresh tenant.
pub async fn tenant(store: &S) -> TenantId {
    let t = Tenant {
        id: TenantId(id()),
        name: "Acme".into(),
        settings: TenantSettings::default(),
        settings_version: 0,
        created_at: T0,
    };
    store.insert_tenant(&t).await.unwrap();
    t.id
}

/// A fresh contact with the given e-mail, claimed (not verified).
pub async fn contact(store: &S, tenant: TenantId, email: Option<&str>) -> Contact {
    let c = Contact {
        id: ContactId(id()),
        tenant_id: tenant,
        name: Some("Jo Customer".into()),
        email: email.map(str::to_owned),
        email_verified: false,
        phone: Some("+62 812".into()),
        address: None,
        external_id: None,
        metadata: BTreeMap::from([("page_url".into(), "https://shop.example/cart".into())]),
        created_at: T0,
        updated_at: T0,
    };
    store.insert_contact(&c).await.unwrap();
    c
}

/// A fresh agent.
pub async fn agent(
    store: &S,
    tenant: TenantId,
    name: &str,
    role: Role,
    departments: &[&str],
) -> Agent {
    let a = Agent {
        id: AgentId(id()),
        tenant_id: tenant,
        name: name.into(),
        email: format!("{}@desk.example", name.to_lowercase().replace(' ', ".")),
        role,
        availability: Availability::Online,
        capacity: None,
        departments: departments.iter().map(|d| d.to_string()).collect(),
        active: true,
        created_at: T0,
        updated_at: T0,
    };
    store.insert_agent(&a).await.unwrap();
    a
}

/// A conversation value (not stored) in `mode`, updated at `at(secs)`.
pub fn conversation_value(
    tenant: TenantId,
    contact: ContactId,
    mode: Mode,
    secs: i64,
) -> Conversation {
    Conversation::new(ConversationId(id()), tenant, contact, mode, at(secs))
}

/// Stores a conversation built by `edit` from [`conversation_value`].
pub async fn conversation(
    store: &S,
    tenant: TenantId,
    contact: ContactId,
    edit: impl FnOnce(&mut Conversation),
) -> Conversation {
    let mut c = conversation_value(tenant, contact, Mode::Bot, 0);
    edit(&mut c);
    store
        .create_conversation(&c, Vec::new())
        .await
        .unwrap()
        .conversation
}

/// A new message value.
pub fn message(
    c: &Conversation,
    sender: Sender,
    kind: MessageKind,
    body: &str,
    secs: i64,
) -> NewMessage {
    NewMessage {
        id: MessageId(id()),
        tenant_id: c.tenant_id,
        conversation_id: c.id,
        sender,
        kind,
        body: body.into(),
        attachments: Vec::new(),
        reply_to: None,
        client_message_id: None,
        entities: Vec::new(),
        metadata: BTreeMap::new(),
        created_at: at(secs),
    }
}

fn text(c: &Conversation, sender: Sender, body: &str, secs: i64) -> NewMessage {
    message(c, sender, MessageKind::Text, body, secs)
}

async fn all_events(store: &S, tenant: TenantId) -> Vec<Event> {
    store.events_since(tenant, 0, 100_000).await.unwrap()
}

fn assert_gap_free(events: &[Event]) {
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(seqs, expected, "event sequences must be gap-free from 1");
}

/// The tenant's last event sequence: the log is gap-free from 1, so its length.
async fn head(store: &S, tenant: TenantId) -> u64 {
    all_events(store, tenant).await.len() as u64
}

/// An event the suite expects a write to log, before the store numbers it.
struct Logged {
    conversation: Option<ConversationId>,
    staff_only: bool,
    at: OffsetDateTime,
    payload: EventPayload,
}

/// Everyone may see it.
fn public(conversation: ConversationId, at: OffsetDateTime, payload: EventPayload) -> Logged {
    Logged {
        conversation: Some(conversation),
        staff_only: false,
        at,
        payload,
    }
}

/// Only staff may see it.
fn staff_only(
    conversation: Option<ConversationId>,
    at: OffsetDateTime,
    payload: EventPayload,
) -> Logged {
    Logged {
        conversation,
        staff_only: true,
        at,
        payload,
    }
}

/// A write that ran when the tenant's log ended at `head` returned `returned`: these must
/// be exactly `expected`, in order, numbered from `head + 1`, and the log must replay the
/// very same events after `head` and nothing else, so what a client is told live and what
/// it reads on resume agree.
async fn assert_logged(
    store: &S,
    tenant: TenantId,
    head: u64,
    returned: &[Event],
    expected: Vec<Logged>,
) {
    let expected: Vec<Event> = expected
        .into_iter()
        .zip(head + 1..)
        .map(|(e, seq)| Event {
            seq,
            tenant_id: tenant,
            conversation_id: e.conversation,
            staff_only: e.staff_only,
            at: e.at,
            payload: e.payload,
        })
        .collect();
    assert_eq!(returned, expected, "the events the write returned");
    assert_eq!(
        store.events_since(tenant, head, 100_000).await.unwrap(),
        expected,
        "the events the log replays after the write"
    );
}
