//! The reports as aggregate queries: the statements of chat-sqlite's `reports.rs` in
//! PostgreSQL's dialect (see `chat_core::report` for what each figure counts), run in one
//! read-only repeatable-read transaction so every figure comes from one snapshot.

use std::collections::BTreeMap;

use chat_core::report::{
    Csat, Dimension, Durations, Feedback, ReportQuery, ReportRow, SeriesPoint,
};
use chat_core::{AgentId, ConversationId, Result};
use deadpool_postgres::Client;
use time::OffsetDateTime;
use tokio_postgres::IsolationLevel;

use crate::codec::{limit, ns};
use crate::error::Db;

/// The key expression and the join it needs, per dimension.
fn key(by: Option<Dimension>) -> (&'static str, &'static str) {
    match by {
        None => ("NULL::text", ""),
        Some(Dimension::Agent) => ("c.assigned_agent_id::text", ""),
        Some(Dimension::Department) => ("c.department", ""),
        Some(Dimension::Channel) => ("c.channel", ""),
        Some(Dimension::Tag) => ("t.tag", "CROSS JOIN LATERAL unnest(c.tags) AS t(tag)"),
    }
}

/// `$1` tenant, `$2` from, `$3` to, `$4` the agent or NULL.
const AGENT: &str = "($4::uuid IS NULL OR c.assigned_agent_id = $4::uuid)";

fn durations_sql(key: &str, join: &str, time: &str, value: &str) -> String {
    format!(
        "WITH s AS (SELECT {key} AS k, {value} AS v FROM conversations c {join} \
           WHERE c.tenant_id = $1 AND c.{time} >= $2 AND c.{time} < $3 AND {AGENT}), \
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

pub(crate) async fn report_rows(
    client: &mut Client,
    query: &ReportQuery,
    by: Option<Dimension>,
) -> Result<Vec<ReportRow>> {
    let (key, join) = key(by);
    let agent = query.agent.map(|a| a.0);
    let (from, to) = (ns(query.from)?, ns(query.to)?);
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .db()?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
        [&query.tenant.0, &from, &to, &agent];
    let mut rows: BTreeMap<Option<String>, ReportRow> = BTreeMap::new();

    for (time, value, opened) in [
        (
            "created_at_ns",
            "c.first_response_at_ns - c.created_at_ns",
            true,
        ),
        ("closed_at_ns", "c.closed_at_ns - c.created_at_ns", false),
    ] {
        let sql = durations_sql(key, join, time, value);
        for r in tx.query(&sql, &params).await.db()? {
            let e = entry(&mut rows, r.get(0));
            let n = count(r.get(1));
            let durations = Durations::from_nanos(count(r.get(2)), r.get(3), r.get(4));
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
        "SELECT {key}, sum((c.rating_score = 1)::int), sum((c.rating_score = 2)::int), \
           sum((c.rating_score = 3)::int), sum((c.rating_score = 4)::int), \
           sum((c.rating_score = 5)::int) \
         FROM conversations c {join} \
         WHERE c.tenant_id = $1 AND c.rated_at_ns >= $2 AND c.rated_at_ns < $3 AND {AGENT} \
         GROUP BY 1"
    );
    for r in tx.query(&sql, &params).await.db()? {
        let mut scores = [0u64; 5];
        for (i, n) in scores.iter_mut().enumerate() {
            *n = count(r.get(i + 1));
        }
        entry(&mut rows, r.get(0)).csat = Csat::from_distribution(scores);
    }

    let sql = format!(
        "SELECT {key}, count(*) FROM conversation_reopens m \
         JOIN conversations c ON c.id = m.conversation_id {join} \
         WHERE m.tenant_id = $1 AND m.at_ns >= $2 AND m.at_ns < $3 AND {AGENT} GROUP BY 1"
    );
    for r in tx.query(&sql, &params).await.db()? {
        entry(&mut rows, r.get(0)).reopened = count(r.get(1));
    }
    tx.commit().await.db()?;
    Ok(rows.into_values().collect())
}

pub(crate) async fn report_series(
    client: &Client,
    query: &ReportQuery,
    bounds: &[OffsetDateTime],
) -> Result<Vec<SeriesPoint>> {
    let starts = bounds.iter().map(|b| ns(*b)).collect::<Result<Vec<_>>>()?;
    let agent = query.agent.map(|a| a.0);
    // One count per bucket and figure, each a range of an index, in one statement (one
    // snapshot); the buckets come in as an array of their starts (and the end).
    let sql = format!(
        "WITH b AS (SELECT i, lo, lead(lo) OVER (ORDER BY i) AS hi \
           FROM unnest($2::bigint[]) WITH ORDINALITY AS u(lo, i)) \
         SELECT i, \
           (SELECT count(*) FROM conversations c WHERE c.tenant_id = $1 \
              AND c.created_at_ns >= b.lo AND c.created_at_ns < b.hi AND {AGENT}), \
           (SELECT count(*) FROM conversations c WHERE c.tenant_id = $1 \
              AND c.closed_at_ns >= b.lo AND c.closed_at_ns < b.hi AND {AGENT}), \
           (SELECT count(*) FROM conversation_reopens m JOIN conversations c ON c.id = m.conversation_id \
              WHERE m.tenant_id = $1 AND m.at_ns >= b.lo AND m.at_ns < b.hi AND {AGENT}) \
         FROM b WHERE hi IS NOT NULL ORDER BY i"
    )
    .replace("$4", "$3");
    let found = client
        .query(&sql, &[&query.tenant.0, &starts, &agent])
        .await
        .db()?;
    Ok(found
        .into_iter()
        .map(|r| {
            let i: i64 = r.get(0);
            SeriesPoint {
                start: bounds[usize::try_from(i - 1).unwrap_or(0)],
                opened: count(r.get(1)),
                closed: count(r.get(2)),
                reopened: count(r.get(3)),
            }
        })
        .collect())
}

pub(crate) async fn report_feedback(
    client: &Client,
    query: &ReportQuery,
    limit_: usize,
) -> Result<Vec<Feedback>> {
    let sql = format!(
        "SELECT id, assigned_agent_id, rating_score, data->'rating'->>'feedback', rated_at_ns \
         FROM conversations c \
         WHERE tenant_id = $1 AND rated_at_ns >= $2 AND rated_at_ns < $3 AND {AGENT} \
           AND data->'rating'->>'feedback' <> '' \
         ORDER BY rated_at_ns DESC, id DESC LIMIT $5"
    );
    let found = client
        .query(
            &sql,
            &[
                &query.tenant.0,
                &ns(query.from)?,
                &ns(query.to)?,
                &query.agent.map(|a| a.0),
                &limit(limit_),
            ],
        )
        .await
        .db()?;
    found
        .into_iter()
        .map(|r| {
            let at: i64 = r.get(4);
            Ok(Feedback {
                conversation_id: ConversationId(r.get(0)),
                agent_id: r.get::<_, Option<uuid::Uuid>>(1).map(AgentId),
                score: u8::try_from(r.get::<_, i16>(2)).unwrap_or(0),
                feedback: r.get(3),
                rated_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(at))
                    .map_err(chat_core::Error::storage)?,
            })
        })
        .collect()
}
