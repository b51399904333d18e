//! Canned responses: shared ones (admins manage them) and personal ones (each agent its
//! own), found by shortcut or title prefix, posted with their placeholders filled.

use super::Engine;
use crate::error::{Error, Result};
use crate::ids::{CannedResponseId, ConversationId};
use crate::model::{CannedResponse, Placeholders, Role, check_placeholders, fill_placeholders};
use crate::policy::{Action, Actor, Resolved};
use crate::store::CannedQuery;

use super::{PostMessage, Posted};

/// Longest shortcut, in characters: something typed, not a sentence.
pub const MAX_SHORTCUT_CHARS: usize = 32;
/// Longest title, in characters.
pub const MAX_CANNED_TITLE_CHARS: usize = 200;

/// A new canned response.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCannedResponse {
    /// Shared by the desk (admins only) rather than the caller's own.
    #[serde(default)]
    pub shared: bool,
    /// See [`CannedResponse::shortcut`]. Stored lower-case, without a leading `/`.
    // Trimmed, leading `/`s dropped, then 1 to 32 letters, digits, `-` or `_`.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^\s*/*[\p{L}\p{N}_-]{1,32}\s*$")
    )]
    pub shortcut: String,
    /// Name shown in the picker.
    #[cfg_attr(feature = "openapi", schema(max_length = 200, pattern = r"\S"))]
    pub title: String,
    /// Text with placeholders.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::canned_body))]
    pub body: String,
}

/// A change to a canned response: only the fields given change.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = CannedResponsePatch))]
#[serde(deny_unknown_fields)]
pub struct CannedPatch {
    /// New shortcut. Stored lower-case, without a leading `/`.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^\s*/*[\p{L}\p{N}_-]{1,32}\s*$")
    )]
    pub shortcut: Option<String>,
    /// New title.
    #[cfg_attr(feature = "openapi", schema(max_length = 200, pattern = r"\S"))]
    pub title: Option<String>,
    /// New body.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::canned_body_patch))]
    pub body: Option<String>,
}

impl Engine {
    /// Saves a canned response: a personal one for the calling staff member, or a shared one
    /// (admins). An unknown placeholder is [`Error::Validation`] on `body`; a shortcut in use
    /// (among the shared ones, or the caller's own) is a duplicate [`Error::Conflict`].
    pub async fn create_canned_response(
        &self,
        actor: &Actor,
        input: NewCannedResponse,
    ) -> Result<CannedResponse> {
        let who = self.resolve(actor).await?;
        let staff = who
            .staff()
            .ok_or(Error::Forbidden("canned responses are for staff"))?;
        if input.shared && staff.role != Role::Admin {
            return Err(Error::Forbidden("manage shared canned responses"));
        }
        let now = self.now();
        let response = CannedResponse {
            id: CannedResponseId(self.new_id()),
            tenant_id: actor.tenant(),
            owner_id: (!input.shared).then_some(staff.id),
            shortcut: self.shortcut(&input.shortcut)?,
            title: self.canned_title(&input.title)?,
            body: self.canned_body(&input.body)?,
            created_at: now,
            updated_at: now,
        };
        let event = self.inner.store.put_canned_response(&response).await?;
        self.publish([event]);
        Ok(response)
    }

    /// Changes a canned response the caller may manage (its own, or a shared one as admin).
    pub async fn update_canned_response(
        &self,
        actor: &Actor,
        id: CannedResponseId,
        patch: CannedPatch,
    ) -> Result<CannedResponse> {
        let mut response = self.managed_canned_response(actor, id).await?;
        if let Some(shortcut) = &patch.shortcut {
            response.shortcut = self.shortcut(shortcut)?;
        }
        if let Some(title) = &patch.title {
            response.title = self.canned_title(title)?;
        }
        if let Some(body) = &patch.body {
            response.body = self.canned_body(body)?;
        }
        response.updated_at = self.now();
        let event = self.inner.store.put_canned_response(&response).await?;
        self.publish([event]);
        Ok(response)
    }

    /// Deletes a canned response the caller may manage.
    pub async fn delete_canned_response(&self, actor: &Actor, id: CannedResponseId) -> Result<()> {
        let response = self.managed_canned_response(actor, id).await?;
        let event = self
            .inner
            .store
            .delete_canned_response(&response, self.now())
            .await?;
        self.publish([event]);
        Ok(())
    }

    /// The canned responses the calling staff member can use (the shared ones and its own),
    /// by shortcut; with a `prefix`, only those whose shortcut or title starts with it,
    /// ignoring case (an as-you-type picker sends what was typed after `/`).
    pub async fn canned_responses(
        &self,
        actor: &Actor,
        prefix: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CannedResponse>> {
        let who = self.resolve(actor).await?;
        let staff = who
            .staff()
            .ok_or(Error::Forbidden("canned responses are for staff"))?;
        let prefix = prefix.map(str::trim).filter(|p| !p.is_empty());
        if prefix.is_some_and(|p| p.chars().count() > MAX_CANNED_TITLE_CHARS) {
            return Err(Error::validation("q", "longer than any shortcut or title"));
        }
        self.inner
            .store
            .canned_responses(&CannedQuery {
                tenant: actor.tenant(),
                agent: Some(staff.id),
                id: None,
                prefix: prefix.map(str::to_owned),
                limit: limit.clamp(1, self.inner.limits.max_page),
            })
            .await
    }

    /// One canned response the calling staff member can use; another agent's personal one
    /// is [`Error::NotFound`], as if it did not exist.
    pub async fn canned_response(
        &self,
        actor: &Actor,
        id: CannedResponseId,
    ) -> Result<CannedResponse> {
        let who = self.resolve(actor).await?;
        let staff = who
            .staff()
            .ok_or(Error::Forbidden("canned responses are for staff"))?;
        self.usable_canned_response(actor, Some(staff.id), id).await
    }

    /// The text `response` would post in conversation `id`, placeholders filled: the preview
    /// of an as-you-type picker. The caller must be able to reply there.
    pub async fn render_canned_response(
        &self,
        actor: &Actor,
        conversation: ConversationId,
        id: CannedResponseId,
    ) -> Result<String> {
        let (who, c) = self.authorized(actor, conversation, Action::Read).await?;
        let staff = who
            .staff()
            .ok_or(Error::Forbidden("canned responses are for staff"))?;
        let response = self
            .usable_canned_response(actor, Some(staff.id), id)
            .await?;
        let contact = self.inner.store.contact(c.tenant_id, c.contact_id).await?;
        let tenant = self.load_tenant(c.tenant_id).await?;
        let values = Placeholders {
            values: vec![
                (
                    "contact.name",
                    contact
                        .as_ref()
                        .and_then(|k| k.name.clone())
                        .unwrap_or_default(),
                ),
                (
                    "contact.email",
                    contact
                        .as_ref()
                        .and_then(|k| k.email.clone())
                        .unwrap_or_default(),
                ),
                ("agent.name", staff.name.clone()),
                ("agent.email", staff.email.clone()),
                ("conversation.id", c.id.to_string()),
                ("conversation.title", c.title.clone().unwrap_or_default()),
                (
                    "conversation.department",
                    c.department.clone().unwrap_or_default(),
                ),
                ("tenant.name", tenant.name),
            ],
        };
        Ok(fill_placeholders(&response.body, &values))
    }

    /// Posts a canned response in a conversation as the calling staff member, its
    /// placeholders filled from the conversation, its contact and the caller; the message
    /// records which response it came from (`metadata.canned_response_id`). Otherwise it is
    /// [`Engine::post_message`]: the same rules, the same idempotency key.
    pub async fn post_canned_response(
        &self,
        actor: &Actor,
        conversation: ConversationId,
        id: CannedResponseId,
        client_message_id: Option<String>,
    ) -> Result<Posted> {
        let body = self.render_canned_response(actor, conversation, id).await?;
        if body.trim().is_empty() {
            return Err(Error::validation(
                "canned_response_id",
                "its text is empty once filled in for this conversation",
            ));
        }
        let mut input = PostMessage::text(body);
        input.client_message_id = client_message_id;
        input
            .metadata
            .insert("canned_response_id".into(), id.to_string());
        self.post_message(actor, conversation, input).await
    }

    async fn usable_canned_response(
        &self,
        actor: &Actor,
        agent: Option<crate::ids::AgentId>,
        id: CannedResponseId,
    ) -> Result<CannedResponse> {
        self.inner
            .store
            .canned_responses(&CannedQuery {
                tenant: actor.tenant(),
                agent,
                id: Some(id),
                prefix: None,
                limit: 1,
            })
            .await?
            .pop()
            .ok_or(Error::NotFound("canned response"))
    }

    /// A canned response the caller may change: its own, or a shared one as admin.
    async fn managed_canned_response(
        &self,
        actor: &Actor,
        id: CannedResponseId,
    ) -> Result<CannedResponse> {
        let who = self.resolve(actor).await?;
        let staff = match &who {
            Resolved::Staff(a) => a,
            _ => return Err(Error::Forbidden("canned responses are for staff")),
        };
        let response = self
            .usable_canned_response(actor, Some(staff.id), id)
            .await?;
        if response.is_shared() && staff.role != Role::Admin {
            return Err(Error::Forbidden("manage shared canned responses"));
        }
        Ok(response)
    }

    fn shortcut(&self, text: &str) -> Result<String> {
        let shortcut = text.trim().trim_start_matches('/').to_lowercase();
        let fits = !shortcut.is_empty()
            && shortcut.chars().count() <= MAX_SHORTCUT_CHARS
            && shortcut
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
        if !fits {
            return Err(Error::validation(
                "shortcut",
                format!("use 1 to {MAX_SHORTCUT_CHARS} letters, digits, `-` or `_`"),
            ));
        }
        Ok(shortcut)
    }

    fn canned_title(&self, text: &str) -> Result<String> {
        let title = text.trim();
        if title.is_empty() || title.chars().count() > MAX_CANNED_TITLE_CHARS {
            return Err(Error::validation(
                "title",
                format!("use 1 to {MAX_CANNED_TITLE_CHARS} characters"),
            ));
        }
        Ok(title.to_owned())
    }

    fn canned_body(&self, text: &str) -> Result<String> {
        let body = self.message_body(text)?;
        check_placeholders(&body).map_err(|e| Error::validation("body", e))?;
        Ok(body)
    }
}
