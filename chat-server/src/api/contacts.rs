//! Contact directory routes for staff: list and search, a contact's conversations, and
//! erasing a contact.
//! Reading, editing and merging one contact live beside the conversation routes.

use chat_core::ContactId;
use hyper::StatusCode;

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

/// `GET /v1/contacts?text=&cursor=&limit=`: newest first; `next_cursor` is `null` on the
/// last page.
pub async fn list(ctx: Ctx) -> Result<Resp, ApiError> {
    let text: Option<String> = ctx.query("text")?;
    let before: Option<ContactId> = ctx.query("cursor")?;
    let limit: Option<usize> = ctx.query("limit")?;
    let page = ctx
        .app
        .engine
        .list_contacts(ctx.actor()?, text.as_deref(), before, limit)
        .await?;
    let viewer = ctx.viewer();
    let items: Vec<_> = page.items.iter().map(|c| viewer.contact(c)).collect();
    Ok(http::json(
        StatusCode::OK,
        &ContactPage {
            items,
            next_cursor: page.next_cursor,
        },
    ))
}

/// One page of contacts.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ContactPage<'a> {
    #[schema(value_type = Vec<chat_core::Contact>)]
    items: Vec<chat_core::policy::view::ContactView<'a>>,
    /// The `cursor` of the next page; null on the last.
    #[schema(required = true)]
    next_cursor: Option<ContactId>,
}

/// `GET /v1/contacts/{id}/conversations`: those the caller may read.
pub async fn conversations(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ContactId = ctx.id("id")?;
    let items = ctx
        .app
        .engine
        .contact_conversations(ctx.actor()?, id)
        .await?;
    let items: Vec<_> = items.iter().map(|c| ctx.conversation_view(c)).collect();
    Ok(super::Items::answer(items))
}

/// `POST /v1/contacts/{id}/erase`: admins only (the engine's policy); answers what was
/// erased. The contact's visitor tokens are gone: cached ones are dropped too.
pub async fn erase(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ContactId = ctx.id("id")?;
    let erasure = ctx.app.engine.erase_contact(ctx.actor()?, id).await?;
    ctx.app.forget_cached_tokens();
    Ok(http::json(StatusCode::OK, &erasure))
}
