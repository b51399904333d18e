//! Login, `me` and staff routes.

use crate::throttle::Attempt;
use chat_core::{
    Actor, AgentId, AgentPatch, Availability, ContactId, ConversationId, NewAgent, Role, TenantId,
};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::auth;
use crate::error::ApiError;
use crate::http::{self, Resp};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    email: String,
    password: String,
    #[serde(default)]
    tenant_id: Option<TenantId>,
}

pub async fn login(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let body: LoginRequest = ctx.json().await?;
    let app = &ctx.app;
    let refused = || ApiError::unauthorized("wrong e-mail or password");
    let Some(tenant) = body.tenant_id.or(app.config.default_tenant) else {
        return Err(ApiError::invalid(
            "tenant_id",
            "this server has no default tenant; name one",
        ));
    };
    let tenant_text = tenant.to_string();
    let attempt = Attempt {
        kind: "staff",
        tenant: &tenant_text,
        name: &body.email,
        ip: ctx.ip,
    };
    app.logins
        .check(&attempt)
        .map_err(ApiError::too_many_attempts)?;
    // The engine checks the password (a decoy when the e-mail is unknown, so timing does
    // not tell which e-mails exist) on the hasher's own blocking threads.
    let Some((agent, token_version)) = app
        .engine
        .staff_log_in(tenant, &body.email, &body.password)
        .await?
    else {
        app.logins.failed(&attempt);
        return Err(refused());
    };
    app.logins.succeeded(&attempt);
    let token = auth::issue_token(&app.config.jwt, tenant, agent.id, agent.role, token_version)
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "could not sign a token",
            )
        })?;
    Ok(http::json(
        StatusCode::OK,
        &LoginResponse {
            access_token: &token,
            token_type: TokenType::Bearer,
            expires_in: app.config.jwt.ttl.as_secs(),
            agent: &agent,
        },
    ))
}

/// A staff login's answer: the access token and who it speaks for.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct LoginResponse<'a> {
    access_token: &'a str,
    token_type: TokenType,
    /// Seconds the token is valid for.
    expires_in: u64,
    #[schema(value_type = chat_core::Agent)]
    agent: &'a chat_core::Agent,
}

/// How the access token is sent: `Authorization: Bearer <token>`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) enum TokenType {
    Bearer,
}

pub async fn me(ctx: Ctx) -> Result<Resp, ApiError> {
    let actor = ctx.actor()?;
    let body = match actor {
        Actor::Staff { tenant, agent } => Me::Staff {
            tenant_id: *tenant,
            agent: ctx.app.engine.agent(actor, *agent).await?,
        },
        Actor::Customer {
            tenant,
            contact,
            conversation,
        } => Me::Customer {
            tenant_id: *tenant,
            contact_id: *contact,
            conversation_id: *conversation,
        },
        other => Me::System {
            tenant_id: other.tenant(),
        },
    };
    Ok(http::json(StatusCode::OK, &body))
}

/// Who a token speaks for (`GET /v1/me`), by `kind`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Me {
    /// A staff member's token.
    Staff {
        tenant_id: TenantId,
        agent: chat_core::Agent,
    },
    /// A customer's token: a visitor's, scoped to one conversation, or an account's
    /// (`conversation_id` null: all of the contact's conversations).
    Customer {
        tenant_id: TenantId,
        contact_id: ContactId,
        #[schema(required = true)]
        conversation_id: Option<ConversationId>,
    },
    /// Any other: a bot token, the system.
    System { tenant_id: TenantId },
}

pub async fn list(ctx: Ctx) -> Result<Resp, ApiError> {
    let items = ctx.app.engine.agents(ctx.actor()?).await?;
    Ok(super::Items::answer(items))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateAgentRequest)]
pub(crate) struct CreateRequest {
    #[schema(max_length = 2000, pattern = r"\S")]
    name: String,
    #[schema(max_length = 254, pattern = r"^\s*\S*@\S*\s*$")]
    email: String,
    role: Role,
    #[schema(min_length = 10, max_length = 1024)]
    password: String,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000)]
    capacity: Option<u32>,
    #[serde(default)]
    #[schema(max_items = 32)]
    departments: Vec<String>,
}

/// Shortest password accepted.
const MIN_PASSWORD: usize = 10;

async fn hash(password: String) -> Result<String, ApiError> {
    // Characters both ways, as the message says (and JSON Schema counts).
    let length = password.chars().count();
    if !(MIN_PASSWORD..=1024).contains(&length) {
        return Err(ApiError::invalid(
            "password",
            format!("use {MIN_PASSWORD} to 1024 characters"),
        ));
    }
    // On the bounded hashing threads, like every other argon2 run.
    auth::in_hashing_pool(move || auth::hash_password(&password))
        .await?
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "could not hash the password",
            )
        })
}

pub async fn create(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let body: CreateRequest = ctx.json().await?;
    let hashed = hash(body.password).await?;
    let actor = ctx.actor()?;
    let input = NewAgent {
        name: body.name,
        email: body.email,
        role: body.role,
        capacity: body.capacity,
        departments: body.departments,
    };
    let agent = ctx.app.engine.create_agent(actor, input).await?;
    ctx.app
        .engine
        .set_password(actor, agent.id, &hashed)
        .await?;
    Ok(http::json(StatusCode::CREATED, &agent))
}

pub async fn get(ctx: Ctx) -> Result<Resp, ApiError> {
    let agent = ctx.app.engine.agent(ctx.actor()?, ctx.id("id")?).await?;
    Ok(http::json(StatusCode::OK, &agent))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(as = AgentPatch)]
pub(crate) struct PatchRequest {
    #[schema(max_length = 2000, pattern = r"\S")]
    name: Option<String>,
    role: Option<Role>,
    /// most conversations at once
    #[serde(deserialize_with = "nullable_u32")]
    #[schema(value_type = Option<u32>, minimum = 0, maximum = 1000)]
    capacity: Option<Option<u32>>,
    #[schema(schema_with = crate::openapi::rules::short_list)]
    departments: Option<Vec<String>>,
    active: Option<bool>,
    /// 10 to 1024 characters
    #[schema(min_length = 10, max_length = 1024)]
    password: Option<String>,
    /// required to change one's own password
    current_password: Option<String>,
}

fn nullable_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

pub async fn update(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: AgentId = ctx.id("id")?;
    let body: PatchRequest = ctx.json().await?;
    let actor = ctx.actor()?;
    let engine = &ctx.app.engine;
    let deactivating = body.active == Some(false);
    let patch = AgentPatch {
        name: body.name,
        role: body.role,
        capacity: body.capacity,
        departments: body.departments,
        active: body.active,
    };
    let agent = if patch == AgentPatch::default() {
        engine.agent(actor, id).await?
    } else {
        engine.update_agent(actor, id, patch).await?
    };
    if let Some(password) = &body.password {
        engine
            .change_staff_password(actor, id, body.current_password.as_deref(), password)
            .await?;
    }
    if deactivating {
        engine.revoke_tokens(actor, id).await?;
    }
    Ok(http::json(StatusCode::OK, &agent))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AvailabilityRequest {
    availability: Availability,
}

pub async fn availability(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: AgentId = ctx.id("id")?;
    let body: AvailabilityRequest = ctx.json().await?;
    let agent = ctx
        .app
        .engine
        .set_availability(ctx.actor()?, id, body.availability)
        .await?;
    Ok(http::json(StatusCode::OK, &agent))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BotTokenRequest {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    #[serde(default)]
    #[schema(minimum = 60, maximum = 315360000)]
    expires_in_secs: Option<u64>,
}

/// What admins see of a bot token: never the token or its digest.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct BotTokenInfo<'a> {
    id: &'a str,
    name: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    expires_at: Option<time::OffsetDateTime>,
    /// to the minute
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    last_used_at: Option<time::OffsetDateTime>,
}

/// A bot token as issued: shown only in this answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = BotToken)]
pub(crate) struct IssuedBotToken<'a> {
    /// handle for listing and revoking
    id: &'a str,
    /// bt_...; shown only now
    token: &'a str,
    name: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    expires_at: Option<time::OffsetDateTime>,
}

impl<'a> From<&'a chat_core::BotToken> for BotTokenInfo<'a> {
    fn from(t: &'a chat_core::BotToken) -> Self {
        Self {
            id: t.id(),
            name: &t.name,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// The longest a bot token may be issued for: ten years.
const MAX_BOT_TOKEN_SECS: u64 = 10 * 365 * 24 * 3600;

pub async fn create_bot_token(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let body: BotTokenRequest = ctx.json().await?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "use 1 to 200 characters"));
    }
    let lifetime = match body.expires_in_secs {
        None => None,
        Some(secs @ 60..=MAX_BOT_TOKEN_SECS) => Some(time::Duration::seconds(secs as i64)),
        Some(_) => {
            return Err(ApiError::invalid(
                "expires_in_secs",
                format!("use 60 to {MAX_BOT_TOKEN_SECS} seconds, or leave it out"),
            ));
        }
    };
    let actor = ctx.actor()?;
    let (token, digest) = auth::new_bot_token();
    let now = ctx.app.engine.clock().now();
    let record = chat_core::BotToken {
        digest,
        tenant_id: actor.tenant(),
        name,
        created_at: now,
        expires_at: lifetime.map(|l| now + l),
        last_used_at: None,
    };
    ctx.app.engine.store_bot_token(actor, &record).await?;
    let answer = IssuedBotToken {
        id: record.id(),
        token: &token,
        name: &record.name,
        created_at: record.created_at,
        expires_at: record.expires_at,
    };
    Ok(http::json(StatusCode::CREATED, &answer))
}

pub async fn list_bot_tokens(ctx: Ctx) -> Result<Resp, ApiError> {
    let tokens = ctx.app.engine.bot_tokens(ctx.actor()?).await?;
    let items: Vec<BotTokenInfo> = tokens.iter().map(BotTokenInfo::from).collect();
    Ok(super::Items::answer(items))
}

pub async fn revoke_bot_token(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: String = ctx.id("id")?;
    // Bot tokens are never cached (see `auth::TokenCache`): the next request is refused.
    ctx.app.engine.revoke_bot_token(ctx.actor()?, &id).await?;
    Ok(http::no_content())
}
