//! The memory store's tenant export: its records as the engine's own types, in a fixed
//! order so that two exports of the same state are the same bytes.

use serde::Serialize;
use serde_json::{Value, json};

use super::State;
use crate::error::Result;
use crate::export::{ExportHeader, ExportOptions};
use crate::ids::TenantId;

/// The memory store has no schema migrations: its layout is the engine's types.
pub(super) const MEMORY_SCHEMA: u32 = 1;

/// Every line of the tenant's export, header and end included. The memory store holds
/// everything in memory already: the lines are made under its lock, from one state.
pub(super) fn export_lines(
    s: &State,
    tenant: TenantId,
    options: ExportOptions,
) -> Result<Vec<String>> {
    let mut rows: Vec<String> = Vec::new();
    let mut push = |kind: &str, value: Value| -> Result<()> {
        rows.push(line(kind, value)?);
        Ok(())
    };
    if let Some(t) = s.tenants.get(&tenant) {
        push("tenants", to_value(t)?)?;
    }
    let mut agents: Vec<_> = s
        .agents
        .values()
        .filter(|a| a.tenant_id == tenant)
        .collect();
    agents.sort_by_key(|a| a.id);
    for a in &agents {
        push("agents", to_value(a)?)?;
    }
    if options.secrets {
        for a in &agents {
            if let Some(c) = s.credentials.get(&a.id) {
                push(
                    "credentials",
                    json!({"agent_id": a.id, "password_hash": c.password_hash, "token_version": c.token_version}),
                )?;
            }
        }
    }
    let mut contacts: Vec<_> = s
        .contacts
        .values()
        .filter(|c| c.tenant_id == tenant)
        .collect();
    contacts.sort_by_key(|c| c.id);
    for c in &contacts {
        push("contacts", to_value(c)?)?;
    }
    let mut accounts: Vec<_> = s
        .accounts
        .iter()
        .filter(|(_, (a, _))| a.tenant_id == tenant)
        .collect();
    accounts.sort_by_key(|(id, _)| **id);
    for (_, (account, hash)) in accounts {
        let hash = if options.secrets { hash.as_str() } else { "" };
        push(
            "accounts",
            json!({"account": account, "password_hash": hash}),
        )?;
    }
    if options.secrets {
        let mut visitors: Vec<_> = s
            .visitor_tokens
            .values()
            .filter(|t| t.tenant_id == tenant)
            .collect();
        visitors.sort_by(|a, b| a.digest.cmp(&b.digest));
        for t in visitors {
            push("visitor_tokens", to_value(t)?)?;
        }
        let mut bots: Vec<_> = s
            .bot_tokens
            .values()
            .filter(|t| t.tenant_id == tenant)
            .collect();
        bots.sort_by(|a, b| a.digest.cmp(&b.digest));
        for t in bots {
            push("bot_tokens", to_value(t)?)?;
        }
    }
    let mut conversations: Vec<_> = s
        .conversations
        .values()
        .filter(|c| c.tenant_id == tenant)
        .collect();
    conversations.sort_by_key(|c| c.id);
    for c in &conversations {
        push("conversations", to_value(c)?)?;
    }
    for c in &conversations {
        for m in s.messages.get(&c.id).into_iter().flatten() {
            push("messages", to_value(m)?)?;
        }
    }
    let mut cursors: Vec<_> = s
        .cursors
        .values()
        .filter(|r| conversations.iter().any(|c| c.id == r.conversation_id))
        .collect();
    cursors.sort_by_key(|r| (r.conversation_id, super::reader_key(r.reader)));
    for r in cursors {
        push("read_cursors", to_value(r)?)?;
    }
    for (conversation, at) in &s.reopens {
        if conversations.iter().any(|c| c.id == *conversation) {
            push(
                "conversation_reopens",
                json!({"conversation_id": conversation, "at": at.unix_timestamp_nanos().to_string()}),
            )?;
        }
    }
    for e in s.events.get(&tenant).into_iter().flatten() {
        push("events", to_value(e)?)?;
    }
    let mut canned: Vec<_> = s
        .canned
        .values()
        .filter(|c| c.tenant_id == tenant)
        .collect();
    canned.sort_by_key(|c| c.id);
    for c in canned {
        push("canned_responses", to_value(c)?)?;
    }
    for m in s.mentions.iter().filter(|m| m.tenant_id == tenant) {
        push("mentions", to_value(m)?)?;
    }
    for w in s.webhooks.iter().filter(|w| w.tenant_id == tenant) {
        let secret = if options.secrets {
            w.secret.0.as_str()
        } else {
            ""
        };
        push(
            "webhooks",
            json!({
                "id": w.id, "tenant_id": w.tenant_id, "url": w.url, "events": w.events,
                "secret": secret, "state": w.state,
                "failing_since": w.failing_since.map(|t| t.unix_timestamp_nanos().to_string()),
                "created_at": w.created_at.unix_timestamp_nanos().to_string(),
                "updated_at": w.updated_at.unix_timestamp_nanos().to_string(),
            }),
        )?;
    }
    for d in s.deliveries.values().filter(|d| d.tenant_id == tenant) {
        push(
            "webhook_deliveries",
            json!({
                "webhook_id": d.webhook_id, "seq": d.seq, "tenant_id": d.tenant_id,
                "conversation_id": d.conversation_id, "kind": d.kind, "state": d.state,
                "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at.unix_timestamp_nanos().to_string(),
                "last_status": d.last_status, "last_error": d.last_error,
                "response_ms": d.response_ms,
                "created_at": d.created_at.unix_timestamp_nanos().to_string(),
                "delivered_at": d.delivered_at.map(|t| t.unix_timestamp_nanos().to_string()),
            }),
        )?;
    }
    for m in s.mails.iter().filter(|m| m.tenant_id == tenant) {
        push(
            "mail_outbox",
            json!({
                "id": m.id, "tenant_id": m.tenant_id, "conversation_id": m.conversation_id,
                "kind": m.kind, "requested_by": m.requested_by, "recipient": m.to,
                "subject": m.subject, "text_body": m.text, "html_body": m.html,
                "message_id": m.message_id, "refs": m.references, "state": m.state,
                "attempts": m.attempts,
                "next_attempt_at": m.next_attempt_at.unix_timestamp_nanos().to_string(),
                "last_error": m.last_error,
                "created_at": m.created_at.unix_timestamp_nanos().to_string(),
                "sent_at": m.sent_at.map(|t| t.unix_timestamp_nanos().to_string()),
            }),
        )?;
    }
    let records = rows.len() as u64;
    let mut lines = Vec::with_capacity(rows.len() + 2);
    lines.push(ExportHeader::new("memory", MEMORY_SCHEMA, tenant, options).line());
    lines.extend(rows);
    lines.push(crate::export::export_end_line(records));
    Ok(lines)
}

fn to_value(v: &impl Serialize) -> Result<Value> {
    serde_json::to_value(v).map_err(crate::Error::storage)
}

/// `{"kind": kind, "row": value}`.
fn line(kind: &str, value: Value) -> Result<String> {
    serde_json::to_string(&json!({ "kind": kind, "row": value })).map_err(crate::Error::storage)
}
