//! Tenant settings: read and patch (admins). The engine validates; this module only turns a
//! JSON merge patch into a whole settings value. Also the widget's public view of them.

use chat_core::{TenantId, TenantSettings};
use hyper::StatusCode;
use hyper::header::{ETAG, HeaderValue, IF_MATCH};
use serde_json::{Map, Value};

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

/// `GET /v1/settings`, with the settings' version as a strong `ETag` (`"7"`): the value
/// a `PATCH` sends back in `If-Match`.
pub async fn get(ctx: Ctx) -> Result<Resp, ApiError> {
    let (settings, version) = ctx
        .app
        .engine
        .versioned_tenant_settings(ctx.actor()?)
        .await?;
    Ok(with_etag(http::json(StatusCode::OK, &settings), version))
}

fn with_etag(mut response: Resp, version: u64) -> Resp {
    response.headers_mut().insert(
        ETAG,
        HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a header value"),
    );
    response
}

/// What `If-Match` asks for: `None` without the header or with `*` (any version: the
/// settings always exist), else the versions it lists. A tag that is not one of ours
/// (weak, or not a number) can match no version, so it stays in the list as `None` and the
/// request fails the precondition rather than passing unchecked.
pub(super) fn if_match(headers: &hyper::HeaderMap) -> Result<Option<Vec<Option<u64>>>, ApiError> {
    let mut tags = Vec::new();
    for value in headers.get_all(IF_MATCH) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::bad_request("If-Match is not ASCII"))?;
        for tag in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if tag == "*" {
                return Ok(None);
            }
            tags.push(
                tag.strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .and_then(|t| t.parse::<u64>().ok()),
            );
        }
    }
    Ok((!tags.is_empty()).then_some(tags))
}

/// 412 `precondition_failed`: the settings changed since the client read them.
fn precondition_failed(current: u64) -> ApiError {
    ApiError {
        current_version: Some(current),
        ..ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            format!(
                "the settings changed since they were read (now version {current}); read them again and reapply the change"
            ),
        )
    }
}

/// `GET /v1/widget`: what a chat widget shows before anyone writes, for anyone. Only the
/// desk's open or closed state, its next opening and the two messages; never a setting more.
pub async fn widget(ctx: Ctx) -> Result<Resp, ApiError> {
    let tenant = ctx
        .query::<TenantId>("tenant_id")?
        .or(ctx.app.config.default_tenant)
        .ok_or_else(|| {
            ApiError::invalid("tenant_id", "this server has no default tenant; name one")
        })?;
    let status = match ctx.app.engine.availability(tenant).await {
        Err(chat_core::Error::NotFound("tenant")) => {
            return Err(ApiError::invalid("tenant_id", "no such tenant"));
        }
        other => other?,
    };
    Ok(http::json(StatusCode::OK, &Widget { tenant, status }))
}

/// What `GET /v1/widget` answers: the tenant, and its desk's public status.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Widget {
    #[serde(rename = "tenant_id")]
    tenant: TenantId,
    #[serde(flatten)]
    status: chat_core::DeskStatus,
}

/// `PATCH /v1/settings`. With `If-Match`, only over the version it names: otherwise 412
/// `precondition_failed` with the current version, and nothing changes. The patch is merged
/// into the settings of the version it is checked against, and the store writes the result
/// only over that version, so a change landing in between is refused too, never lost.
pub async fn update(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let patch: Map<String, Value> = ctx.json().await?;
    let expected = if_match(&ctx.headers)?;
    let engine = &ctx.app.engine;
    let actor = ctx.actor()?;
    let mut attempts = 0;
    loop {
        // Reading first also refuses non-admins before the body says anything about them.
        let (current, version) = engine.versioned_tenant_settings(actor).await?;
        // A patch that does not fit is 422 whatever version it names: the error is the
        // body's, and a client retrying after a 412 would only meet it next.
        let settings = merge(&current, patch.clone())?;
        // So is a value out of range (the engine checks again when it writes).
        settings.validate()?;
        if let Some(tags) = &expected
            && !tags.contains(&Some(version))
        {
            return Err(precondition_failed(version));
        }
        match engine
            .update_tenant_settings_from(actor, version, settings)
            .await
        {
            Ok(tenant) => {
                return Ok(with_etag(
                    http::json(StatusCode::OK, &tenant.settings),
                    tenant.settings_version,
                ));
            }
            Err(chat_core::Error::Conflict(c))
                if c.kind() == chat_core::ConflictKind::VersionRace =>
            {
                // Another change landed between the read and the write. With `If-Match`
                // the client named the version it edited: refused. Without, it asked for
                // no check, so its patch is merged again into the newer settings (each
                // key it names wins, the other change's keys stay); a few tries, so a
                // stream of changes cannot hold a request forever.
                attempts += 1;
                if expected.is_some() || attempts == 3 {
                    return Err(precondition_failed(
                        c.current_version().unwrap_or(version + 1),
                    ));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Applies a merge patch (RFC 7396, one level: every setting is replaced whole) to
/// `current`. An unknown key or a value of the wrong type is 422 naming the setting, so a
/// typo never passes silently.
fn merge(current: &TenantSettings, patch: Map<String, Value>) -> Result<TenantSettings, ApiError> {
    let Value::Object(mut merged) = serde_json::to_value(current).expect("settings serialize")
    else {
        unreachable!("settings serialize to an object");
    };
    for (key, value) in patch {
        if !merged.contains_key(&key) {
            return Err(ApiError::invalid(key, "not a tenant setting"));
        }
        // Checked one key at a time so the error names the setting that does not fit.
        let mut single = serde_json::to_value(current).expect("settings serialize");
        single[&key] = value.clone();
        if let Err(e) = serde_json::from_value::<TenantSettings>(single) {
            return Err(ApiError::invalid(key, e.to_string()));
        }
        merged.insert(key, value);
    }
    serde_json::from_value(Value::Object(merged))
        .map_err(|e| ApiError::invalid("settings", e.to_string()))
}
