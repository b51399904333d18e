//! Conversation routes.

use std::collections::BTreeMap;

use chat_core::policy::view::{ContactView, ConversationView};
use chat_core::store::AssignedFilter;
use chat_core::{
    Actor, AgentId, Channel, ContactId, ContactInput, ConversationFilter, ConversationId,
    DetailsPatch, Engine, Mode, OpenConversation, Priority, TenantId, Transfer, TransferTarget,
    VisitorToken,
};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::http::{self, Resp};

/// Body of `POST /v1/conversations`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(as = OpenConversationRequest)]
pub struct OpenRequest {
    tenant_id: Option<TenantId>,
    #[serde(deserialize_with = "http::object")]
    contact: ContactInput,
    channel: Option<Channel>,
    title: Option<String>,
    department: Option<String>,
    priority: Option<Priority>,
    first_message: Option<String>,
    metadata: BTreeMap<String, String>,
    #[serde(deserialize_with = "http::optional_object")]
    #[schema(inline)]
    identity: Option<Identity>,
}

/// A customer identity signed by the embedding site.
// `Serialize`: the document shows the body's defaults, and this one's is `null`.
#[derive(Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Identity {
    email: String,
    /// Unix seconds
    timestamp: u64,
    /// hex HMAC-SHA256 of `email:timestamp` under the identity secret
    signature: String,
}

pub async fn open(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let body: OpenRequest = ctx.json().await?;
    // Staff opening a conversation for a customer see it as the desk; everyone else is
    // the customer the answer's token will speak for.
    let viewer = if ctx.is_staff() {
        chat_core::policy::Viewer::Desk
    } else {
        chat_core::policy::Viewer::Customer
    };
    // Priority is the desk's judgement: a widget that could set it would put every visitor
    // at the head of the queue.
    if !ctx.is_staff() && body.priority.is_some() {
        return Err(ApiError::invalid(
            "priority",
            "only staff set a conversation's priority",
        ));
    }
    let config = &ctx.app.config;
    let engine = &ctx.app.engine;
    // A signature from the embedding site proves the e-mail: the conversation belongs to
    // the contact with that verified e-mail, and the token speaks for its whole history.
    let mut claimed = Claimed::none();
    let verified = match (&body.identity, &config.identity_secret) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(ApiError::invalid(
                "identity",
                "identity verification is not enabled on this server",
            ));
        }
        (Some(id), Some(secret)) => {
            if !auth::verify_identity(
                secret,
                &id.email,
                id.timestamp,
                &id.signature,
                config.identity_max_age,
            ) {
                return Err(ApiError::unauthorized(
                    "the identity signature is not valid or has expired",
                ));
            }
            // In the store, so a signature used on one server is refused by the others;
            // until this conversation is opened: a failure below gives it back.
            claimed = Claimed::take(engine, &id.signature, id.timestamp, config).await?;
            Some(id.email.clone())
        }
    };
    let (actor, issue_token) = match &ctx.caller {
        Caller::Actor(actor @ Actor::Staff { .. }) if verified.is_none() => (actor.clone(), false),
        Caller::Actor(Actor::Customer {
            conversation: None, ..
        }) if verified.is_none() => (ctx.actor()?.clone(), false),
        Caller::Actor(_) => {
            return Err(ApiError::forbidden(
                "a token cannot open a conversation for a signed identity or another \
                 conversation; open one without it",
            ));
        }
        Caller::Anonymous => {
            let tenant = body.tenant_id.or(config.default_tenant).ok_or_else(|| {
                ApiError::invalid("tenant_id", "this server has no default tenant; name one")
            })?;
            let system = Actor::System { tenant };
            match &verified {
                // An anonymous opener acts as the system, which makes a new contact from
                // what the body claims: typing someone's e-mail reaches nobody.
                None => (system, true),
                Some(email) => {
                    let contact = match engine.identify(&system, email, body.contact.clone()).await
                    {
                        Err(chat_core::Error::NotFound("tenant")) => {
                            return Err(ApiError::invalid("tenant_id", "no such tenant"));
                        }
                        other => other?,
                    };
                    let customer = Actor::Customer {
                        tenant,
                        contact: contact.id,
                        conversation: None,
                    };
                    (customer, true)
                }
            }
        }
    };
    let input = OpenConversation {
        contact: body.contact,
        // Never taken from the body: naming a contact's id must not reach that contact.
        contact_id: None,
        channel: body.channel.unwrap_or_default(),
        title: body.title,
        department: body.department,
        priority: body.priority.unwrap_or_default(),
        first_message: body.first_message,
        metadata: body.metadata,
    };
    let opened = match engine.open_conversation(&actor, input).await {
        // An unknown tenant named by an anonymous caller is a bad field, not a missing page.
        Err(chat_core::Error::NotFound("tenant")) => {
            return Err(ApiError::invalid("tenant_id", "no such tenant"));
        }
        other => other?,
    };
    let mut answer = Opened {
        conversation: viewer.conversation(&opened.conversation),
        contact: viewer.contact(&opened.contact),
        messages: &opened.messages,
        // Outside business hours: the widget says so, and may ask for an e-mail.
        offline: opened.offline,
        visitor_token: None,
    };
    if issue_token {
        let token = if verified.is_some() {
            crate::accounts::issue_contact_token(engine, config, &opened.contact).await?
        } else {
            let (token, digest) = auth::new_visitor_token();
            let now = engine.clock().now();
            let record = VisitorToken {
                digest,
                tenant_id: opened.conversation.tenant_id,
                contact_id: opened.contact.id,
                conversation_id: Some(opened.conversation.id),
                created_at: now,
                expires_at: Some(now + config.visitor_token_ttl),
            };
            engine.store_visitor_token(&actor, &record).await?;
            token
        };
        answer.visitor_token = Some(token);
    }
    claimed.keep();
    Ok(http::json(StatusCode::CREATED, &answer))
}

/// The answer to `POST /v1/conversations`: what was opened, as the opener sees it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OpenedConversation)]
pub(crate) struct Opened<'a> {
    #[schema(value_type = chat_core::Conversation)]
    conversation: ConversationView<'a>,
    #[schema(value_type = chat_core::Contact)]
    contact: ContactView<'a>,
    /// The first message, when the opening carried one, and the welcome message.
    #[schema(value_type = Vec<chat_core::Message>)]
    messages: &'a [chat_core::Message],
    /// The desk was closed (business hours) at the opening: the conversation waits,
    /// unrouted, for the next opening.
    offline: bool,
    /// Only for anonymous callers: the bearer token for this conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    visitor_token: Option<String>,
}

/// An identity signature claimed for one opening: given back unless the opening
/// succeeded (a store that was busy, or a client that hung up, must not burn the
/// visitor's signature).
struct Claimed {
    claim: Option<(Engine, String)>,
}

impl Claimed {
    fn none() -> Self {
        Self { claim: None }
    }

    /// Claims a verified `signature` made at `timestamp` (Unix seconds, the site's clock)
    /// until it would be refused for its age anyway: 401 if it was used already.
    async fn take(
        engine: &Engine,
        signature: &str,
        timestamp: u64,
        config: &crate::Config,
    ) -> Result<Self, ApiError> {
        let digest = auth::signature_digest(signature);
        // The age check allows a minute of clock skew into the future.
        let expires = timestamp + config.identity_max_age.as_secs() + 60;
        let unix = |secs: u64| {
            time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
                .map_err(|_| ApiError::invalid("identity", "the timestamp is out of range"))
        };
        let now = unix(auth::unix_now())?;
        if !engine
            .claim_identity_signature(&digest, unix(expires)?, now)
            .await?
        {
            return Err(ApiError::unauthorized(
                "the identity signature was used already; sign a new one for each visit",
            ));
        }
        Ok(Self {
            claim: Some((engine.clone(), digest)),
        })
    }

    fn keep(mut self) {
        self.claim = None;
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        // Drop cannot wait: the release runs beside the answer (or the hang-up).
        if let Some((engine, digest)) = self.claim.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = engine.release_identity_signature(&digest).await {
                    tracing::warn!(error = %e, "could not give an identity signature back");
                }
            });
        }
    }
}

pub async fn list(ctx: Ctx) -> Result<Resp, ApiError> {
    let actor = ctx.actor()?;
    let modes = match ctx
        .query
        .as_deref()
        .and_then(|q| http::query_param(q, "mode"))
    {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .filter(|m| !m.is_empty())
            .map(|m| {
                m.parse::<Mode>()
                    .map_err(|_| ApiError::invalid("mode", format!("`{m}` is not a mode")))
            })
            .collect::<Result<_, _>>()?,
    };
    let assigned = match ctx.query::<String>("assigned")?.as_deref() {
        None => None,
        Some("me") => match actor {
            Actor::Staff { agent, .. } => Some(AssignedFilter::Agent(*agent)),
            // The engine's answer to any assignee filter from a customer, so the value
            // tells nothing.
            _ => return Err(chat_core::Error::Forbidden("filter by assignee").into()),
        },
        Some("none" | "unassigned") => Some(AssignedFilter::Unassigned),
        Some(id) => Some(AssignedFilter::Agent(id.parse::<AgentId>().map_err(
            |_| ApiError::invalid("assigned", "use me, none or an agent id"),
        )?)),
    };
    let filter = ConversationFilter {
        modes,
        priority: ctx.query("priority")?,
        department: ctx.query("department")?,
        assigned,
        tag: ctx.query("tag")?,
        channel: ctx.query("channel")?,
        contact_email: ctx.query("contact_email")?,
        pinned: ctx.query("pinned")?,
        snoozed: ctx.query("snoozed")?,
        text: ctx.query("text")?,
        updated_from: instant(&ctx, "updated_from")?,
        updated_to: instant(&ctx, "updated_to")?,
        cursor: ctx.query("cursor")?,
        limit: ctx.query("limit")?,
    };
    let format = super::reports::format(&ctx)?;
    // A search (`text`) answers each conversation's matching messages too, as `hits`.
    let searched = filter.text.is_some() && format != super::reports::Format::Csv;
    let (page, hits) = if searched {
        let found = ctx.app.engine.search_conversations(actor, filter).await?;
        (found.page, Some(found.hits))
    } else {
        (
            ctx.app.engine.list_conversations(actor, filter).await?,
            None,
        )
    };
    let counts: BTreeMap<&str, u64> = page.counts.iter().map(|(m, n)| (m.as_str(), *n)).collect();
    let next_cursor = page.next_cursor.map(|c| c.encode());
    if format == super::reports::Format::Csv {
        let items: Vec<_> = page
            .items
            .iter()
            .map(|c| ctx.conversation_view(c))
            .collect();
        let mut resp = super::reports::csv_answer(list_csv(&items)?, "conversations");
        if let Some(next) = next_cursor
            && let Ok(value) = next.parse()
        {
            resp.headers_mut().insert("next-cursor", value);
        }
        return Ok(resp);
    }
    let items = page
        .items
        .iter()
        .map(|c| Listed {
            conversation: ctx.conversation_view(c),
            hits: hits
                .as_ref()
                .map(|hits| hits.get(&c.id).map(Vec::as_slice).unwrap_or(&[])),
        })
        .collect();
    Ok(http::json(
        StatusCode::OK,
        &ConversationPage {
            items,
            next_cursor,
            counts,
            counts_capped: page.counts_capped,
        },
    ))
}

/// One page of `GET /v1/conversations`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ConversationPage<'a> {
    items: Vec<Listed<'a>>,
    /// The `cursor` of the next page; null on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
    /// Conversations per mode matching the filters other than `mode`. Exact without
    /// `text`; with `text` each mode is counted up to 1000 and stops there (see
    /// `counts_capped`).
    #[schema(value_type = BTreeMap<String, u64>)]
    counts: BTreeMap<&'a str, u64>,
    /// A search (`text`) stopped counting at least one mode at 1000: a count of 1000 then
    /// means 1000 or more (show "1000+"). Always false without `text`.
    counts_capped: bool,
}

/// A conversation of a list, with its matching messages in a search's answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ListedConversation)]
pub(crate) struct Listed<'a> {
    #[serde(flatten)]
    #[schema(value_type = chat_core::Conversation)]
    conversation: ConversationView<'a>,
    /// Only in an answer to a search (`text`): up to 3 of the conversation's newest
    /// messages the text matched, newest first; none when it matched by title or contact
    /// alone. Internal notes are hits for staff only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<chat_core::MessageHit>, nullable = false)]
    hits: Option<&'a [chat_core::MessageHit]>,
}

/// A query parameter that is an RFC 3339 time (`2026-12-01T00:00:00Z`); 422 naming it if
/// it is not one.
fn instant(ctx: &Ctx, name: &'static str) -> Result<Option<time::OffsetDateTime>, ApiError> {
    ctx.query::<String>(name)?
        .map(|v| {
            time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
                .map_err(|_| ApiError::invalid(name, format!("`{v}` is not an RFC 3339 time")))
        })
        .transpose()
}

/// The columns of a conversation list in CSV, taken from each conversation's view, so a
/// column the caller may not see (a customer: tags, priority, department) stays empty.
const LIST_COLUMNS: &[&str] = &[
    "id",
    "mode",
    "channel",
    "title",
    "priority",
    "department",
    "tags",
    "assigned_agent_id",
    "contact_id",
    "message_count",
    "rating",
    "created_at",
    "updated_at",
    "first_response_at",
    "closed_at",
];

fn list_csv(items: &[chat_core::policy::view::ConversationView<'_>]) -> Result<String, ApiError> {
    use crate::csv::{Csv, Field};
    let mut csv = Csv::with_header(LIST_COLUMNS);
    for item in items {
        let view =
            serde_json::to_value(item).map_err(|e| ApiError::from(chat_core::Error::storage(e)))?;
        let cells: Vec<String> = LIST_COLUMNS
            .iter()
            .map(|column| match (&view[*column], *column) {
                (serde_json::Value::Array(tags), "tags") => tags
                    .iter()
                    .filter_map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(";"),
                (rating, "rating") => rating["score"]
                    .as_u64()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                (serde_json::Value::String(s), _) => s.clone(),
                (serde_json::Value::Null, _) => String::new(),
                (other, _) => other.to_string(),
            })
            .collect();
        // Titles and tags are typed by people: defused like every such text.
        csv.row(cells.iter().map(|c| Field::Text(c)));
    }
    Ok(csv.finish())
}

fn conversation_id(ctx: &Ctx) -> Result<ConversationId, ApiError> {
    ctx.id("id")
}

fn ok(ctx: &Ctx, c: &chat_core::Conversation) -> Result<Resp, ApiError> {
    Ok(http::json(StatusCode::OK, &ctx.conversation_view(c)))
}

pub async fn get(ctx: Ctx) -> Result<Resp, ApiError> {
    let c = ctx
        .app
        .engine
        .conversation(ctx.actor()?, conversation_id(&ctx)?)
        .await?;
    ok(&ctx, &c)
}

/// Body of `PATCH /v1/conversations/{id}`; absent fields stay as they are, `null`
/// clears department and title.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(as = ConversationPatch)]
pub struct Patch {
    priority: Option<Priority>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    department: Option<Option<String>>,
    /// Each trimmed, not empty; at most 32 on a conversation.
    #[schema(schema_with = crate::openapi::rules::short_list)]
    tags: Option<Vec<String>>,
    #[schema(schema_with = crate::openapi::rules::short_list_required)]
    add_tags: Vec<String>,
    #[schema(schema_with = crate::openapi::rules::short_list_required)]
    remove_tags: Vec<String>,
    pinned: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    title: Option<Option<String>>,
    add_participants: Vec<AgentId>,
    remove_participants: Vec<AgentId>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub async fn update(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id = conversation_id(&ctx)?;
    let p: Patch = ctx.json().await?;
    let patch = DetailsPatch {
        priority: p.priority,
        department: p.department,
        tags: p.tags,
        add_tags: p.add_tags,
        remove_tags: p.remove_tags,
        pinned: p.pinned,
        title: p.title,
        add_participants: p.add_participants,
        remove_participants: p.remove_participants,
    };
    let c = ctx
        .app
        .engine
        .update_details(ctx.actor()?, id, patch)
        .await?;
    ok(&ctx, &c)
}

pub async fn delete(ctx: Ctx) -> Result<Resp, ApiError> {
    ctx.app
        .engine
        .delete_conversation(ctx.actor()?, conversation_id(&ctx)?)
        .await?;
    Ok(http::no_content())
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HandoffRequest {
    #[schema(max_length = 2000)]
    department: Option<String>,
    reason: Option<String>,
}

pub async fn handoff(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id = conversation_id(&ctx)?;
    let body: HandoffRequest = ctx.json_or_default().await?;
    let c = ctx
        .app
        .engine
        .request_agent(ctx.actor()?, id, body.department, body.reason)
        .await?;
    ok(&ctx, &c)
}

pub async fn claim(ctx: Ctx) -> Result<Resp, ApiError> {
    let c = ctx
        .app
        .engine
        .claim(ctx.actor()?, conversation_id(&ctx)?)
        .await?;
    ok(&ctx, &c)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignRequest {
    agent_id: AgentId,
}

pub async fn assign(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id = conversation_id(&ctx)?;
    let body: AssignRequest = ctx.json().await?;
    let c = ctx
        .app
        .engine
        .assign(ctx.actor()?, id, body.agent_id)
        .await?;
    ok(&ctx, &c)
}

pub async fn unassign(ctx: Ctx) -> Result<Resp, ApiError> {
    let c = ctx
        .app
        .engine
        .unassign(ctx.actor()?, conversation_id(&ctx)?)
        .await?;
    ok(&ctx, &c)
}

/// Exactly one of `agent_id` and `department` (the document adds this rule between
/// fields as a `oneOf`: `openapi::rules::one_transfer_target`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TransferRequest {
    agent_id: Option<AgentId>,
    #[schema(max_length = 2000, pattern = r"\S")]
    department: Option<String>,
    reason: Option<String>,
}

pub async fn transfer(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id = conversation_id(&ctx)?;
    let body: TransferRequest = ctx.json().await?;
    let to = match (body.agent_id, body.department) {
        (Some(agent), None) => TransferTarget::Agent(agent),
        (None, Some(department)) => TransferTarget::Department(department),
        _ => {
            return Err(ApiError::invalid(
                "agent_id",
                "give exactly one of agent_id and department",
            ));
        }
    };
    let c = ctx
        .app
        .engine
        .transfer(
            ctx.actor()?,
            id,
            Transfer {
                to,
                reason: body.reason,
            },
        )
        .await?;
    ok(&ctx, &c)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModeRequest {
    mode: Mode,
}

pub async fn set_mode(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id = conversation_id(&ctx)?;
    let body: ModeRequest = ctx.json().await?;
    let c = ctx.app.engine.set_mode(ctx.actor()?, id, body.mode).await?;
    ok(&ctx, &c)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RatingRequest {
    #[schema(minimum = 1, maximum = 5)]
    score: u8,
    #[serde(default)]
    feedback: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloseRequest {
    // Field-level rather than container `default` (the same for one field): the schema
    // derive would otherwise write the default rating into the document.
    #[serde(default, deserialize_with = "http::optional_object")]
    rating: Option<RatingRequest>,
}

pub async fn close(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id = conversation_id(&ctx)?;
    let body: CloseRequest = ctx.json_or_default().await?;
    let rating = body.rating.map(|r| (r.score, r.feedback));
    let c = ctx.app.engine.close(ctx.actor()?, id, rating).await?;
    ok(&ctx, &c)
}

pub async fn rate(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id = conversation_id(&ctx)?;
    let body: RatingRequest = ctx.json().await?;
    let c = ctx
        .app
        .engine
        .rate(ctx.actor()?, id, body.score, body.feedback)
        .await?;
    ok(&ctx, &c)
}

pub async fn reopen(ctx: Ctx) -> Result<Resp, ApiError> {
    let c = ctx
        .app
        .engine
        .reopen(ctx.actor()?, conversation_id(&ctx)?)
        .await?;
    ok(&ctx, &c)
}

pub async fn archive(ctx: Ctx) -> Result<Resp, ApiError> {
    let c = ctx
        .app
        .engine
        .archive(ctx.actor()?, conversation_id(&ctx)?)
        .await?;
    ok(&ctx, &c)
}

pub async fn contact_history(ctx: Ctx) -> Result<Resp, ApiError> {
    let email: String = ctx
        .query("email")?
        .ok_or_else(|| ApiError::invalid("email", "required"))?;
    let items = ctx.app.engine.contact_history(ctx.actor()?, &email).await?;
    let items: Vec<_> = items.iter().map(|c| ctx.conversation_view(c)).collect();
    Ok(super::Items::answer(items))
}

pub async fn contact(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ContactId = ctx.id("id")?;
    let contact = ctx.app.engine.contact(ctx.actor()?, id).await?;
    Ok(http::json(StatusCode::OK, &ctx.viewer().contact(&contact)))
}

/// Body of `PATCH /v1/contacts/{id}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(as = ContactPatch)]
pub(crate) struct ContactPatchRequest {
    name: Option<String>,
    /// Checked loosely (trimmed, an `@`, no space); empty: none.
    #[schema(max_length = 254, pattern = r"^\s*(\S*@\S*)?\s*$")]
    email: Option<String>,
    phone: Option<String>,
    address: Option<String>,
    metadata: BTreeMap<String, String>,
}

pub async fn update_contact(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ContactId = ctx.id("id")?;
    let body: ContactPatchRequest = ctx.json().await?;
    let patch = chat_core::ContactPatch {
        name: body.name,
        email: body.email,
        phone: body.phone,
        address: body.address,
        metadata: body.metadata,
    };
    let contact = ctx
        .app
        .engine
        .update_contact(ctx.actor()?, id, patch)
        .await?;
    Ok(http::json(StatusCode::OK, &ctx.viewer().contact(&contact)))
}

/// Body of `POST /v1/contacts/{id}/merge`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MergeContactRequest)]
pub(crate) struct MergeRequest {
    contact_id: ContactId,
}

pub async fn merge_contact(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let into: ContactId = ctx.id("id")?;
    let body: MergeRequest = ctx.json().await?;
    let kept = ctx
        .app
        .engine
        .merge_contacts(ctx.actor()?, into, body.contact_id)
        .await?;
    ctx.app.forget_cached_tokens();
    Ok(http::json(StatusCode::OK, &ctx.viewer().contact(&kept)))
}

pub async fn queue_position(ctx: Ctx) -> Result<Resp, ApiError> {
    let id = conversation_id(&ctx)?;
    let position = ctx.app.engine.queue_position(ctx.actor()?, id).await?;
    let body = QueueAnswer {
        position: position.as_ref().map(|p| p.position),
        estimated_wait_secs: position.and_then(|p| p.estimated_wait_secs),
    };
    Ok(http::json(StatusCode::OK, &body))
}

/// A conversation's place in the queue; both `null` when it is not queued.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = QueuePosition)]
pub(crate) struct QueueAnswer {
    /// 1 for the next to be served.
    #[schema(required = true, minimum = 1)]
    position: Option<u32>,
    /// null while no agent who could take it is online
    #[schema(required = true)]
    estimated_wait_secs: Option<u64>,
}
