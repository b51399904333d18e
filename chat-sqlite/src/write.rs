//! The write operations, run by the writer thread inside its transaction. Each makes the
//! same checks with the same errors as the in-memory reference store
//! ([`chat_core::memory::MemoryStore`]); what a write then changes and which events it
//! logs, in which order, come from [`chat_core::write`] and [`NewEvent`], so this file
//! only stores them.

use std::sync::LazyLock;

use chat_core::store::{Appended, Committed, ContactErasure, ConversationUpdate};
use chat_core::write::{ConversationWrite, MessageWrite, ReadMove, edit_message};
use chat_core::{
    Agent, AgentId, CannedResponse, Contact, ContactId, Conversation, ConversationChange,
    ConversationId, Error, Event, Mention, Message, MessageKind, NewEvent, NewMessage, ReadCursor,
    Reader, Result, Tenant, TenantId,
};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use crate::codec::{
    ACTIVITY_ASSIGNMENTS, Activity, MESSAGE_COLUMNS, ReportColumns, conversation_columns,
    conversation_from_row, from_json, int, message_extra, message_from_row, ns, ns_opt,
    preview_metadata, priority_rank, reader_key, sender_key, to_json,
};
use crate::error::Db;
use crate::writer::Session;

fn exists(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<bool> {
    conn.prepare_cached(sql).db()?.exists(params).db()
}

/// Appends an event with the tenant's next sequence.
pub(crate) fn append_event(s: &mut Session<'_>, event: NewEvent) -> Result<Event> {
    let tenant = event.tenant_id;
    // The tenant's last sequence as of the open transaction: from the writer's cache, which
    // forgets it if this operation rolls back (so the log stays gap-free), or else a seek
    // on the primary key.
    let last = match s.cache.event_seq(tenant) {
        Some(last) => last,
        None => s
            .prepare_cached("SELECT coalesce(max(seq), 0) FROM events WHERE tenant_id = ?1")
            .db()?
            .query_row([tenant.0], |row| row.get::<_, i64>(0))
            .db()? as u64,
    };
    let event = event.into_event(last + 1);
    crate::events::insert(s, &event)?;
    // Most tenants have no webhook: the outbox statement (a statement step and a seek per
    // event) is skipped for them while the writer's cache knows it.
    let has_webhooks = match s.cache.has_webhooks(tenant) {
        Some(has) => has,
        None => {
            let has = s
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM webhooks WHERE tenant_id = ?1)")
                .db()?
                .query_row([tenant.0], |row| row.get::<_, bool>(0))
                .db()?;
            s.cache.set_has_webhooks(tenant, has);
            has
        }
    };
    if !has_webhooks {
        s.cache.set_event_seq(tenant, event.seq);
        return Ok(event);
    }
    // The outbox: one delivery per webhook that follows this kind, in this transaction.
    s.prepare_cached(
        "INSERT INTO webhook_deliveries (webhook_id, seq, tenant_id, conversation_id, kind, \
             state, attempts, next_attempt_ns, created_ns) \
         SELECT id, ?2, ?1, ?3, ?4, 'pending', 0, ?5, ?5 FROM webhooks \
         WHERE tenant_id = ?1 AND (kinds = '' OR instr(kinds, ' ' || ?4 || ' ') > 0) \
           AND ?4 NOT IN ('mentioned', 'canned_response_updated', 'canned_response_deleted', \
                          'credentials_changed')",
    )
    .db()?
    .execute(params![
        tenant.0,
        int(event.seq),
        event.conversation_id.map(|c| c.0),
        event.payload.kind(),
        ns(event.at)?
    ])
    .db()?;
    s.cache.set_event_seq(tenant, event.seq);
    Ok(event)
}

pub(crate) fn insert_tenant(conn: &Connection, tenant: &Tenant) -> Result<()> {
    if exists(conn, "SELECT 1 FROM tenants WHERE id = ?1", [tenant.id.0])? {
        return Err(Error::duplicate("tenant exists"));
    }
    conn.prepare_cached("INSERT INTO tenants (id, data) VALUES (?1, ?2)")
        .db()?
        .execute(params![tenant.id.0, to_json(tenant)?])
        .db()?;
    Ok(())
}

pub(crate) fn update_tenant(conn: &Connection, tenant: &Tenant) -> Result<()> {
    let changed = conn
        .prepare_cached("UPDATE tenants SET data = ?2 WHERE id = ?1")
        .db()?
        .execute(params![tenant.id.0, to_json(tenant)?])
        .db()?;
    if changed == 0 {
        Err(Error::NotFound("tenant"))
    } else {
        Ok(())
    }
}

pub(crate) fn update_tenant_settings(
    s: &mut Session<'_>,
    tenant: &Tenant,
    at: OffsetDateTime,
) -> Result<Event> {
    // The version is read inside the writer's transaction, so the comparison and the
    // write are one step: nothing can land between them.
    let stored: Option<i64> = s
        .prepare_cached(
            "SELECT coalesce(json_extract(data, '$.settings_version'), 0) FROM tenants WHERE id = ?1",
        )
        .db()?
        .query_row(params![tenant.id.0], |row| row.get(0))
        .optional()
        .db()?;
    let stored = stored.ok_or(Error::NotFound("tenant"))? as u64;
    if stored.checked_add(1) != Some(tenant.settings_version) {
        return Err(Error::version_race(
            "settings",
            tenant.settings_version.saturating_sub(1),
            stored,
        ));
    }
    update_tenant(s, tenant)?;
    append_event(s, NewEvent::settings_updated(tenant, at))
}

fn email_lc(email: &str) -> String {
    email.to_ascii_lowercase()
}

/// Whether another contact of the tenant holds `contact`'s e-mail verified. Only
/// verified e-mails are unique: claims typed by visitors may repeat.
fn verified_email_taken(conn: &Connection, contact: &Contact) -> Result<bool> {
    let Some(email) = contact.email.as_deref().filter(|_| contact.email_verified) else {
        return Ok(false);
    };
    exists(
        conn,
        "SELECT 1 FROM contacts WHERE tenant_id = ?1 AND email_lc = ?2 AND email_verified = 1 \
         AND id <> ?3",
        params![contact.tenant_id.0, email_lc(email), contact.id.0],
    )
}

pub(crate) fn insert_contact(conn: &Connection, contact: &Contact) -> Result<()> {
    if exists(conn, "SELECT 1 FROM contacts WHERE id = ?1", [contact.id.0])? {
        return Err(Error::duplicate("contact exists"));
    }
    if verified_email_taken(conn, contact)? {
        return Err(Error::duplicate("verified contact e-mail taken"));
    }
    conn.prepare_cached(
        "INSERT INTO contacts (id, tenant_id, name, email_lc, email_verified, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .db()?
    .execute(params![
        contact.id.0,
        contact.tenant_id.0,
        contact.name,
        contact.email.as_deref().map(email_lc),
        contact.email_verified,
        to_json(contact)?
    ])
    .db()?;
    Ok(())
}

pub(crate) fn update_contact(conn: &Connection, contact: &Contact) -> Result<()> {
    if !exists(
        conn,
        "SELECT 1 FROM contacts WHERE id = ?1 AND tenant_id = ?2",
        params![contact.id.0, contact.tenant_id.0],
    )? {
        return Err(Error::NotFound("contact"));
    }
    if verified_email_taken(conn, contact)? {
        return Err(Error::duplicate("verified contact e-mail taken"));
    }
    conn.prepare_cached(
        "UPDATE contacts SET name = ?2, email_lc = ?3, email_verified = ?4, data = ?5 WHERE id = ?1",
    )
    .db()?
    .execute(params![
        contact.id.0,
        contact.name,
        contact.email.as_deref().map(email_lc),
        contact.email_verified,
        to_json(contact)?
    ])
    .db()?;
    Ok(())
}

pub(crate) fn merge_contact(
    s: &mut Session<'_>,
    into: &Contact,
    from: ContactId,
    at: OffsetDateTime,
) -> Result<Event> {
    let conn: &Connection = s;
    for id in [into.id, from] {
        if !exists(
            conn,
            "SELECT 1 FROM contacts WHERE id = ?1 AND tenant_id = ?2",
            params![id.0, into.tenant_id.0],
        )? {
            return Err(Error::NotFound("contact"));
        }
    }
    if exists(
        conn,
        "SELECT 1 FROM conversations WHERE contact_id = ?1",
        [from.0],
    )? {
        return Err(Error::Conflict(
            "the merged contact still has conversations".into(),
        ));
    }
    conn.prepare_cached("DELETE FROM contacts WHERE id = ?1")
        .db()?
        .execute([from.0])
        .db()?;
    update_contact(conn, into)?;
    append_event(s, NewEvent::contact_merged(into, from, at))
}

/// Erases a contact (see `Store::erase_contact`). The rows go by `DELETE` (messages, tags,
/// cursors, counts and reopen marks by cascade; the search file follows the
/// `conversation_deleted` events); `secure_delete` (src/connection.rs) zeroes their bytes.
/// The event log has no index on the conversation: the scrub reads the tenant's log once,
/// parsing only the events of the erased conversations and the contact merges.
pub(crate) fn erase_contact(s: &mut Session<'_>, erasure: &ContactErasure) -> Result<Vec<Event>> {
    let conn: &Connection = s;
    let (tenant, id) = (erasure.tenant, erasure.contact);
    let contact: Contact = match conn
        .prepare_cached("SELECT data FROM contacts WHERE id = ?1 AND tenant_id = ?2")
        .db()?
        .query_row(params![id.0, tenant.0], |r| r.get::<_, String>(0))
        .optional()
        .db()?
    {
        Some(data) => from_json("contact", &data)?,
        None => return Err(Error::NotFound("contact")),
    };
    let mut stmt = conn
        .prepare_cached("SELECT id FROM conversations WHERE contact_id = ?1 AND tenant_id = ?2")
        .db()?;
    let held: Vec<ConversationId> = stmt
        .query_map(params![id.0, tenant.0], |r| r.get(0).map(ConversationId))
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;
    drop(stmt);
    if held.iter().any(|c| !erasure.conversations.contains(c)) {
        return Err(Error::Conflict(
            "the contact has a conversation the erasure does not name".into(),
        ));
    }
    for c in &held {
        // Out in full first, so the scrub below finds them by conversation.
        crate::events::inline_conversation(conn, *c)?;
        conn.prepare_cached("DELETE FROM conversations WHERE id = ?1")
            .db()?
            .execute([c.0])
            .db()?;
    }
    // Conversations of the contact deleted before, known only to the log: their events
    // name the contact's id (as text) in the conversation they carry.
    let mut erasure = erasure.clone();
    let mut stmt = conn
        .prepare_cached(
            "SELECT data FROM events WHERE tenant_id = ?1 AND conversation_id IS NOT NULL \
               AND instr(data, ?2) > 0",
        )
        .db()?;
    let named: Vec<String> = stmt
        .query_map(params![tenant.0, id.0.hyphenated().to_string()], |r| {
            r.get(0)
        })
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;
    drop(stmt);
    for data in named {
        let event: Event = from_json("event", &data)?;
        if let Some(c) = erasure.conversation_of_contact(&event)
            && !erasure.conversations.contains(&c)
        {
            erasure.conversations.push(c);
        }
    }
    let erasure = &erasure;
    let ids: Vec<String> = erasure
        .conversations
        .iter()
        .map(|c| c.0.simple().to_string())
        .collect();
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, data FROM events WHERE tenant_id = ?1 AND \
               (conversation_id IN (SELECT unhex(value) FROM json_each(?2)) \
                OR (conversation_id IS NULL AND instr(data, '\"type\":\"contact_merged\"') > 0))",
        )
        .db()?;
    let found: Vec<(i64, String)> = stmt
        .query_map(params![tenant.0, to_json(&ids)?], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;
    drop(stmt);
    for (seq, data) in found {
        let mut event: Event = from_json("event", &data)?;
        if let Some(payload) = erasure.scrub(&event) {
            event.payload = payload;
            conn.prepare_cached("UPDATE events SET data = ?3 WHERE tenant_id = ?1 AND seq = ?2")
                .db()?
                .execute(params![tenant.0, seq, to_json(&event)?])
                .db()?;
        }
    }
    update_contact(conn, &contact.erased(erasure.at))?;
    // The login names and their digests go with the account (ON DELETE CASCADE).
    conn.prepare_cached("DELETE FROM accounts WHERE contact_id = ?1")
        .db()?
        .execute([id.0])
        .db()?;
    conn.prepare_cached("DELETE FROM visitor_tokens WHERE tenant_id = ?1 AND contact_id = ?2")
        .db()?
        .execute(params![tenant.0, id.0])
        .db()?;
    let mut events = Vec::new();
    for c in &held {
        s.cache.forget_conversation(*c);
        events.push(append_event(
            s,
            NewEvent::conversation_deleted(tenant, *c, erasure.at),
        )?);
    }
    events.push(append_event(
        s,
        NewEvent::contact_erased(tenant, id, erasure.erased_by, held.len() as u64, erasure.at),
    )?);
    Ok(events)
}

fn agent_email_taken(conn: &Connection, agent: &Agent) -> Result<bool> {
    exists(
        conn,
        "SELECT 1 FROM agents WHERE tenant_id = ?1 AND email_lc = ?2 AND id <> ?3",
        params![agent.tenant_id.0, email_lc(&agent.email), agent.id.0],
    )
}

pub(crate) fn insert_agent(s: &mut Session<'_>, agent: &Agent) -> Result<Event> {
    let conn: &Connection = s;
    if exists(conn, "SELECT 1 FROM agents WHERE id = ?1", [agent.id.0])?
        || agent_email_taken(conn, agent)?
    {
        return Err(Error::duplicate("agent e-mail taken"));
    }
    conn.prepare_cached(
        "INSERT INTO agents (id, tenant_id, name, email_lc, active, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .db()?
    .execute(params![agent.id.0, agent.tenant_id.0, agent.name, email_lc(&agent.email), agent.active, to_json(agent)?])
    .db()?;
    append_event(s, NewEvent::agent_updated(agent))
}

pub(crate) fn update_agent(s: &mut Session<'_>, agent: &Agent) -> Result<Event> {
    let conn: &Connection = s;
    if !exists(
        conn,
        "SELECT 1 FROM agents WHERE id = ?1 AND tenant_id = ?2",
        params![agent.id.0, agent.tenant_id.0],
    )? {
        return Err(Error::NotFound("agent"));
    }
    if agent_email_taken(conn, agent)? {
        return Err(Error::duplicate("agent e-mail taken"));
    }
    conn.prepare_cached(
        "UPDATE agents SET name = ?2, email_lc = ?3, active = ?4, data = ?5 WHERE id = ?1",
    )
    .db()?
    .execute(params![
        agent.id.0,
        agent.name,
        email_lc(&agent.email),
        agent.active,
        to_json(agent)?
    ])
    .db()?;
    append_event(s, NewEvent::agent_updated(agent))
}

/// The stored conversation as of the open transaction, or [`Error::NotFound`]. It comes
/// out of the writer's cache when it is there; the caller puts it back (changed or not)
/// with [`Cache::put_conversation`](crate::writer::Cache::put_conversation) once it has
/// written it.
fn load_conversation(
    s: &mut Session<'_>,
    tenant: TenantId,
    id: ConversationId,
) -> Result<Conversation> {
    if let Some(conversation) = s.cache.take_conversation(id) {
        if conversation.tenant_id == tenant {
            return Ok(conversation);
        }
        s.cache.put_conversation(conversation);
        return Err(Error::NotFound("conversation"));
    }
    let sql = concat!(
        "SELECT ",
        conversation_columns!(),
        " FROM conversations WHERE id = ?1 AND tenant_id = ?2"
    );
    let mut stmt = s.prepare_cached(sql).db()?;
    let mut rows = stmt.query(params![id.0, tenant.0]).db()?;
    match rows.next().db()? {
        Some(row) => conversation_from_row(row),
        None => Err(Error::NotFound("conversation")),
    }
}

/// Writes every column of a conversation (insert or full replace).
fn put_conversation(conn: &Connection, c: &Conversation, insert: bool) -> Result<()> {
    let sql = if insert {
        "INSERT INTO conversations (id, updated_at, last_seq, version, message_count, unread_for_agent, \
         unread_for_customer, first_response_at, last_message_at, last_customer_message_at, \
         last_agent_message_at, preview_sender, preview_body, preview_at, tenant_id, contact_id, channel, mode, \
         priority, department, assigned_agent_id, pinned, title, queued_at, data, created_at, closed_at, \
         rated_at, rating_score, preview_metadata) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, \
         ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)"
            .to_owned()
    } else {
        format!(
            "UPDATE conversations SET {ACTIVITY_ASSIGNMENTS}, tenant_id = ?15, contact_id = ?16, channel = ?17, \
             mode = ?18, priority = ?19, department = ?20, assigned_agent_id = ?21, pinned = ?22, title = ?23, \
             queued_at = ?24, data = ?25, created_at = ?26, closed_at = ?27, rated_at = ?28, \
             rating_score = ?29, preview_metadata = ?30 WHERE id = ?1"
        )
    };
    let activity = Activity::of(c)?;
    let data = to_json(c)?;
    let rest = params![
        c.tenant_id.0,
        c.contact_id.0,
        c.channel.as_str(),
        c.mode.as_str(),
        priority_rank(c.priority),
        c.department,
        c.assigned_agent_id.map(|a| a.0),
        c.pinned,
        c.title,
        ns_opt(c.queued_at)?,
        data
    ];
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&c.id.0];
    values.extend(activity.params());
    values.extend_from_slice(rest);
    let report = ReportColumns::of(c)?;
    values.extend(report.params());
    let preview = preview_metadata(c)?;
    values.push(&preview);
    conn.prepare_cached(&sql)
        .db()?
        .execute(values.as_slice())
        .db()?;
    Ok(())
}

/// Rewrites the tag and participant rows when they differ from `old`'s.
fn put_side_tables(conn: &Connection, c: &Conversation, old: Option<&Conversation>) -> Result<()> {
    if old.is_none_or(|o| o.tags != c.tags) {
        if old.is_some() {
            conn.prepare_cached("DELETE FROM conversation_tags WHERE conversation_id = ?1")
                .db()?
                .execute([c.id.0])
                .db()?;
        }
        let mut insert = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO conversation_tags (conversation_id, tag) VALUES (?1, ?2)",
            )
            .db()?;
        for tag in &c.tags {
            insert.execute(params![c.id.0, tag]).db()?;
        }
    }
    if old.is_none_or(|o| o.participants != c.participants) {
        if old.is_some() {
            conn.prepare_cached("DELETE FROM conversation_participants WHERE conversation_id = ?1")
                .db()?
                .execute([c.id.0])
                .db()?;
        }
        let mut insert = conn
            .prepare_cached("INSERT OR IGNORE INTO conversation_participants (conversation_id, agent_id) VALUES (?1, ?2)")
            .db()?;
        for agent in &c.participants {
            insert.execute(params![c.id.0, agent.0]).db()?;
        }
    }
    Ok(())
}

/// Inserts a message decided by [`chat_core::write`].
fn insert_message(conn: &Connection, message: &Message) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO messages (id, tenant_id, conversation_id, seq, sender, kind, body, client_message_id, reply_to, \
         created_at, edited_at, deleted_at, extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .db()?
    .execute(params![
        message.id.0,
        message.tenant_id.0,
        message.conversation_id.0,
        int(message.seq),
        sender_key(message.sender),
        message.kind.as_str(),
        message.body,
        message.client_message_id,
        message.reply_to.map(|r| r.0),
        ns(message.created_at)?,
        ns_opt(message.edited_at)?,
        ns_opt(message.deleted_at)?,
        message_extra(message)?
    ])
    .db()?;
    Ok(())
}

/// The statement of [`put_activity`]: every activity column but `first_response_at`,
/// which an index of the reports holds (schema version 9): set on every message, it would
/// rewrite that index entry every time; apart, it is written once, by the first agent
/// reply. Built once: it is run for every posted message.
static ACTIVITY_UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE conversations SET {}, preview_metadata = ?15 WHERE id = ?1",
        ACTIVITY_ASSIGNMENTS.replace("first_response_at = ?8, ", "")
    )
});

/// Writes what [`Conversation::record_message`] moved after a posted message. Only the
/// activity columns (schema version 4), not the conversation's JSON: the indexes on the
/// other columns are left alone and no 1 KB document is re-encoded. `first_response_at`
/// only when the message moved it (`first_response_moved`, judged against the
/// conversation as this transaction read it): a second statement on every post otherwise.
fn put_activity(
    conn: &Connection,
    conversation: &Conversation,
    first_response_moved: bool,
) -> Result<()> {
    let activity = Activity::of(conversation)?;
    let preview = preview_metadata(conversation)?;
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&conversation.id.0];
    values.extend(activity.params());
    values.push(&preview);
    conn.prepare_cached(&ACTIVITY_UPDATE)
        .db()?
        .execute(values.as_slice())
        .db()?;
    if first_response_moved {
        conn.prepare_cached(
            "UPDATE conversations SET first_response_at = ?2 WHERE id = ?1 AND first_response_at IS NOT ?2",
        )
        .db()?
        .execute(params![
            conversation.id.0,
            ns_opt(conversation.first_response_at)?
        ])
        .db()?;
    }
    Ok(())
}

pub(crate) fn create_conversation(
    s: &mut Session<'_>,
    conversation: &Conversation,
    messages: Vec<NewMessage>,
) -> Result<Committed> {
    let conn: &Connection = s;
    if exists(
        conn,
        "SELECT 1 FROM conversations WHERE id = ?1",
        [conversation.id.0],
    )? {
        return Err(Error::duplicate("conversation exists"));
    }
    if !exists(
        conn,
        "SELECT 1 FROM contacts WHERE id = ?1 AND tenant_id = ?2",
        params![conversation.contact_id.0, conversation.tenant_id.0],
    )? {
        return Err(Error::NotFound("contact"));
    }
    let write = ConversationWrite::create(conversation, messages)?;
    // One row write with the first messages already counted; the events still show the
    // conversation as it was opened.
    put_conversation(conn, &write.conversation, true)?;
    put_side_tables(conn, &write.conversation, None)?;
    for message in &write.messages {
        insert_message(conn, message)?;
    }
    let committed = write.commit(|event| append_event(s, event))?;
    s.cache.put_conversation(committed.conversation.clone());
    Ok(committed)
}

pub(crate) fn update_conversation(
    s: &mut Session<'_>,
    update: ConversationUpdate,
) -> Result<Committed> {
    let new = &update.conversation;
    let current = load_conversation(s, new.tenant_id, new.id)?;
    if current.version != new.version {
        let error = Error::version_race("conversation", new.version, current.version);
        s.cache.put_conversation(current);
        return Err(error);
    }
    let reopened = matches!(update.change, ConversationChange::Reopened);
    let write = match ConversationWrite::update(update) {
        Ok(write) => write,
        Err(error) => {
            s.cache.put_conversation(current);
            return Err(error);
        }
    };
    // The log keeps saying what it said about the conversation (src/events.rs).
    crate::events::inline_conversation_event(s, write.conversation.id)?;
    put_conversation(s, &write.conversation, false)?;
    put_side_tables(s, &write.conversation, Some(&current))?;
    if reopened {
        s.prepare_cached(
            "INSERT INTO conversation_reopens (conversation_id, tenant_id, at) VALUES (?1, ?2, ?3)",
        )
        .db()?
        .execute(params![
            write.conversation.id.0,
            write.conversation.tenant_id.0,
            ns(write.conversation.updated_at)?
        ])
        .db()?;
    }
    for message in &write.messages {
        insert_message(s, message)?;
    }
    let committed = write.commit(|event| append_event(s, event))?;
    s.cache.put_conversation(committed.conversation.clone());
    Ok(committed)
}

/// `update_conversation` if the assigned agent holds fewer than `capacity` other
/// conversations in `agent` or `paused` mode. The writer thread serializes every write, so
/// the count cannot change before the update commits.
pub(crate) fn assign_within_capacity(
    s: &mut Session<'_>,
    update: ConversationUpdate,
    capacity: u32,
) -> Result<Committed> {
    let new = &update.conversation;
    let agent = new
        .assigned_agent_id
        .ok_or_else(|| Error::validation("assigned_agent_id", "an assignment names its agent"))?;
    let held: i64 = s
        .prepare_cached(
            "SELECT count(*) FROM conversations WHERE tenant_id = ?1 AND assigned_agent_id = ?2 \
             AND mode IN ('agent', 'paused') AND id <> ?3",
        )
        .db()?
        .query_row(params![new.tenant_id.0, agent.0, new.id.0], |row| {
            row.get(0)
        })
        .db()?;
    if held >= i64::from(capacity) {
        return Err(Error::state_conflict("agent at capacity"));
    }
    update_conversation(s, update)
}

pub(crate) fn delete_conversation(
    s: &mut Session<'_>,
    tenant: TenantId,
    id: ConversationId,
    at: OffsetDateTime,
) -> Result<Event> {
    let conn: &Connection = s;
    // The log keeps saying what it said about the messages that go (src/events.rs).
    crate::events::inline_conversation(conn, id)?;
    // Messages (and their search entries), tags, participants and cursors go with it
    // through ON DELETE CASCADE and the search triggers.
    let deleted = conn
        .prepare_cached("DELETE FROM conversations WHERE id = ?1 AND tenant_id = ?2")
        .db()?
        .execute(params![id.0, tenant.0])
        .db()?;
    if deleted == 0 {
        return Err(Error::NotFound("conversation"));
    }
    s.cache.forget_conversation(id);
    append_event(s, NewEvent::conversation_deleted(tenant, id, at))
}

/// The earlier message a client message id repeats (see [`append_message`]); built once.
static REPEATED_MESSAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND sender = ?2 AND client_message_id = ?3"
    )
});

pub(crate) fn append_message(s: &mut Session<'_>, new: NewMessage) -> Result<Appended> {
    let conversation = load_conversation(s, new.tenant_id, new.conversation_id)?;
    if let Some(key) = &new.client_message_id {
        // The rule of `NewMessage::repeats`, on the (conversation, sender, key) index.
        let mut stmt = s.prepare_cached(&REPEATED_MESSAGE).db()?;
        let mut rows = stmt
            .query(params![new.conversation_id.0, sender_key(new.sender), key])
            .db()?;
        if let Some(row) = rows.next().db()? {
            let earlier = message_from_row(row)?;
            drop(rows);
            drop(stmt);
            s.cache.put_conversation(conversation.clone());
            return Ok(Appended::repeated(earlier, conversation));
        }
    }
    let first_response_before = conversation.first_response_at;
    let write = MessageWrite::append(conversation, new)?;
    insert_message(s, &write.message)?;
    put_activity(
        s,
        &write.conversation,
        write.conversation.first_response_at != first_response_before,
    )?;
    let appended = write.commit(|event| append_event(s, event))?;
    s.cache.put_conversation(appended.conversation.clone());
    Ok(appended)
}

pub(crate) fn update_message(s: &mut Session<'_>, message: &Message) -> Result<Event> {
    let conn: &Connection = s;
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query([message.id.0]).db()?;
    let mut stored = match rows.next().db()? {
        Some(row) => message_from_row(row)?,
        None => return Err(Error::NotFound("message")),
    };
    drop(rows);
    drop(stmt);
    if stored.tenant_id != message.tenant_id {
        return Err(Error::NotFound("message"));
    }
    // Its `message_created` event keeps the message as posted (src/events.rs).
    crate::events::inline_message(conn, &stored)?;
    let event = edit_message(&mut stored, message);
    conn.prepare_cached(
        "UPDATE messages SET body = ?2, edited_at = ?3, deleted_at = ?4, extra = ?5 WHERE id = ?1",
    )
    .db()?
    .execute(params![
        stored.id.0,
        stored.body,
        ns_opt(stored.edited_at)?,
        ns_opt(stored.deleted_at)?,
        message_extra(&stored)?
    ])
    .db()?;
    append_event(s, event)
}

pub(crate) fn set_read_cursor(
    s: &mut Session<'_>,
    cursor: &ReadCursor,
) -> Result<(Conversation, Option<Event>)> {
    let mut conversation = load_conversation(s, cursor.tenant_id, cursor.conversation_id)?;
    let conn: &Connection = s;
    let reader = reader_key(cursor.reader);
    let stored: Option<i64> = conn
        .prepare_cached("SELECT seq FROM read_cursors WHERE conversation_id = ?1 AND reader = ?2")
        .db()?
        .query_row(params![cursor.conversation_id.0, reader], |row| row.get(0))
        .optional()
        .db()?;
    let Some(read) = ReadMove::new(&conversation, cursor, stored.map(|seq| seq as u64)) else {
        s.cache.put_conversation(conversation.clone());
        return Ok((conversation, None));
    };
    conn.prepare_cached(
        "INSERT INTO read_cursors (conversation_id, reader, seq, updated_at, data) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (conversation_id, reader) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at, \
         data = excluded.data",
    )
    .db()?
    .execute(params![
        cursor.conversation_id.0,
        reader,
        int(read.cursor.seq),
        ns(read.cursor.updated_at)?,
        to_json(&read.cursor)?
    ])
    .db()?;
    // `Message::unread_by` in SQL: notes and timeline events never count, the staff side
    // counts customer messages, the customer counts staff and bot messages.
    let sql = match cursor.reader {
        Reader::Agent(_) => {
            "SELECT count(*) FROM messages WHERE conversation_id = ?1 AND seq > ?2 AND kind NOT IN (?3, ?4) \
             AND sender = 'customer'"
        }
        Reader::Customer => {
            "SELECT count(*) FROM messages WHERE conversation_id = ?1 AND seq > ?2 AND kind NOT IN (?3, ?4) \
             AND sender NOT IN ('customer', 'system')"
        }
    };
    let unread: i64 = conn
        .prepare_cached(sql)
        .db()?
        .query_row(
            params![
                cursor.conversation_id.0,
                int(read.read_seq),
                MessageKind::Note.as_str(),
                MessageKind::Event.as_str()
            ],
            |row| row.get(0),
        )
        .db()?;
    let event = read.apply(&mut conversation, unread as u64);
    crate::events::inline_conversation_event(conn, conversation.id)?;
    conn.prepare_cached(
        "UPDATE conversations SET version = ?2, unread_for_agent = ?3, unread_for_customer = ?4, data = ?5 \
         WHERE id = ?1",
    )
    .db()?
    .execute(params![
        conversation.id.0,
        int(conversation.version),
        int(conversation.unread_for_agent),
        int(conversation.unread_for_customer),
        to_json(&conversation)?
    ])
    .db()?;
    s.cache.put_conversation(conversation.clone());
    let event = append_event(s, event)?;
    Ok((conversation, Some(event)))
}

/// The owner column of a canned response: see `0008_desk.sql`.
fn canned_owner_key(response: &CannedResponse) -> Vec<u8> {
    response
        .owner_id
        .map_or_else(Vec::new, |a| a.0.as_bytes().to_vec())
}

pub(crate) fn put_canned_response(
    conn: &mut Session<'_>,
    response: &CannedResponse,
) -> Result<Event> {
    let owner = canned_owner_key(response);
    let shortcut_lc = response.shortcut.to_lowercase();
    if exists(
        conn,
        "SELECT 1 FROM canned_responses WHERE id = ?1 AND tenant_id <> ?2",
        params![response.id.0, response.tenant_id.0],
    )? {
        return Err(Error::duplicate("canned response id taken"));
    }
    if exists(
        conn,
        "SELECT 1 FROM canned_responses WHERE tenant_id = ?1 AND owner_key = ?2 AND shortcut_lc = ?3 \
         AND id <> ?4",
        params![response.tenant_id.0, owner, shortcut_lc, response.id.0],
    )? {
        return Err(Error::duplicate("shortcut taken"));
    }
    conn.prepare_cached(
        "INSERT INTO canned_responses (id, tenant_id, owner_key, shortcut_lc, title_lc, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET owner_key = ?3, \
         shortcut_lc = ?4, title_lc = ?5, data = ?6",
    )
    .db()?
    .execute(params![
        response.id.0,
        response.tenant_id.0,
        owner,
        shortcut_lc,
        response.title.to_lowercase(),
        to_json(response)?
    ])
    .db()?;
    append_event(conn, NewEvent::canned_response_updated(response))
}

pub(crate) fn delete_canned_response(
    s: &mut Session<'_>,
    response: &CannedResponse,
    at: OffsetDateTime,
) -> Result<Event> {
    let deleted = s
        .prepare_cached("DELETE FROM canned_responses WHERE id = ?1 AND tenant_id = ?2")
        .db()?
        .execute(params![response.id.0, response.tenant_id.0])
        .db()?;
    if deleted == 0 {
        return Err(Error::NotFound("canned response"));
    }
    append_event(s, NewEvent::canned_response_deleted(response, at))
}

pub(crate) fn record_mentions(s: &mut Session<'_>, mentions: &[Mention]) -> Result<Vec<Event>> {
    let mut events = Vec::with_capacity(mentions.len());
    for m in mentions {
        let inserted = {
            let conn: &Connection = s;
            conn.prepare_cached(
                "INSERT INTO mentions (message_id, agent_id, tenant_id, at, read_at, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            )
            .db()?
            .execute(params![
                m.message_id.0,
                m.agent_id.0,
                m.tenant_id.0,
                ns(m.at)?,
                ns_opt(m.read_at)?,
                to_json(m)?
            ])
            .db()?
        };
        if inserted == 1 {
            events.push(append_event(s, NewEvent::mentioned(m))?);
        }
    }
    Ok(events)
}

pub(crate) fn read_mentions(
    conn: &Connection,
    tenant: TenantId,
    agent: AgentId,
    at: OffsetDateTime,
) -> Result<u64> {
    // `data` keeps the serde form whole; the read time is set in both.
    let read = conn
        .prepare_cached(
            "UPDATE mentions SET read_at = ?3, data = json_set(data, '$.read_at', ?4) \
             WHERE tenant_id = ?1 AND agent_id = ?2 AND read_at IS NULL",
        )
        .db()?
        .execute(params![
            tenant.0,
            agent.0,
            ns(at)?,
            at.format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| Error::validation("at", e.to_string()))?
        ])
        .db()?;
    Ok(read as u64)
}
