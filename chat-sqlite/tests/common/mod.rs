//! Fixtures shared by the chat-sqlite tests: whole domain values with every field set.

#![allow(dead_code)]

pub mod child;
pub mod scan;

use std::collections::BTreeMap;
use std::sync::Arc;

use chat_core::{
    Agent, AgentId, Availability, Contact, ContactId, Conversation, ConversationId, MessageId,
    MessageKind, Mode, NewMessage, Role, Sender, Tenant, TenantId, TenantSettings,
};
use chat_sqlite::SqliteStore;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

/// A fresh store on a file in a new temp dir (kept alive by the returned guard).
pub fn store() -> (Arc<SqliteStore>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("chat.db")).expect("open store");
    (Arc::new(store), dir)
}

/// A tenant (1), its contact Ann (2) and one conversation of hers (3), stored.
pub async fn one_conversation(store: &SqliteStore) -> Conversation {
    use chat_core::Store;
    let t = tenant(1);
    store.insert_tenant(&t).await.unwrap();
    let k = contact(t.id, 2, "Ann", Some("ann@example.com"));
    store.insert_contact(&k).await.unwrap();
    let c = conversation(t.id, 3, k.id, 0);
    store
        .create_conversation(&c, vec![])
        .await
        .unwrap()
        .conversation
}

/// Deterministic, distinct ids: `n` in the low bytes of a v7-shaped UUID.
pub fn id(n: u64) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[0..8].copy_from_slice(&0x0190_0000_0000_7000u64.to_be_bytes());
    bytes[8..16].copy_from_slice(&n.to_be_bytes());
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

/// A point in time `secs` seconds after the test epoch.
pub fn at(secs: i64) -> OffsetDateTime {
    datetime!(2026-01-01 10:00 UTC) + time::Duration::seconds(secs)
}

pub fn tenant(n: u64) -> Tenant {
    Tenant {
        id: TenantId(id(n)),
        name: format!("Tenant {n}"),
        settings: TenantSettings::default(),
        settings_version: 0,
        created_at: at(0),
    }
}

pub fn contact(tenant: TenantId, n: u64, name: &str, email: Option<&str>) -> Contact {
    Contact {
        id: ContactId(id(n)),
        tenant_id: tenant,
        name: Some(name.to_owned()),
        email: email.map(str::to_owned),
        email_verified: false,
        phone: None,
        address: None,
        external_id: None,
        metadata: BTreeMap::new(),
        created_at: at(0),
        updated_at: at(0),
    }
}

pub fn agent(tenant: TenantId, n: u64, name: &str, email: &str, departments: &[&str]) -> Agent {
    Agent {
        id: AgentId(id(n)),
        tenant_id: tenant,
        name: name.to_owned(),
        email: email.to_owned(),
        role: Role::Agent,
        availability: Availability::Online,
        capacity: None,
        departments: departments.iter().map(|d| d.to_string()).collect(),
        active: true,
        created_at: at(0),
        updated_at: at(1),
    }
}

pub fn conversation(tenant: TenantId, n: u64, contact: ContactId, created: i64) -> Conversation {
    Conversation {
        version: 0,
        ..Conversation::new(
            ConversationId(id(n)),
            tenant,
            contact,
            Mode::Bot,
            at(created),
        )
    }
}

pub fn message(
    c: &Conversation,
    n: u64,
    sender: Sender,
    kind: MessageKind,
    body: &str,
    secs: i64,
) -> NewMessage {
    NewMessage {
        id: MessageId(id(n)),
        tenant_id: c.tenant_id,
        conversation_id: c.id,
        sender,
        kind,
        body: body.to_owned(),
        attachments: Vec::new(),
        reply_to: None,
        client_message_id: None,
        entities: Vec::new(),
        metadata: BTreeMap::new(),
        created_at: at(secs),
    }
}

pub fn text(c: &Conversation, n: u64, sender: Sender, body: &str, secs: i64) -> NewMessage {
    message(c, n, sender, MessageKind::Text, body, secs)
}
