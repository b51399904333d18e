//! Login, `me` and staff routes.

use chat_core::{Actor, AgentId, AgentPatch, Availability, NewAgent, Role, TenantId};
use hyper::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::Ctx;
use crate::auth;
use crate::error::ApiError;
use crate::http::{self, Resp};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
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
    let agent = app
        .engine
        .store()
        .agent_by_email(tenant, body.email.trim())
        .await?;
    let credential = match &agent {
        Some(a) if a.active => Some(app.engine.credential(tenant, a.id).await?),
        _ => None,
    };
    let hash = credential.as_ref().and_then(|c| c.password_hash.clone());
    // Verify even when there is nothing to verify against, so timing does not tell
    // which e-mails exist. Argon2 is slow on purpose: keep it off the async threads.
    let password = body.password;
    let matches = tokio::task::spawn_blocking(move || {
        let ok = auth::verify_password(
            &password,
            hash.as_deref().unwrap_or_else(|| auth::decoy_hash()),
        );
        ok && hash.is_some()
    })
    .await
    .map_err(|_| ApiError::unauthorized("login failed"))?;
    let (Some(agent), Some(credential), true) = (agent, credential, matches) else {
        return Err(refused());
    };
    let token = auth::issue_token(
        &app.config.jwt,
        tenant,
        agent.id,
        agent.role,
        credential.token_version,
    )
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "could not sign a token",
        )
    })?;
    Ok(http::json(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": app.config.jwt.ttl.as_secs(),
            "agent": agent,
        }),
    ))
}

pub async fn me(ctx: Ctx) -> Result<Resp, ApiError> {
    let actor = ctx.actor()?;
    let body = match actor {
        Actor::Staff { tenant, agent } => {
            let agent = ctx.app.engine.agent(actor, *agent).await?;
            json!({ "kind": "staff", "tenant_id": tenant, "agent": agent })
        }
        Actor::Customer {
            tenant,
            contact,
            conversation,
        } => {
            json!({ "kind": "customer", "tenant_id": tenant, "contact_id": contact, "conversation_id": conversation })
        }
        other => json!({ "kind": "system", "tenant_id": other.tenant() }),
    };
    Ok(http::json(StatusCode::OK, &body))
}

pub async fn list(ctx: Ctx) -> Result<Resp, ApiError> {
    let items = ctx.app.engine.agents(ctx.actor()?).await?;
    Ok(http::json(StatusCode::OK, &json!({ "items": items })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: String,
    email: String,
    role: Role,
    password: String,
    #[serde(default)]
    capacity: Option<u32>,
    #[serde(default)]
    departments: Vec<String>,
}

/// Shortest password accepted.
const MIN_PASSWORD: usize = 10;

async fn hash(password: String) -> Result<String, ApiError> {
    if password.chars().count() < MIN_PASSWORD || password.len() > 1024 {
        return Err(ApiError::invalid(
            "password",
            format!("use {MIN_PASSWORD} to 1024 characters"),
        ));
    }
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| {
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PatchRequest {
    name: Option<String>,
    role: Option<Role>,
    #[serde(deserialize_with = "nullable_u32")]
    capacity: Option<Option<u32>>,
    departments: Option<Vec<String>>,
    active: Option<bool>,
    password: Option<String>,
}

fn nullable_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

pub async fn update(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: AgentId = ctx.id("id")?;
    let body: PatchRequest = ctx.json().await?;
    let actor = ctx.actor()?;
    let engine = &ctx.app.engine;
    let hashed = match body.password {
        Some(p) => Some(hash(p).await?),
        None => None,
    };
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
    if let Some(hashed) = hashed {
        engine.set_password(actor, id, &hashed).await?;
    }
    if deactivating {
        engine.revoke_tokens(actor, id).await?;
    }
    Ok(http::json(StatusCode::OK, &agent))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AvailabilityRequest {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BotTokenRequest {
    name: String,
}

pub async fn create_bot_token(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let body: BotTokenRequest = ctx.json().await?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "use 1 to 200 characters"));
    }
    let actor = ctx.actor()?;
    let (token, digest) = auth::new_bot_token();
    let record = chat_core::BotToken {
        digest,
        tenant_id: actor.tenant(),
        name,
        created_at: ctx.app.engine.clock().now(),
    };
    ctx.app.engine.store_bot_token(actor, &record).await?;
    Ok(http::json(
        StatusCode::CREATED,
        &json!({ "token": token, "name": record.name, "created_at": record.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default() }),
    ))
}
