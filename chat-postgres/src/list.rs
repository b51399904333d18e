//! `list_conversations`: the query's filters as one SQL `WHERE`, shared by the page and
//! the counts per mode so both agree with [`ConversationQuery::matches_except_mode`], read
//! in one snapshot.

use std::collections::BTreeMap;

use chat_core::store::{
    AssignedFilter, ConversationCursor, ConversationPage, ConversationQuery, Scope, TextQuery,
};
use chat_core::{Conversation, Error, Mode, Result};
use tokio_postgres::types::ToSql;

use crate::codec::{all, limit, priority_rank};
use crate::error::{Db, corrupt_row};
use crate::search::Search;

type Param = Box<dyn ToSql + Sync + Send>;

/// SQL text with its numbered parameters.
#[derive(Default)]
struct Filter {
    sql: String,
    params: Vec<Param>,
}

impl Filter {
    /// `$n` for a new parameter.
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    fn and(&mut self, clause: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(clause);
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// Everything but the mode filter and the cursor.
fn base_filter(q: &ConversationQuery) -> Result<Filter> {
    let mut f = Filter::default();
    let tenant = f.bind(q.tenant.0);
    f.sql = format!("c.tenant_id = {tenant}");
    match &q.scope {
        Scope::Tenant => {}
        Scope::Agent { agent, departments } => {
            let a = f.bind(agent.0);
            let deps = f.bind(departments.clone());
            f.and(&format!(
                "(c.assigned_agent_id = {a} OR {a} = ANY (c.participants) OR (c.mode = 'queued' \
                 AND (c.department IS NULL OR c.department = ANY ({deps}::text[]))))"
            ));
        }
        Scope::Contact {
            contact,
            conversation,
        } => {
            let k = f.bind(contact.0);
            f.and(&format!("c.contact_id = {k}"));
            if let Some(id) = conversation {
                let id = f.bind(id.0);
                f.and(&format!("c.id = {id}"));
            }
        }
    }
    if let Some(p) = q.priority {
        let p = f.bind(priority_rank(p));
        f.and(&format!("c.priority = {p}"));
    }
    if let Some(d) = &q.department {
        let d = f.bind(d.clone());
        f.and(&format!("c.department = {d}"));
    }
    match &q.assigned {
        None => {}
        Some(AssignedFilter::Unassigned) => f.and("c.assigned_agent_id IS NULL"),
        Some(AssignedFilter::Agent(id)) => {
            let id = f.bind(id.0);
            f.and(&format!("c.assigned_agent_id = {id}"));
        }
    }
    if let Some(tag) = &q.tag {
        let tag = f.bind(tag.clone());
        f.and(&format!("{tag} = ANY (c.tags)"));
    }
    if let Some(ch) = q.channel {
        let ch = f.bind(ch.as_str());
        f.and(&format!("c.channel = {ch}"));
    }
    if let Some(p) = q.pinned {
        let p = f.bind(p);
        f.and(&format!("c.pinned = {p}"));
    }
    // No column of its own: snoozes are few and always combined with other filters. The
    // serde form leaves `snooze` out when there is none.
    match q.snoozed {
        None => {}
        Some(true) => f.and("coalesce(jsonb_typeof(c.data -> 'snooze'), 'null') <> 'null'"),
        Some(false) => f.and("coalesce(jsonb_typeof(c.data -> 'snooze'), 'null') = 'null'"),
    }
    // Saturated: a bound beyond what the column holds still compares as it should.
    let ns = |at: time::OffsetDateTime| {
        i64::try_from(at.unix_timestamp_nanos()).unwrap_or(if at.unix_timestamp() > 0 {
            i64::MAX
        } else {
            i64::MIN
        })
    };
    if let Some(from) = q.updated_from {
        let from = f.bind(ns(from));
        f.and(&format!("c.updated_at_ns >= {from}"));
    }
    if let Some(to) = q.updated_to {
        let to = f.bind(ns(to));
        f.and(&format!("c.updated_at_ns < {to}"));
    }
    if let Some(e) = &q.contact_email {
        let e = f.bind(e.to_ascii_lowercase());
        f.and(&format!(
            "c.contact_id IN (SELECT id FROM contacts WHERE tenant_id = {tenant} AND email_lc = {e})"
        ));
    }
    if let Some(t) = &q.text {
        let Some(search) = Search::new(&TextQuery::parse(t)) else {
            // No word in the text: it matches nothing (chat-core's `TextQuery`).
            f.and("false");
            return Ok(f);
        };
        if !search.fits() {
            return Err(Error::validation(
                "text",
                "too many words to search for at once",
            ));
        }
        let index = f.bind(search.index);
        let exact = search.exact.map(|e| f.bind(e));
        let phrases = f.bind(search.phrases);
        let field = |words: &str, list: &str| {
            let exact = match &exact {
                Some(e) => format!("{words} @@ {e}::text::tsquery"),
                None => "false".to_owned(),
            };
            // The index finds the candidates; the tsvector decides, or the word list where
            // the tsvector is lossy.
            format!(
                "({words} @@ {index}::text::tsquery AND CASE WHEN {list} IS NULL THEN {exact} \
                 ELSE NOT EXISTS (SELECT 1 FROM unnest({phrases}::text[]) p WHERE strpos({list}, p) = 0) END)"
            )
        };
        let title = field("t.title_words", "t.title_list");
        let name = field("k.name_words", "k.name_list");
        let email = field("k.email_words", "k.email_list");
        let body = field("m.words", "m.word_list");
        // Customers never find a conversation through an internal note.
        let notes = if matches!(q.scope, Scope::Contact { .. }) {
            " AND m.kind <> 'note'"
        } else {
            ""
        };
        // The conversations that can match, each part found through its word index.
        f.and(&format!(
            "c.id IN (SELECT t.id FROM conversations t WHERE t.tenant_id = {tenant} AND {title} \
             UNION SELECT ck.id FROM conversations ck WHERE ck.tenant_id = {tenant} AND ck.contact_id IN \
             (SELECT k.id FROM contacts k WHERE k.tenant_id = {tenant} AND ({name} OR {email})) \
             UNION SELECT m.conversation_id FROM messages m WHERE m.tenant_id = {tenant} \
             AND NOT m.deleted{notes} AND {body})"
        ));
    }
    Ok(f)
}

pub(crate) async fn list_conversations(
    client: &mut deadpool_postgres::Client,
    q: &ConversationQuery,
) -> Result<ConversationPage> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .db()?;
    let base = base_filter(q)?;
    let mut counts = BTreeMap::new();
    let sql = format!(
        "SELECT c.mode, count(*) FROM conversations c WHERE {} GROUP BY c.mode",
        base.sql
    );
    for row in tx.query(&sql, &base.refs()).await.db()? {
        let mode: String = row.get(0);
        let n: i64 = row.get(1);
        counts.insert(
            mode.parse::<Mode>()
                .map_err(|e| corrupt_row("conversation", e))?,
            n as u64,
        );
    }

    let mut items = base;
    if !q.modes.is_empty() {
        let modes: Vec<&'static str> = q.modes.iter().map(|m| m.as_str()).collect();
        let m = items.bind(modes);
        items.and(&format!("c.mode = ANY ({m}::text[])"));
    }
    if let Some(cursor) = q.cursor {
        cursor_filter(&mut items, cursor);
    }
    let n = items.bind(limit(q.limit).saturating_add(1));
    let sql = format!(
        "SELECT c.data FROM conversations c WHERE {} ORDER BY c.updated_at_ns DESC, c.id DESC LIMIT {n}",
        items.sql
    );
    let rows = tx.query(&sql, &items.refs()).await.db()?;
    let page: Vec<Conversation> = all(&rows)?;
    tx.commit().await.db()?;
    // The same answer as every store; PostgreSQL counts exactly first (its cost is its
    // own: the SQLite store stops counting at the cap).
    let counts_capped = q.cap_counts(&mut counts);
    Ok(ConversationPage::from_rows(
        page,
        q.limit,
        counts,
        counts_capped,
    ))
}

/// Rows strictly after the cursor in `(updated_at, id)` descending order.
fn cursor_filter(f: &mut Filter, cursor: ConversationCursor) {
    match i64::try_from(cursor.updated_at_ns) {
        Ok(ns) => {
            let ns = f.bind(ns);
            let id = f.bind(cursor.id.0);
            f.and(&format!("(c.updated_at_ns, c.id) < ({ns}, {id})"));
        }
        // Past every storable time: everything comes after it.
        Err(_) if cursor.updated_at_ns > 0 => {}
        Err(_) => f.and("false"),
    }
}
