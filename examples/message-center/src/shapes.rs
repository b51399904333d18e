//! The document's JSON shapes and vocabulary, and its demo data.

use chat_core::{
    Actor, AgentId, Channel, ContactInput, Conversation, Engine, Message, MessageKind, MessagePage,
    Mode, PostMessage, Role, Sender, TenantId,
};
use chat_server::http::Resp;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::{MessageCenter, engine_fail, not_found};

/// The metadata key of the customer's name as the chat was created, so the list needs no
/// contact look-up per chat (the frontend polls it every 5 seconds).
pub const NAME: &str = "customer_name";

/// The metadata key of the document's `online` flag (set by `PATCH /chats/{id}`).
pub const ONLINE: &str = "online";

/// The document's channel names.
pub fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Whatsapp => "WhatsApp",
        Channel::Telegram => "Telegram",
        Channel::Email => "Email",
        Channel::Web => "Web",
        Channel::Sms => "SMS",
        Channel::Api => "API",
        _ => "Other",
    }
}

/// A channel from the document's name (case-insensitive).
pub fn channel_from(name: &str) -> Option<Channel> {
    match name.to_ascii_lowercase().as_str() {
        "whatsapp" => Some(Channel::Whatsapp),
        "telegram" => Some(Channel::Telegram),
        "email" => Some(Channel::Email),
        _ => None,
    }
}

/// The document's four modes. Our `queued` (waiting for a human after a handoff) shows
/// as `agent`, `archived` as `closed`: the document's frontend knows only four.
pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Bot => "bot",
        Mode::Queued | Mode::Agent => "agent",
        Mode::Paused => "paused",
        Mode::Closed | Mode::Archived => "closed",
    }
}

/// A mode the document lets a client set.
pub fn mode_from(name: &str) -> Option<Mode> {
    match name {
        "bot" => Some(Mode::Bot),
        "agent" => Some(Mode::Agent),
        "paused" => Some(Mode::Paused),
        "closed" => Some(Mode::Closed),
        _ => None,
    }
}

/// The document's roles: `admin` sees everything, `agent` its assigned chats.
pub fn role(r: Role) -> &'static str {
    match r {
        Role::Agent => "agent",
        _ => "admin",
    }
}

fn rfc3339(t: Option<time::OffsetDateTime>) -> Value {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

fn online(c: &Conversation) -> bool {
    c.metadata.get(ONLINE).is_some_and(|v| v == "true")
}

/// The list item of `GET /chats/`; `None` for conversations without a number (opened
/// through the built-in `/v1` API, not this one).
pub fn summary(c: &Conversation) -> Option<Value> {
    let mut v = base(c)?;
    v["last_message_at"] = rfc3339(c.last_message_at);
    Some(v)
}

fn base(c: &Conversation) -> Option<Value> {
    Some(json!({
        "id": chat_starter::numbering::number_of(c)?,
        "name": c.metadata.get(NAME).map_or("", String::as_str),
        "channel": channel_name(c.channel),
        "online": online(c),
        "unread": c.unread_for_agent,
        "mode": mode_name(c.mode),
    }))
}

/// One message: `{id, text, sender, status, time}`. `id` is the message's place in its
/// chat; `status` is `read` once the other side's read cursor passed it.
pub fn message(m: &Message, c: &Conversation) -> Value {
    let (sender, read_by_other) = match m.sender {
        Sender::Customer => ("customer", m.seq <= c.agent_read_seq),
        // The document knows two senders; the bot answers on the desk's side.
        _ => ("agent", m.seq <= c.customer_read_seq),
    };
    let time = format!("{:02}:{:02}", m.created_at.hour(), m.created_at.minute());
    json!({
        "id": m.seq,
        "text": m.body,
        "sender": sender,
        "status": if read_by_other { "read" } else { "sent" },
        "time": time,
    })
}

/// `GET /chats/{id}`: the summary with the customer's profile and every message.
pub async fn detail(engine: &Engine, actor: &Actor, c: &Conversation) -> Result<Value, Resp> {
    let contact = engine
        .contact(actor, c.contact_id)
        .await
        .map_err(engine_fail)?;
    let mut messages = Vec::new();
    let mut after = None;
    loop {
        let page = engine
            .messages(
                actor,
                c.id,
                MessagePage {
                    after,
                    limit: Some(engine.limits().max_page),
                    ..Default::default()
                },
            )
            .await
            .map_err(engine_fail)?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        // Notes and the desk's timeline lines ("Assigned to …") are not messages in the
        // document's model.
        messages.extend(
            page.iter()
                .filter(|m| !matches!(m.kind, MessageKind::Note | MessageKind::Event))
                .map(|m| message(m, c)),
        );
    }
    let mut v = base(c).ok_or_else(not_found)?;
    v["name"] = json!(contact.name.clone().unwrap_or_default());
    let last_active = if online(c) {
        "Online".to_owned()
    } else {
        c.last_customer_message_at
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| "Offline".to_owned())
    };
    v["profile"] = json!({
        "phone": contact.phone,
        "email": contact.email,
        "address": contact.address,
        "lastActive": last_active,
    });
    v["messages"] = Value::Array(messages);
    Ok(v)
}

/// The document's users have integer ids. Staff are numbered by creation order, which
/// never changes (staff are disabled, not deleted), so the numbers are stable.
async fn numbered_staff(engine: &Engine, tenant: TenantId) -> Result<Vec<AgentId>, Resp> {
    let mut staff = engine
        .agents(&Actor::System { tenant })
        .await
        .map_err(engine_fail)?;
    staff.sort_by_key(|a| (a.created_at, a.id));
    Ok(staff.into_iter().map(|a| a.id).collect())
}

/// The number of a staff member.
pub async fn user_number(engine: &Engine, tenant: TenantId, id: AgentId) -> Result<usize, Resp> {
    let staff = numbered_staff(engine, tenant).await?;
    Ok(staff.iter().position(|a| *a == id).map_or(0, |i| i + 1))
}

/// The staff member with a number.
pub async fn user_by_number(
    engine: &Engine,
    tenant: TenantId,
    number: u64,
) -> Result<Option<AgentId>, Resp> {
    let staff = numbered_staff(engine, tenant).await?;
    Ok(usize::try_from(number)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| staff.get(i).copied()))
}

/// The document's four demo chats: John Doe (agent mode, 2 unread, assigned), Sarah
/// Williams (bot, 0 unread), Maria Lopez (bot, 1 unread, unassigned), Ahmed Hassan
/// (paused, assigned). The same people as the `chat-server` binary's demo.
pub async fn seed_chats(
    engine: &Engine,
    center: &MessageCenter,
    agent: AgentId,
) -> chat_core::Result<()> {
    let system = center.system();
    let contact = |name: &str, phone: &str, email: &str, address: &str| ContactInput {
        name: Some(name.into()),
        phone: Some(phone.into()),
        email: Some(email.into()),
        address: Some(address.into()),
        ..Default::default()
    };
    let chats = [
        (
            contact(
                "John Doe",
                "+62 812-3456-7890",
                "john.doe@email.com",
                "Jakarta Selatan",
            ),
            Channel::Whatsapp,
            Mode::Agent,
            &["Halo!", "Is my order shipped yet?"][..],
            true,
        ),
        (
            contact(
                "Sarah Williams",
                "+62 813-1111-2222",
                "sarah.w@email.com",
                "Bandung",
            ),
            Channel::Telegram,
            Mode::Bot,
            &[][..],
            false,
        ),
        (
            contact(
                "Maria Lopez",
                "+62 814-3333-4444",
                "maria.lopez@email.com",
                "Surabaya",
            ),
            Channel::Email,
            Mode::Bot,
            &["What are your opening hours?"][..],
            false,
        ),
        (
            contact(
                "Ahmed Hassan",
                "+62 815-5555-6666",
                "ahmed.h@email.com",
                "Depok",
            ),
            Channel::Whatsapp,
            Mode::Paused,
            &["I will send the invoice later."][..],
            false,
        ),
    ];
    for (contact, channel, mode, lines, is_online) in chats {
        let id = center.open_numbered(engine, contact, channel).await?;
        if mode != Mode::Bot {
            engine.assign(&system, id, agent).await?;
        }
        for line in lines {
            engine
                .post_for_customer(&system, id, PostMessage::text(*line))
                .await?;
        }
        if mode == Mode::Paused {
            engine.set_mode(&system, id, Mode::Paused).await?;
        }
        if is_online {
            engine
                .set_conversation_metadata(&system, id, ONLINE, Some("true"))
                .await?;
        }
    }
    Ok(())
}
