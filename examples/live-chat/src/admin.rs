//! `/api/admin/live-chat/…`: the staff routes. Every one needs a staff token; what a
//! staff member may see and do (an agent only its own and queued chats, delete for
//! admins) is the engine's policy.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chat_core::{
    Actor, AgentId, Conversation, ConversationFilter, DetailsPatch, Mode, Transfer, TransferTarget,
    store::AssignedFilter,
};
use chat_server::extension::{Matched, PathTable};
use chat_server::http::Resp;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::public::{agents, page_of, read_message, transcript};
use crate::shapes::{self, Agents, meta};
use crate::{Ctx, Fail, Result, json_body, ok, paging, query};

/// The staff endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    List,
    Details,
    Reply,
    Assign,
    Status,
    Note,
    Transfer,
    Delete,
    Analytics,
    History,
}

static ENDPOINTS: LazyLock<PathTable<Endpoint>> = LazyLock::new(|| {
    use Endpoint::*;
    PathTable::new([
        (Method::GET, "/api/admin/live-chat/sessions", List),
        (Method::GET, "/api/admin/live-chat/sessions/{id}", Details),
        (
            Method::POST,
            "/api/admin/live-chat/sessions/{id}/reply",
            Reply,
        ),
        (
            Method::PATCH,
            "/api/admin/live-chat/sessions/{id}/assign",
            Assign,
        ),
        (
            Method::PATCH,
            "/api/admin/live-chat/sessions/{id}/status",
            Status,
        ),
        (
            Method::POST,
            "/api/admin/live-chat/sessions/{id}/notes",
            Note,
        ),
        (
            Method::POST,
            "/api/admin/live-chat/sessions/{id}/transfer",
            Transfer,
        ),
        (Method::DELETE, "/api/admin/live-chat/sessions/{id}", Delete),
        (Method::GET, "/api/admin/live-chat/analytics", Analytics),
        (
            Method::GET,
            "/api/admin/live-chat/customers/{email}/history",
            History,
        ),
    ])
});

pub(crate) async fn route(ctx: &Ctx<'_>, req: Request<Incoming>) -> (&'static str, Result<Resp>) {
    let staff = match ctx.staff(&req).await {
        Ok(staff) => staff,
        Err(fail) => return ("/api/admin/live-chat (unauthorized)", Err(fail)),
    };
    let path = req.uri().path().trim_end_matches('/').to_owned();
    // The document knows no 405: another method is a route it does not have.
    let Matched::Found {
        endpoint,
        pattern,
        params,
    } = ENDPOINTS.find(req.method(), &path)
    else {
        return (
            "/api/admin/live-chat (no route)",
            Err(Fail::new(StatusCode::NOT_FOUND, "Route not found")),
        );
    };
    let s = &staff;
    let sid = params.get("id").unwrap_or_default();
    let answer = match endpoint {
        Endpoint::List => list(ctx, s, &req).await,
        Endpoint::Details => details(ctx, s, sid).await,
        Endpoint::Reply => reply(ctx, s, sid, req).await,
        Endpoint::Assign => assign(ctx, s, sid, req).await,
        Endpoint::Status => status(ctx, s, sid, req).await,
        Endpoint::Note => note(ctx, s, sid, req).await,
        Endpoint::Transfer => transfer(ctx, s, sid, req).await,
        Endpoint::Delete => delete(ctx, s, sid).await,
        Endpoint::Analytics => analytics(ctx, s, &req).await,
        Endpoint::History => {
            let email = percent_decode(params.get("email").unwrap_or_default());
            history(ctx, s, &email, &req).await
        }
    };
    (pattern, answer)
}

/// A conversation the staff member can see, by session id.
async fn visible(ctx: &Ctx<'_>, staff: &Actor, sid: &str) -> Result<Conversation> {
    let id = ctx.conversation_id(sid)?;
    Ok(ctx.engine().conversation(staff, id).await?)
}

/// Every conversation matching `filter` that the staff member can see, newest activity
/// first, with the per-status counts. Capped at 10,000: past that, narrow the filters.
async fn everything(
    ctx: &Ctx<'_>,
    staff: &Actor,
    mut filter: ConversationFilter,
) -> Result<(Vec<Conversation>, BTreeMap<Mode, u64>)> {
    let mut items = Vec::new();
    let mut counts = None;
    filter.limit = Some(200);
    loop {
        let page = ctx
            .engine()
            .list_conversations(staff, filter.clone())
            .await?;
        counts.get_or_insert(page.counts);
        items.extend(page.items);
        match page.next_cursor {
            Some(next) if items.len() < 10_000 => filter.cursor = Some(next.encode()),
            _ => return Ok((items, counts.unwrap_or_default())),
        }
    }
}

async fn list(ctx: &Ctx<'_>, staff: &Actor, req: &Request<Incoming>) -> Result<Resp> {
    let (page, limit) = paging(req, 20);
    let mut filter = ConversationFilter::default();
    if let Some(status) = query(req, "status") {
        filter.modes = shapes::modes(&status).ok_or_else(|| Fail::bad_request("Invalid status"))?;
    }
    if let Some(priority) = query(req, "priority") {
        filter.priority =
            Some(shapes::priority(&priority).ok_or_else(|| Fail::bad_request("Invalid priority"))?);
    }
    // `general` is "no department", which the store filter cannot say: filtered below.
    let department = match query(req, "department") {
        None => None,
        Some(d) => {
            Some(shapes::department(&d).ok_or_else(|| Fail::bad_request("Invalid department"))?)
        }
    };
    if let Some(Some(d)) = &department {
        filter.department = Some(d.clone());
    }
    match query(req, "assignedAgent").as_deref() {
        None => {}
        Some("unassigned") => filter.assigned = Some(AssignedFilter::Unassigned),
        Some(id) => {
            let id = id
                .parse::<AgentId>()
                .map_err(|_| Fail::bad_request("Invalid agent ID"))?;
            filter.assigned = Some(AssignedFilter::Agent(id));
        }
    }
    let (mut items, counts) = everything(ctx, staff, filter).await?;
    if let Some(None) = department {
        items.retain(|c| c.department.is_none());
    }
    if let Some(search) = query(req, "search") {
        let needle = search.trim().to_lowercase();
        let exact = ctx.chat.ids.check(search.trim());
        items.retain(|c| {
            exact == Some(c.id)
                || [meta::NAME, meta::EMAIL]
                    .iter()
                    .filter_map(|k| c.metadata.get(*k))
                    .any(|v| v.to_lowercase().contains(&needle))
        });
    }
    let mut status_counts = json!({ "pending": 0, "active": 0, "closed": 0, "archived": 0 });
    for (mode, n) in counts {
        let key = shapes::status(mode);
        status_counts[key] = json!(status_counts[key].as_u64().unwrap_or(0) + n);
    }
    let agents = agents(ctx.engine(), &ctx.system()).await?;
    let sessions = items
        .iter()
        .map(|c| shapes::session(&ctx.session_id(c.id), c, &agents))
        .collect();
    let mut answer = page_of(sessions, page, limit);
    answer["statusCounts"] = status_counts;
    Ok(ok(StatusCode::OK, answer))
}

async fn details(ctx: &Ctx<'_>, staff: &Actor, sid: &str) -> Result<Resp> {
    let conversation = visible(ctx, staff, sid).await?;
    let agents = agents(ctx.engine(), &ctx.system()).await?;
    let all = transcript(ctx.engine(), staff, conversation.id).await?;
    let (notes, messages): (Vec<_>, Vec<_>) = all.iter().partition(|m| !shapes::in_transcript(m));
    let mut session = shapes::session(sid, &conversation, &agents);
    session["notes"] = notes.iter().map(|m| shapes::note(m, &agents)).collect();
    Ok(ok(
        StatusCode::OK,
        json!({
            "success": true,
            "data": {
                "session": session,
                "messages": messages
                    .iter()
                    .map(|m| shapes::message(sid, m, Some(&conversation), &agents))
                    .collect::<Vec<_>>(),
            }
        }),
    ))
}

async fn reply(ctx: &Ctx<'_>, staff: &Actor, sid: &str, req: Request<Incoming>) -> Result<Resp> {
    let conversation = visible(ctx, staff, sid).await?;
    let input = read_message(ctx, staff, conversation.id, req).await?;
    let posted = ctx
        .engine()
        .post_message(staff, conversation.id, input)
        .await?;
    let agents = agents(ctx.engine(), &ctx.system()).await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({
            "success": true,
            "message": "Reply sent successfully",
            "data": shapes::message(sid, &posted.message, Some(&posted.conversation), &agents),
        }),
    ))
}

fn agent_id(text: Option<&str>, missing: &str) -> Result<AgentId> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    let text = text.ok_or_else(|| Fail::bad_request(missing))?;
    text.parse()
        .map_err(|_| Fail::new(StatusCode::NOT_FOUND, "Agent not found"))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AssignBody {
    // The document also sends `agentName`; the stored staff record's name is used.
    agent_id: Option<String>,
}

async fn assign(ctx: &Ctx<'_>, staff: &Actor, sid: &str, req: Request<Incoming>) -> Result<Resp> {
    let conversation = visible(ctx, staff, sid).await?;
    let body: AssignBody = json_body(req).await?;
    let agent = agent_id(body.agent_id.as_deref(), "Agent ID is required")?;
    let assigned = ctx.engine().assign(staff, conversation.id, agent).await?;
    let name = ctx.engine().agent(&ctx.system(), agent).await?.name;
    Ok(ok(
        StatusCode::OK,
        json!({
            "success": true,
            "message": "Session assigned successfully",
            "data": {
                "sessionId": sid,
                "assignedAgent": agent.to_string(),
                "agentName": name,
                "status": shapes::status(assigned.mode),
            }
        }),
    ))
}

#[derive(Deserialize, Default)]
struct StatusBody {
    status: Option<String>,
    priority: Option<String>,
    department: Option<String>,
    tags: Option<Vec<String>>,
}

async fn status(ctx: &Ctx<'_>, staff: &Actor, sid: &str, req: Request<Incoming>) -> Result<Resp> {
    let mut conversation = visible(ctx, staff, sid).await?;
    let body: StatusBody = json_body(req).await?;
    let target = match body.status.as_deref() {
        None => None,
        Some("pending") => Some(Mode::Queued),
        Some("active") => Some(Mode::Agent),
        Some("closed") => Some(Mode::Closed),
        Some("archived") => Some(Mode::Archived),
        Some(_) => return Err(Fail::bad_request("Invalid status")),
    };
    let patch = DetailsPatch {
        priority: body
            .priority
            .as_deref()
            .map(|p| shapes::priority(p).ok_or_else(|| Fail::bad_request("Invalid priority")))
            .transpose()?,
        department: body
            .department
            .as_deref()
            .map(|d| shapes::department(d).ok_or_else(|| Fail::bad_request("Invalid department")))
            .transpose()?,
        tags: body.tags,
        ..DetailsPatch::default()
    };
    let engine = ctx.engine();
    if patch != DetailsPatch::default() {
        conversation = engine.update_details(staff, conversation.id, patch).await?;
    }
    if let Some(target) = target
        && shapes::status(target) != shapes::status(conversation.mode)
    {
        // Archiving is for closed chats in the engine; the document archives from any
        // status, so an open chat is closed on the way.
        if target == Mode::Archived && conversation.mode.is_open() {
            engine.close(staff, conversation.id, None).await?;
        }
        conversation = engine.set_mode(staff, conversation.id, target).await?;
    }
    Ok(ok(
        StatusCode::OK,
        json!({
            "success": true,
            "message": "Session updated successfully",
            "data": {
                "sessionId": sid,
                "status": shapes::status(conversation.mode),
                "priority": shapes::session(sid, &conversation, &Agents::new())["priority"],
                "department": conversation.department.as_deref().unwrap_or("general"),
                "tags": conversation.tags,
            }
        }),
    ))
}

#[derive(Deserialize, Default)]
struct NoteBody {
    content: Option<String>,
}

async fn note(ctx: &Ctx<'_>, staff: &Actor, sid: &str, req: Request<Incoming>) -> Result<Resp> {
    let conversation = visible(ctx, staff, sid).await?;
    let body: NoteBody = json_body(req).await?;
    let content = body.content.unwrap_or_default();
    if content.trim().is_empty() {
        return Err(Fail::bad_request("Note content is required"));
    }
    let note = ctx
        .engine()
        .post_note(staff, conversation.id, &content)
        .await?;
    let added_by = match staff {
        Actor::Staff { agent, .. } => json!(agent.to_string()),
        _ => Value::Null,
    };
    Ok(ok(
        StatusCode::CREATED,
        json!({
            "success": true,
            "message": "Note added successfully",
            "data": { "content": note.body, "addedBy": added_by, "addedAt": shapes::iso(note.created_at) },
        }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TransferBody {
    // As for assign, `toAgentName` is ignored and the stored name used.
    to_agent_id: Option<String>,
    reason: Option<String>,
}

async fn transfer(ctx: &Ctx<'_>, staff: &Actor, sid: &str, req: Request<Incoming>) -> Result<Resp> {
    let conversation = visible(ctx, staff, sid).await?;
    let body: TransferBody = json_body(req).await?;
    let agent = agent_id(body.to_agent_id.as_deref(), "Target agent ID is required")?;
    ctx.engine()
        .transfer(
            staff,
            conversation.id,
            Transfer {
                to: TransferTarget::Agent(agent),
                reason: body.reason,
            },
        )
        .await?;
    let name = ctx.engine().agent(&ctx.system(), agent).await?.name;
    Ok(ok(
        StatusCode::OK,
        json!({
            "success": true,
            "message": "Session transferred successfully",
            "data": { "sessionId": sid, "assignedAgent": agent.to_string(), "agentName": name },
        }),
    ))
}

async fn delete(ctx: &Ctx<'_>, staff: &Actor, sid: &str) -> Result<Resp> {
    let conversation = visible(ctx, staff, sid).await?;
    match ctx
        .engine()
        .delete_conversation(staff, conversation.id)
        .await
    {
        Ok(()) => {
            // A widget-chosen id is free again once its chat is gone.
            ctx.chat.ids.forget(conversation.id);
            Ok(ok(
                StatusCode::OK,
                json!({ "success": true, "message": "Session and all messages deleted successfully" }),
            ))
        }
        Err(chat_core::Error::Forbidden(_)) => Err(Fail::new(
            StatusCode::FORBIDDEN,
            "Only admins may delete sessions",
        )),
        Err(e) => Err(e.into()),
    }
}

/// An ISO date (`2024-11-01`) or date-time.
fn date(text: &str) -> Result<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| Fail::bad_request("Invalid date; use ISO format"))
}

async fn analytics(ctx: &Ctx<'_>, staff: &Actor, req: &Request<Incoming>) -> Result<Resp> {
    let end = match query(req, "endDate") {
        Some(d) => date(&d)?,
        None => ctx.engine().clock().now(),
    };
    let start = match query(req, "startDate") {
        Some(d) => date(&d)?,
        None => end - time::Duration::days(30),
    };
    let (all, _) = everything(ctx, staff, ConversationFilter::default()).await?;
    let sessions: Vec<&Conversation> = all
        .iter()
        .filter(|c| c.created_at >= start && c.created_at <= end)
        .collect();
    let total = sessions.len();
    let average = |values: &[f64]| -> Value {
        if values.is_empty() {
            Value::Null
        } else {
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            json!((mean * 10.0).round() / 10.0)
        }
    };
    let messages: Vec<f64> = sessions.iter().map(|c| c.message_count as f64).collect();
    let ratings: Vec<f64> = sessions
        .iter()
        .filter_map(|c| c.rating.as_ref().map(|r| f64::from(r.score)))
        .collect();
    let closed = sessions.iter().filter(|c| !c.mode.is_open()).count();
    let responses: Vec<i64> = sessions
        .iter()
        .filter_map(|c| {
            c.first_response_at
                .map(|at| (at - c.created_at).whole_milliseconds() as i64)
        })
        .collect();
    let mut by_day: BTreeMap<String, u64> = BTreeMap::new();
    for c in &sessions {
        *by_day
            .entry(shapes::iso(c.created_at)[..10].to_owned())
            .or_default() += 1;
    }
    let mut per_agent: BTreeMap<AgentId, (u64, Vec<f64>)> = BTreeMap::new();
    for c in &sessions {
        if let Some(agent) = c.assigned_agent_id {
            let entry = per_agent.entry(agent).or_default();
            entry.0 += 1;
            if let Some(r) = &c.rating {
                entry.1.push(f64::from(r.score));
            }
        }
    }
    let mut top: Vec<(AgentId, u64, Vec<f64>)> =
        per_agent.into_iter().map(|(a, (n, r))| (a, n, r)).collect();
    top.sort_by_key(|t| std::cmp::Reverse(t.1));
    top.truncate(10);
    Ok(ok(
        StatusCode::OK,
        json!({
            "success": true,
            "data": {
                "period": { "start": shapes::iso(start), "end": shapes::iso(end) },
                "overview": {
                    "totalSessions": total,
                    "avgMessages": average(&messages),
                    "closedSessions": closed,
                    "avgRating": average(&ratings),
                },
                "responseTime": {
                    "avgResponseTime": (!responses.is_empty())
                        .then(|| responses.iter().sum::<i64>() / responses.len() as i64),
                    "minResponseTime": responses.iter().min(),
                    "maxResponseTime": responses.iter().max(),
                },
                "sessionsByDay": by_day
                    .into_iter()
                    .map(|(day, count)| json!({ "_id": day, "count": count }))
                    .collect::<Vec<_>>(),
                "topAgents": top
                    .into_iter()
                    .map(|(agent, handled, ratings)| json!({
                        "_id": agent.to_string(),
                        "sessionsHandled": handled,
                        "avgRating": average(&ratings),
                    }))
                    .collect::<Vec<_>>(),
            }
        }),
    ))
}

async fn history(
    ctx: &Ctx<'_>,
    staff: &Actor,
    email: &str,
    req: &Request<Incoming>,
) -> Result<Resp> {
    let (page, limit) = paging(req, 20);
    let mut sessions = ctx.engine().contact_history(staff, email).await?;
    sessions.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    let items = sessions
        .iter()
        .map(|c| {
            json!({
                "sessionId": ctx.session_id(c.id),
                "status": shapes::status(c.mode),
                "messageCount": c.message_count,
                "rating": c.rating.as_ref().map(|r| json!({ "score": r.score })),
                "createdAt": shapes::iso(c.created_at),
                "endedAt": c.closed_at.map(shapes::iso),
            })
        })
        .collect();
    Ok(ok(StatusCode::OK, page_of(items, page, limit)))
}

/// `%40` → `@` in a path segment.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}
