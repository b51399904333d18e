//! Customer-account routes: sign up, log in, change the password, and (admins) disable.
//! Every rule is the engine's (`Engine::sign_up` and friends); these routes only issue
//! the server's visitor tokens for the account's whole history.

use crate::throttle::Attempt;
use chat_core::policy::Viewer;
use chat_core::{Actor, ContactId, SignUp, TenantId};
use hyper::StatusCode;
use serde::Deserialize;

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

/// Body of `POST /v1/accounts`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignUpRequest {
    #[schema(max_length = 64, pattern = r"\S")]
    username: String,
    #[schema(min_length = 1, max_length = 1024)]
    password: String,
    #[serde(default)]
    #[schema(max_length = 254, pattern = r"^\s*(\S*@\S*)?\s*$")]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tenant_id: Option<TenantId>,
}

/// Body of `POST /v1/accounts/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AccountLoginRequest)]
pub(crate) struct LoginRequest {
    username: String,
    password: String,
    #[serde(default)]
    tenant_id: Option<TenantId>,
}

/// Body of `POST /v1/accounts/password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AccountPasswordRequest)]
pub(crate) struct PasswordRequest {
    current_password: String,
    #[schema(min_length = 1, max_length = 1024)]
    new_password: String,
}

/// Body of `PATCH /v1/accounts/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountPatch {
    disabled: bool,
}

fn tenant_of(ctx: &Ctx, named: Option<TenantId>) -> Result<TenantId, ApiError> {
    named.or(ctx.app.config.default_tenant).ok_or_else(|| {
        ApiError::invalid("tenant_id", "this server has no default tenant; name one")
    })
}

pub async fn sign_up(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let body: SignUpRequest = ctx.json().await?;
    let tenant = tenant_of(&ctx, body.tenant_id)?;
    let engine = &ctx.app.engine;
    // An anonymous sign-up form acts as the system, which makes a new contact: nothing
    // typed here reaches an existing one.
    let system = Actor::System { tenant };
    let input = SignUp {
        username: body.username,
        email: body.email,
        password: body.password,
        name: body.name,
    };
    let (account, contact) = match engine.sign_up(&system, input).await {
        Err(chat_core::Error::NotFound("tenant")) => {
            return Err(ApiError::invalid("tenant_id", "no such tenant"));
        }
        other => other?,
    };
    let token = crate::accounts::issue_contact_token(engine, &ctx.app.config, &contact).await?;
    Ok(http::json(
        StatusCode::CREATED,
        &AccountSession {
            account: &account,
            contact: Viewer::Customer.contact(&contact),
            visitor_token: &token,
        },
    ))
}

/// A customer's account, its contact as the customer sees it, and a visitor token for
/// all of the account's conversations.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct AccountSession<'a> {
    #[schema(value_type = chat_core::Account)]
    account: &'a chat_core::Account,
    #[schema(value_type = chat_core::Contact)]
    contact: chat_core::policy::view::ContactView<'a>,
    visitor_token: &'a str,
}

pub async fn login(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let body: LoginRequest = ctx.json().await?;
    let tenant = tenant_of(&ctx, body.tenant_id)?;
    let tenant_text = tenant.to_string();
    let attempt = Attempt {
        kind: "account",
        tenant: &tenant_text,
        name: &body.username,
        ip: ctx.ip,
    };
    ctx.app
        .logins
        .check(&attempt)
        .map_err(ApiError::too_many_attempts)?;
    let found = crate::accounts::login(
        &ctx.app.engine,
        &ctx.app.config,
        tenant,
        &body.username,
        &body.password,
    )
    .await?;
    let Some((account, contact, token)) = found else {
        ctx.app.logins.failed(&attempt);
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    ctx.app.logins.succeeded(&attempt);
    Ok(http::json(
        StatusCode::OK,
        &AccountSession {
            account: &account,
            contact: Viewer::Customer.contact(&contact),
            visitor_token: &token,
        },
    ))
}

pub async fn change_password(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let body: PasswordRequest = ctx.json().await?;
    let actor = ctx.actor()?.clone();
    let Actor::Customer { contact, .. } = actor else {
        return Err(ApiError::forbidden(
            "only a customer changes its account password here",
        ));
    };
    let engine = &ctx.app.engine;
    engine
        .change_account_password(&actor, contact, &body.current_password, &body.new_password)
        .await?;
    // Every earlier token of the account was revoked, this one included: hand the
    // caller a fresh one.
    let contact = engine.contact(&actor, contact).await?;
    let token = crate::accounts::issue_contact_token(engine, &ctx.app.config, &contact).await?;
    Ok(http::json(
        StatusCode::OK,
        &VisitorTokenAnswer {
            visitor_token: &token,
        },
    ))
}

/// A fresh visitor token for the caller's account.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct VisitorTokenAnswer<'a> {
    visitor_token: &'a str,
}

pub async fn get(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ContactId = ctx.id("id")?;
    let account = ctx.app.engine.account(ctx.actor()?, id).await?;
    Ok(http::json(StatusCode::OK, &account))
}

pub async fn update(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ContactId = ctx.id("id")?;
    let body: AccountPatch = ctx.json().await?;
    let account = ctx
        .app
        .engine
        .set_account_disabled(ctx.actor()?, id, body.disabled)
        .await?;
    Ok(http::json(StatusCode::OK, &account))
}
