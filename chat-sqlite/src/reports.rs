//! The reports as aggregate queries (see `chat_core::report` for what each figure counts).
//!
//! Each figure is a statement over one index range: conversations opened (by
//! `created_at`), closed (`closed_at`), rated (`rated_at`) and reopen marks (`at`), grouped
//! by the breakdown's key. Percentiles pick their sample by nearest rank from each key's
//! samples, read unsorted and sorted in Rust (see [`durations`]).

use std::collections::{BTreeMap, HashMap};

use chat_core::report::{
    Csat, Dimension, Durations, Feedback, ReportQuery, ReportRow, SeriesPoint,
};
use chat_core::{AgentId, ConversationId, Result};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params};
use time::OffsetDateTime;

use crate::codec::{from_ns, ns};
use crate::error::Db;

/// The key column and the join it needs, per dimension.
fn key(by: Option<Dimension>) -> (&'static str, &'static str) {
    match by {
        None => ("NULL", ""),
        Some(Dimension::Agent) => ("c.assigned_agent_id", ""),
        Some(Dimension::Department) => ("c.department", ""),
        Some(Dimension::Channel) => ("c.channel", ""),
        Some(Dimension::Tag) => (
            "t.tag",
            "JOIN conversation_tags t ON t.conversation_id = c.id",
        ),
    }
}

/// A key as text: an agent's id is a 16-byte blob.
fn key_text(value: Value) -> Option<String> {
    match value {
        Value::Text(t) => Some(t),
        Value::Blob(b) => uuid::Uuid::from_slice(&b).ok().map(|u| u.to_string()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(r) => Some(r.to_string()),
        Value::Null => None,
    }
}

/// The covering index of the reports for conversations whose `time` column is in a period.
/// Named, because with statistics SQLite prefers an index that yields the rows already
/// grouped by the key (by agent, by department), then reads 100,000 rows of the table
/// one by one: 10 s under load, against a sort of the covering index's entries.
fn index(time: &str) -> &'static str {
    match time {
        "created_at" => "conversations_created",
        "closed_at" => "conversations_closed",
        _ => "conversations_rated",
    }
}

/// `?1` tenant, `?2` from, `?3` to, `?4` the agent or NULL.
const AGENT: &str = "(?4 IS NULL OR c.assigned_agent_id = ?4)";

/// The key and one figure's value of every conversation of the period (by its `time`
/// column), unsorted: one read of the covering index.
fn rows_sql(key: &str, join: &str, time: &str, value: &str) -> String {
    format!(
        "SELECT {key}, {value} FROM conversations c INDEXED BY {} {join} \
         WHERE c.tenant_id = ?1 AND c.{time} >= ?2 AND c.{time} < ?3 AND {AGENT}",
        index(time)
    )
}

/// Accumulators per key, found by the key's bytes without allocating per row (an agent's
/// id is a blob, the other keys text; `NULL` apart).
struct Groups<A> {
    none: Option<A>,
    keyed: HashMap<Vec<u8>, (bool, A)>,
}

impl<A: Default> Groups<A> {
    fn new() -> Self {
        Self {
            none: None,
            keyed: HashMap::new(),
        }
    }

    fn of(&mut self, key: ValueRef<'_>) -> &mut A {
        let (bytes, blob) = match key {
            ValueRef::Null => return self.none.get_or_insert_with(A::default),
            ValueRef::Text(t) => (t, false),
            ValueRef::Blob(b) => (b, true),
            // Keys are text or blobs; a number would be a schema this code does not know.
            ValueRef::Integer(_) | ValueRef::Real(_) => (&[][..], false),
        };
        if !self.keyed.contains_key(bytes) {
            self.keyed.insert(bytes.to_vec(), (blob, A::default()));
        }
        &mut self.keyed.get_mut(bytes).expect("inserted above").1
    }

    fn into_keys(self) -> impl Iterator<Item = (Option<String>, A)> {
        let none = self.none.map(|a| (None, a));
        none.into_iter()
            .chain(self.keyed.into_iter().map(|(bytes, (blob, a))| {
                let key = if blob {
                    key_text(Value::Blob(bytes))
                } else {
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                };
                (key, a)
            }))
    }
}

/// Runs `sql` and folds each row's second column into its key's accumulator.
fn grouped<A: Default>(
    conn: &Connection,
    params: &[&dyn rusqlite::ToSql],
    sql: &str,
    mut fold: impl FnMut(&mut A, ValueRef<'_>) -> Result<()>,
) -> Result<Groups<A>> {
    let mut groups = Groups::new();
    let mut stmt = conn.prepare_cached(sql).db()?;
    let mut found = stmt.query(params).db()?;
    while let Some(r) = found.next().db()? {
        let key = r.get_ref(0).db()?;
        fold(groups.of(key), r.get_ref(1).db()?)?;
    }
    Ok(groups)
}

/// Rows per key, and the median and p90 of their samples. One unsorted read of the index;
/// each key's samples (8 bytes each, never the conversations) are sorted in Rust. SQLite
/// sorting them instead (`ORDER BY key, value`, stepping through once), after a second
/// read for the counts per key, cost 0.5-0.65 s per breakdown over 100,000 conversations
/// (README); a window function (`row_number` against `count` over the key) three times
/// the CPU of that.
fn durations(
    conn: &Connection,
    params: &[&dyn rusqlite::ToSql],
    (key, join): (&str, &str),
    time: &str,
    value: &str,
) -> Result<BTreeMap<Option<String>, (u64, Durations)>> {
    let groups = grouped(
        conn,
        params,
        &rows_sql(key, join, time, value),
        |(rows, samples): &mut (u64, Vec<i64>), v| {
            *rows += 1;
            if let ValueRef::Integer(v) = v {
                samples.push(v);
            }
            Ok(())
        },
    )?;
    Ok(groups
        .into_keys()
        .map(|(k, (rows, samples))| (k, (rows, Durations::of(samples))))
        .collect())
}

fn entry(rows: &mut BTreeMap<Option<String>, ReportRow>, key: Option<String>) -> &mut ReportRow {
    rows.entry(key.clone()).or_insert_with(|| ReportRow {
        key,
        ..ReportRow::default()
    })
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub(crate) fn report_rows(
    conn: &Connection,
    query: &ReportQuery,
    by: Option<Dimension>,
) -> Result<Vec<ReportRow>> {
    let (key, join) = key(by);
    let agent = query.agent.map(|a| a.0);
    let (from, to) = (ns(query.from)?, ns(query.to)?);
    let params = params![query.tenant.0, from, to, agent];
    let mut rows: BTreeMap<Option<String>, ReportRow> = BTreeMap::new();

    // Opened, with their first response times; closed, with their resolution times.
    for (time, value, opened) in [
        ("created_at", "c.first_response_at - c.created_at", true),
        ("closed_at", "c.closed_at - c.created_at", false),
    ] {
        for (k, (n, d)) in durations(conn, params, (key, join), time, value)? {
            let e = entry(&mut rows, k);
            if opened {
                e.opened = n;
                e.first_response = d;
            } else {
                e.closed = n;
                e.resolution = d;
            }
        }
    }

    let scores = grouped(
        conn,
        params,
        &rows_sql(key, join, "rated_at", "c.rating_score"),
        |scores: &mut [u64; 5], v| {
            if let ValueRef::Integer(score @ 1..=5) = v {
                scores[usize::try_from(score - 1).unwrap_or(0)] += 1;
            }
            Ok(())
        },
    )?;
    for (k, scores) in scores.into_keys() {
        entry(&mut rows, k).csat = Csat::from_distribution(scores);
    }

    let sql = format!(
        "SELECT {key}, count(*) FROM conversation_reopens m \
         JOIN conversations c ON c.id = m.conversation_id {join} \
         WHERE m.tenant_id = ?1 AND m.at >= ?2 AND m.at < ?3 AND {AGENT} GROUP BY 1"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut found = stmt.query(params).db()?;
    while let Some(r) = found.next().db()? {
        entry(&mut rows, key_text(r.get(0).db()?)).reopened = count(r.get(1).db()?);
    }
    drop(found);
    Ok(rows.into_values().collect())
}

pub(crate) fn report_series(
    conn: &Connection,
    query: &ReportQuery,
    bounds: &[OffsetDateTime],
) -> Result<Vec<SeriesPoint>> {
    let starts = bounds.iter().map(|b| ns(*b)).collect::<Result<Vec<_>>>()?;
    let json = serde_json::to_string(&starts).map_err(chat_core::Error::storage)?;
    // One count per bucket and figure, each a range of an index; the buckets come in as a
    // JSON array of their starts (and the end).
    let sql = format!(
        "WITH b AS (SELECT CAST(key AS INTEGER) AS i, value AS lo, \
           lead(value) OVER (ORDER BY CAST(key AS INTEGER)) AS hi FROM json_each(?2)) \
         SELECT i, \
           (SELECT count(*) FROM conversations c INDEXED BY conversations_created WHERE c.tenant_id = ?1 \
              AND c.created_at >= b.lo AND c.created_at < b.hi AND {AGENT}), \
           (SELECT count(*) FROM conversations c INDEXED BY conversations_closed WHERE c.tenant_id = ?1 \
              AND c.closed_at >= b.lo AND c.closed_at < b.hi AND {AGENT}), \
           (SELECT count(*) FROM conversation_reopens m JOIN conversations c ON c.id = m.conversation_id \
              WHERE m.tenant_id = ?1 AND m.at >= b.lo AND m.at < b.hi AND {AGENT}) \
         FROM b WHERE hi IS NOT NULL ORDER BY i"
    )
    .replace("?4", "?3");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut found = stmt
        .query(params![query.tenant.0, json, query.agent.map(|a| a.0)])
        .db()?;
    let mut points = Vec::new();
    while let Some(r) = found.next().db()? {
        let i: i64 = r.get(0).db()?;
        points.push(SeriesPoint {
            start: bounds[usize::try_from(i).unwrap_or(0)],
            opened: count(r.get(1).db()?),
            closed: count(r.get(2).db()?),
            reopened: count(r.get(3).db()?),
        });
    }
    Ok(points)
}

pub(crate) fn report_feedback(
    conn: &Connection,
    query: &ReportQuery,
    limit: usize,
) -> Result<Vec<Feedback>> {
    let sql = format!(
        "SELECT id, assigned_agent_id, rating_score, json_extract(data, '$.rating.feedback') AS f, rated_at \
         FROM conversations c \
         WHERE tenant_id = ?1 AND rated_at >= ?2 AND rated_at < ?3 AND {AGENT} AND f <> '' \
         ORDER BY rated_at DESC, id DESC LIMIT ?5"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut found = stmt
        .query(params![
            query.tenant.0,
            ns(query.from)?,
            ns(query.to)?,
            query.agent.map(|a| a.0),
            limit
        ])
        .db()?;
    let mut out = Vec::new();
    while let Some(r) = found.next().db()? {
        out.push(Feedback {
            conversation_id: ConversationId(r.get(0).db()?),
            agent_id: r.get::<_, Option<uuid::Uuid>>(1).db()?.map(AgentId),
            score: u8::try_from(r.get::<_, i64>(2).db()?).unwrap_or(0),
            feedback: r.get(3).db()?,
            rated_at: from_ns(r.get(4).db()?),
        });
    }
    Ok(out)
}
