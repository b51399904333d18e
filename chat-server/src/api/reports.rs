//! Reports for staff (`/v1/reports/...`): the engine's figures over a period, as JSON or,
//! with `format=csv` (or `Accept: text/csv` without `format`), as CSV. Which figures a
//! caller sees is the engine's policy: admins and supervisors the whole desk or any agent
//! (`agent_id`), an agent its own.

use chat_core::report::{Dimension, Feedback, Interval, ReportPeriod, ReportRow, SeriesPoint};
use chat_core::{AgentId, Error};
use hyper::StatusCode;
use hyper::header::ACCEPT;
use time::format_description::well_known::Rfc3339;

use super::Ctx;
use crate::csv::{Csv, Field, opt, plain};
use crate::error::ApiError;
use crate::http::{self, Resp};

/// How an export is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Csv,
}

/// `format=json|csv` decides; without it, `Accept: text/csv` asks for CSV; JSON otherwise.
pub(crate) fn format(ctx: &Ctx) -> Result<Format, ApiError> {
    match ctx.query::<String>("format")?.as_deref() {
        Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some(_) => Err(ApiError::invalid("format", "json or csv")),
        None => {
            let accept = ctx
                .headers
                .get(ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            Ok(if accept.contains("text/csv") {
                Format::Csv
            } else {
                Format::Json
            })
        }
    }
}

/// A CSV answer, offered as a download named `name`.
pub(crate) fn csv_answer(body: String, name: &str) -> Resp {
    let mut resp = http::with_type(StatusCode::OK, body, "text/csv; charset=utf-8");
    if let Ok(value) = format!("attachment; filename=\"{name}.csv\"").parse() {
        resp.headers_mut()
            .insert(hyper::header::CONTENT_DISPOSITION, value);
    }
    resp
}

/// `from`, `to` (local dates, both included), `tz` (IANA, default UTC) and `agent_id`,
/// with whose figures the caller will see (the engine's policy decides: an agent's own).
async fn period(ctx: &Ctx) -> Result<(ReportPeriod, Option<AgentId>), ApiError> {
    let required = |name: &'static str| {
        ctx.query::<String>(name)?
            .ok_or_else(|| ApiError::from(Error::validation(name, "required (YYYY-MM-DD)")))
    };
    let (from, to) = (required("from")?, required("to")?);
    let tz: Option<String> = ctx.query("tz")?;
    let period = ReportPeriod::parse(&from, &to, tz.as_deref())?;
    let agent = ctx
        .app
        .engine
        .report_agent(ctx.actor()?, ctx.query("agent_id")?)
        .await?;
    Ok((period, agent))
}

/// What every report's answer says it covers.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ReportScope)]
pub(crate) struct Scope<'a> {
    /// The first local date counted.
    #[schema(value_type = String, format = Date)]
    from: String,
    /// The last local date counted.
    #[schema(value_type = String, format = Date)]
    to: String,
    /// IANA time zone name
    tz: &'a str,
    /// The agent whose conversations were counted; null: the whole desk.
    #[schema(required = true)]
    agent_id: Option<AgentId>,
}

fn about(period: &ReportPeriod, agent: Option<AgentId>) -> Scope<'_> {
    Scope {
        from: period.from.to_string(),
        to: period.to.to_string(),
        tz: &period.tz_name,
        agent_id: agent,
    }
}

/// `GET /v1/reports/overview`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ReportOverview)]
pub(crate) struct Overview<'a> {
    #[serde(flatten)]
    scope: Scope<'a>,
    totals: ReportRow,
}

/// `GET /v1/reports/breakdown`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ReportBreakdown)]
pub(crate) struct Breakdown<'a> {
    #[serde(flatten)]
    scope: Scope<'a>,
    by: Dimension,
    /// One per key, in key order.
    rows: Vec<ReportRow>,
}

/// `GET /v1/reports/series`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ReportSeries)]
pub(crate) struct Series<'a> {
    #[serde(flatten)]
    scope: Scope<'a>,
    interval: Interval,
    points: Vec<SeriesPoint>,
}

/// `GET /v1/reports/feedback`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = ReportFeedback)]
pub(crate) struct Feedbacks<'a> {
    #[serde(flatten)]
    scope: Scope<'a>,
    /// Newest first.
    items: Vec<Feedback>,
}

fn time_text(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

const ROW_COLUMNS: &[&str] = &[
    "key",
    "opened",
    "closed",
    "reopened",
    "first_response_count",
    "first_response_median_secs",
    "first_response_p90_secs",
    "resolution_count",
    "resolution_median_secs",
    "resolution_p90_secs",
    "csat_count",
    "csat_average",
    "csat_1",
    "csat_2",
    "csat_3",
    "csat_4",
    "csat_5",
];

fn rows_csv(rows: &[ReportRow]) -> String {
    let mut csv = Csv::with_header(ROW_COLUMNS);
    for r in rows {
        let mut fields = vec![
            Field::Text(r.key.as_deref().unwrap_or_default()),
            plain(r.opened),
            plain(r.closed),
            plain(r.reopened),
            plain(r.first_response.count),
            opt(r.first_response.median_secs),
            opt(r.first_response.p90_secs),
            plain(r.resolution.count),
            opt(r.resolution.median_secs),
            opt(r.resolution.p90_secs),
            plain(r.csat.count),
            opt(r.csat.average),
        ];
        fields.extend(r.csat.distribution.iter().map(|n| plain(*n)));
        csv.row(fields);
    }
    csv.finish()
}

/// `GET /v1/reports/overview`: the period's totals.
pub async fn overview(ctx: Ctx) -> Result<Resp, ApiError> {
    let format = format(&ctx)?;
    let (period, agent) = period(&ctx).await?;
    let rows = ctx
        .app
        .engine
        .report(ctx.actor()?, &period, agent, None)
        .await?;
    let totals = rows.into_iter().next().unwrap_or_default();
    if format == Format::Csv {
        return Ok(csv_answer(
            rows_csv(std::slice::from_ref(&totals)),
            "overview",
        ));
    }
    let body = Overview {
        scope: about(&period, agent),
        totals,
    };
    Ok(http::json(StatusCode::OK, &body))
}

/// `GET /v1/reports/breakdown?by=agent|department|channel|tag`.
pub async fn breakdown(ctx: Ctx) -> Result<Resp, ApiError> {
    let format = format(&ctx)?;
    let by = ctx
        .query::<String>("by")?
        .ok_or_else(|| ApiError::invalid("by", "required: agent, department, channel or tag"))?;
    let by = Dimension::parse(&by)
        .ok_or_else(|| ApiError::invalid("by", "agent, department, channel or tag"))?;
    let (period, agent) = period(&ctx).await?;
    let rows = ctx
        .app
        .engine
        .report(ctx.actor()?, &period, agent, Some(by))
        .await?;
    if format == Format::Csv {
        return Ok(csv_answer(rows_csv(&rows), by.as_str()));
    }
    let body = Breakdown {
        scope: about(&period, agent),
        by,
        rows,
    };
    Ok(http::json(StatusCode::OK, &body))
}

/// `GET /v1/reports/series?interval=hour|day`.
pub async fn series(ctx: Ctx) -> Result<Resp, ApiError> {
    let format = format(&ctx)?;
    let interval = match ctx.query::<String>("interval")?.as_deref() {
        None | Some("day") => Interval::Day,
        Some("hour") => Interval::Hour,
        Some(_) => return Err(ApiError::invalid("interval", "hour or day")),
    };
    let (period, agent) = period(&ctx).await?;
    let points: Vec<SeriesPoint> = ctx
        .app
        .engine
        .report_series(ctx.actor()?, &period, agent, interval)
        .await?;
    if format == Format::Csv {
        let mut csv = Csv::with_header(&["start", "opened", "closed", "reopened"]);
        for p in &points {
            csv.row([
                plain(time_text(p.start)),
                plain(p.opened),
                plain(p.closed),
                plain(p.reopened),
            ]);
        }
        return Ok(csv_answer(csv.finish(), "series"));
    }
    let body = Series {
        scope: about(&period, agent),
        interval,
        points,
    };
    Ok(http::json(StatusCode::OK, &body))
}

/// `GET /v1/reports/feedback`: the ratings with a text, newest first.
pub async fn feedback(ctx: Ctx) -> Result<Resp, ApiError> {
    let format = format(&ctx)?;
    let limit: Option<usize> = ctx.query("limit")?;
    let (period, agent) = period(&ctx).await?;
    let items: Vec<Feedback> = ctx
        .app
        .engine
        .report_feedback(ctx.actor()?, &period, agent, limit.unwrap_or(100))
        .await?;
    if format == Format::Csv {
        let mut csv = Csv::with_header(&[
            "conversation_id",
            "agent_id",
            "score",
            "rated_at",
            "feedback",
        ]);
        for f in &items {
            csv.row([
                plain(f.conversation_id.0),
                opt(f.agent_id.map(|a| a.0)),
                plain(f.score),
                plain(time_text(f.rated_at)),
                Field::Text(&f.feedback),
            ]);
        }
        return Ok(csv_answer(csv.finish(), "feedback"));
    }
    let body = Feedbacks {
        scope: about(&period, agent),
        items,
    };
    Ok(http::json(StatusCode::OK, &body))
}

/// `GET /v1/conversations/{id}/transcript?format=text|html|json`: what the caller may read
/// of a conversation, whole (internal notes for staff only). Without `format`, `Accept`
/// picks `text/html` or `text/plain`; JSON otherwise.
pub async fn transcript(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: chat_core::ConversationId = ctx.id("id")?;
    let accept = ctx
        .headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let format = match ctx.query::<String>("format")?.as_deref() {
        Some(f @ ("text" | "html" | "json")) => f.to_owned(),
        Some(_) => return Err(ApiError::invalid("format", "text, html or json")),
        None if accept.contains("text/html") => "html".into(),
        None if accept.contains("text/plain") => "text".into(),
        None => "json".into(),
    };
    let transcript = ctx.app.engine.transcript(ctx.actor()?, id).await?;
    let name = format!("transcript-{}", id.0);
    let mut resp = match format.as_str() {
        "text" => http::with_type(
            StatusCode::OK,
            crate::transcript::text(&transcript),
            "text/plain; charset=utf-8",
        ),
        "html" => {
            let mut resp = http::with_type(
                StatusCode::OK,
                crate::transcript::html(&transcript),
                "text/html; charset=utf-8",
            );
            // Escaped already; the policy is the second wall: no script, no fetch.
            resp.headers_mut().insert(
                hyper::header::CONTENT_SECURITY_POLICY,
                hyper::header::HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; sandbox",
                ),
            );
            resp
        }
        _ => {
            let viewer = ctx.viewer();
            let messages: Vec<_> = transcript
                .messages
                .iter()
                .filter_map(|m| viewer.message(m))
                .collect();
            http::json(
                StatusCode::OK,
                &TranscriptAnswer {
                    conversation: viewer.conversation(&transcript.conversation),
                    messages,
                    truncated: transcript.truncated,
                },
            )
        }
    };
    let extension = match format.as_str() {
        "text" => "txt",
        other => other,
    };
    if let Ok(value) = format!("inline; filename=\"{name}.{extension}\"").parse() {
        resp.headers_mut()
            .insert(hyper::header::CONTENT_DISPOSITION, value);
    }
    Ok(resp)
}

/// `GET /v1/conversations/{id}/transcript` as JSON: the conversation and its messages as
/// the caller may see them.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Transcript)]
pub(crate) struct TranscriptAnswer<'a> {
    #[schema(value_type = chat_core::Conversation)]
    conversation: chat_core::policy::view::ConversationView<'a>,
    /// Oldest first.
    #[schema(value_type = Vec<chat_core::Message>)]
    messages: Vec<&'a chat_core::Message>,
    /// More than 10,000 messages: only the first are here.
    truncated: bool,
}
