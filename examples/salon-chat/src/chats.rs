//! Chats: opening one (staff with a customer, or a customer with the salon), listing,
//! reading one and its history, and the salon's statistics.

use chat_core::{ConversationFilter, MessagePage, Mode, OpenConversation};
use chat_server::Context;
use chat_server::http;
use chat_starter::fastapi;
use chat_starter::numbering::number_of;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use crate::answers::{Answer, engine_error, json_body, ok, paging, path_number};
use crate::salons::SalonChat;
use crate::who::{Who, scalar};
use crate::{ENTITY_ID, ENTITY_TYPE};

impl SalonChat {
    /// `POST /api/v1/chat/chats`: staff start a chat with a customer of the salon.
    pub(crate) async fn create(
        &self,
        cx: &Context,
        who: &mut Who,
        req: Request<Incoming>,
    ) -> Answer {
        who.staff_only()?;
        let body = json_body(req).await?;
        let Some(customer_id) = body.get("customer_id").and_then(Value::as_u64) else {
            return Err(fastapi::invalid(vec![fastapi::item(
                "int_type",
                "customer_id",
                "Input should be a valid integer",
                body.get("customer_id").cloned().unwrap_or(Value::Null),
            )]));
        };
        let engine = cx.engine();
        let customer = self
            .customer(engine, &who.salon, customer_id)
            .await
            .map_err(engine_error)?
            .ok_or_else(|| fastapi::detail(StatusCode::NOT_FOUND, "Customer not found"))?;
        let input = OpenConversation {
            contact_id: Some(customer.id),
            title: body.get("title").and_then(Value::as_str).map(str::to_owned),
            ..Default::default()
        };
        let (number, opened) = who
            .salon
            .chats
            .open(engine, &who.actor, input)
            .await
            .map_err(engine_error)?;
        let mut c = opened.conversation;
        if let Some(text) = body
            .get("initial_message")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
        {
            // The staff member's first words; posting them also takes the chat.
            let (after, _) = who
                .send(engine, number, &json!({ "content": text }))
                .await?;
            c = after;
        } else if c.mode == Mode::Queued {
            c = engine.claim(&who.actor, c.id).await.map_err(engine_error)?;
        }
        Ok(ok(StatusCode::CREATED, who.chat_json(engine, &c).await))
    }

    /// `POST /api/v1/chat/chats/customer`: a customer opens a chat with the salon.
    pub(crate) async fn create_as_customer(
        &self,
        cx: &Context,
        who: &mut Who,
        req: Request<Incoming>,
    ) -> Answer {
        who.customer_only()?;
        let body = json_body(req).await?;
        let mut metadata = std::collections::BTreeMap::new();
        if let (Some(kind), Some(id)) = (
            body.get("entity_type").and_then(Value::as_str),
            body.get("entity_id").map(scalar),
        ) {
            metadata.insert(ENTITY_TYPE.to_owned(), kind.to_owned());
            metadata.insert(ENTITY_ID.to_owned(), id);
        }
        let input = OpenConversation {
            title: body.get("title").and_then(Value::as_str).map(str::to_owned),
            first_message: body
                .get("initial_message")
                .and_then(Value::as_str)
                .map(str::to_owned),
            metadata,
            ..Default::default()
        };
        let engine = cx.engine();
        let (_, opened) = who
            .salon
            .chats
            .open(engine, &who.actor, input)
            .await
            .map_err(engine_error)?;
        Ok(ok(
            StatusCode::CREATED,
            who.chat_json(engine, &opened.conversation).await,
        ))
    }

    /// `GET /api/v1/chat/stats`: the salon's chats and who is connected.
    pub(crate) async fn stats(&self, cx: &Context, who: &Who) -> Answer {
        who.staff_only()?;
        let engine = cx.engine();
        let mut counts: std::collections::BTreeMap<Mode, u64>;
        let mut unread = 0;
        let mut cursor = None;
        loop {
            let page = engine
                .list_conversations(
                    &who.actor,
                    ConversationFilter {
                        cursor,
                        limit: Some(engine.limits().max_page),
                        ..Default::default()
                    },
                )
                .await
                .map_err(engine_error)?;
            counts = page.counts;
            unread += page
                .items
                .iter()
                .filter(|c| number_of(c).is_some())
                .map(|c| c.unread_for_agent)
                .sum::<u64>();
            match page.next_cursor {
                Some(next) => cursor = Some(next.encode()),
                None => break,
            }
        }
        let count = |modes: &[Mode]| modes.iter().filter_map(|m| counts.get(m)).sum::<u64>();
        let online = self.presence.counts(who.salon.tenant);
        Ok(ok(
            StatusCode::OK,
            json!({
                "salon_id": who.salon.number,
                "total_chats": counts.values().sum::<u64>(),
                "active_chats": count(&[Mode::Bot, Mode::Queued, Mode::Agent, Mode::Paused]),
                "closed_chats": count(&[Mode::Closed]),
                "archived_chats": count(&[Mode::Archived]),
                "unread_messages": unread,
                "online_users": online.users,
                "online_customers": online.customers,
                "active_connections": online.connections,
            }),
        ))
    }
}

/// `GET /api/v1/chat/chats` (staff) and `/chats/customer` (the customer's own), newest
/// activity first, `?page=&page_size=&is_archived=`.
pub(crate) async fn list(
    cx: &Context,
    who: &mut Who,
    req: &Request<Incoming>,
    staff_route: bool,
) -> Answer {
    if staff_route {
        who.staff_only()?;
    } else {
        who.customer_only()?;
    }
    let query = req.uri().query().unwrap_or_default();
    let (page, size) = paging(query, 20)?;
    let modes = match http::query_param(query, "is_archived").as_deref() {
        Some("true") => vec![Mode::Archived],
        Some("false") => vec![
            Mode::Bot,
            Mode::Queued,
            Mode::Agent,
            Mode::Paused,
            Mode::Closed,
        ],
        _ => Vec::new(),
    };
    let engine = cx.engine();
    // Walk whole pages of the engine's cursor list to the one asked for.
    let mut cursor = None;
    let mut skipped = 0;
    let (items, total) = loop {
        let result = engine
            .list_conversations(
                &who.actor,
                ConversationFilter {
                    modes: modes.clone(),
                    cursor,
                    limit: Some(size),
                    ..Default::default()
                },
            )
            .await
            .map_err(engine_error)?;
        let total: u64 = if modes.is_empty() {
            result.counts.values().sum()
        } else {
            modes.iter().filter_map(|m| result.counts.get(m)).sum()
        };
        if skipped + 1 == page || result.next_cursor.is_none() {
            break (
                if skipped + 1 == page {
                    result.items
                } else {
                    Vec::new()
                },
                total,
            );
        }
        skipped += 1;
        cursor = result.next_cursor.map(|c| c.encode());
    };
    let mut chats = Vec::with_capacity(items.len());
    for c in items.iter().filter(|c| number_of(c).is_some()) {
        chats.push(who.chat_json(engine, c).await);
    }
    Ok(ok(
        StatusCode::OK,
        json!({ "chats": chats, "total": total, "page": page, "page_size": size }),
    ))
}

/// `GET /api/v1/chat/chats/{id}`.
pub(crate) async fn chat(cx: &Context, who: &mut Who, id: &str) -> Answer {
    let c = who.chat(cx.engine(), path_number(id, "chat_id")?).await?;
    Ok(ok(StatusCode::OK, who.chat_json(cx.engine(), &c).await))
}

/// `GET /api/v1/chat/chats/{id}/messages?page=&page_size=`: page 1 is the newest
/// `page_size` messages, each page oldest first.
pub(crate) async fn history(
    cx: &Context,
    who: &mut Who,
    req: &Request<Incoming>,
    id: &str,
) -> Answer {
    let number = path_number(id, "chat_id")?;
    let (page, size) = paging(req.uri().query().unwrap_or_default(), 50)?;
    let engine = cx.engine();
    let c = who.chat(engine, number).await?;
    let mut before = None;
    let mut window = Vec::new();
    for _ in 0..page {
        window = engine
            .messages(
                &who.actor,
                c.id,
                MessagePage {
                    before,
                    limit: Some(size),
                    ..Default::default()
                },
            )
            .await
            .map_err(engine_error)?;
        match window.first() {
            Some(oldest) => before = Some(oldest.seq),
            None => break,
        }
    }
    let has_more = window.first().is_some_and(|m| m.seq > 1);
    let mut messages = Vec::with_capacity(window.len());
    for m in &window {
        messages.push(who.message_json(engine, number, c.contact_id, m).await);
    }
    Ok(ok(
        StatusCode::OK,
        json!({
            "messages": messages,
            "page": page,
            "page_size": size,
            "has_more": has_more,
        }),
    ))
}
