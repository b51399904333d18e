//! Tenant settings: read and patch (admins). The engine validates; this module only turns a
//! JSON merge patch into a whole settings value. Also the widget's public view of them.

use chat_core::{TenantId, TenantSettings};
use hyper::StatusCode;
use serde_json::{Map, Value};

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

pub async fn get(ctx: Ctx) -> Result<Resp, ApiError> {
    let settings = ctx.app.engine.tenant_settings(ctx.actor()?).await?;
    Ok(http::json(StatusCode::OK, &settings))
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
    let mut answer = serde_json::to_value(&status).expect("status serializes");
    answer["tenant_id"] = serde_json::json!(tenant);
    Ok(http::json(StatusCode::OK, &answer))
}

pub async fn update(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let patch: Map<String, Value> = ctx.json().await?;
    let engine = &ctx.app.engine;
    let actor = ctx.actor()?;
    // Reading first also refuses non-admins before the body says anything about them.
    let current = engine.tenant_settings(actor).await?;
    let settings = merge(&current, patch)?;
    let tenant = engine.update_tenant_settings(actor, settings).await?;
    Ok(http::json(StatusCode::OK, &tenant.settings))
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
