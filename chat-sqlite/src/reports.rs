//! The reports as aggregate queries (see `chat_core::report` for what each figure counts).
//!
//! Each figure is one statement over one index range: conversations opened (by
//! `created_at`), closed (`closed_at`), rated (`rated_at`) and reopen marks (`at`), grouped
//! by the breakdown's key. Percentiles pick their sample by nearest rank with a window
//! (`row_number` within the key against `count`), so no sample leaves SQLite; only one row
//! per key does.

use std::collections::BTreeMap;

use chat_core::report::{
    Csat, Dimension, Durations, Feedback, ReportQuery, ReportRow, SeriesPoint,
};
use chat_core::{AgentId, ConversationId, Result};
use rusqlite::types::Value;
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

/// `?1` tenant, `?2` from, `?3` to, `?4` the agent or NULL.
const AGENT: &str = "(?4 IS NULL OR c.assigned_agent_id = ?4)";

/// Count, median and p90 of `value` per key over the conversations whose `time` column is
/// in the period. Rows whose value is NULL count but give no sample.
fn durations_sql(key: &str, join: &str, time: &str, value: &str) -> String {
    format!(
        "WITH s AS (SELECT {key} AS k, {value} AS v FROM conversations c {join} \
           WHERE c.tenant_id = ?1 AND c.{time} >= ?2 AND c.{time} < ?3 AND {AGENT}), \
         r AS (SELECT k, v, row_number() OVER (PARTITION BY k ORDER BY v NULLS LAST) AS rn, \
           count(v) OVER (PARTITION BY k) AS n FROM s) \
         SELECT k, count(*), max(n), \
           max(CASE WHEN v IS NOT NULL AND rn = (n * 50 + 99) / 100 THEN v END), \
           max(CASE WHEN v IS NOT NULL AND rn = (n * 90 + 99) / 100 THEN v END) \
         FROM r GROUP BY k"
    )
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
        let sql = durations_sql(key, join, time, value);
        let mut stmt = conn.prepare_cached(&sql).db()?;
        let mut found = stmt.query(params).db()?;
        while let Some(r) = found.next().db()? {
            let e = entry(&mut rows, key_text(r.get(0).db()?));
            let n = count(r.get(1).db()?);
            let durations =
                Durations::from_nanos(count(r.get(2).db()?), r.get(3).db()?, r.get(4).db()?);
            if opened {
                e.opened = n;
                e.first_response = durations;
            } else {
                e.closed = n;
                e.resolution = durations;
            }
        }
    }

    let sql = format!(
        "SELECT {key}, sum(c.rating_score = 1), sum(c.rating_score = 2), sum(c.rating_score = 3), \
           sum(c.rating_score = 4), sum(c.rating_score = 5) \
         FROM conversations c {join} \
         WHERE c.tenant_id = ?1 AND c.rated_at >= ?2 AND c.rated_at < ?3 AND {AGENT} GROUP BY 1"
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut found = stmt.query(params).db()?;
    while let Some(r) = found.next().db()? {
        let mut scores = [0u64; 5];
        for (i, n) in scores.iter_mut().enumerate() {
            *n = count(r.get(i + 1).db()?);
        }
        entry(&mut rows, key_text(r.get(0).db()?)).csat = Csat::from_distribution(scores);
    }
    drop(found);

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
           (SELECT count(*) FROM conversations c WHERE c.tenant_id = ?1 \
              AND c.created_at >= b.lo AND c.created_at < b.hi AND {AGENT}), \
           (SELECT count(*) FROM conversations c WHERE c.tenant_id = ?1 \
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
