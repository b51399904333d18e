//! Erasing a contact: the customer's right to have their data removed.
//!
//! The engine gathers what the store cannot (the files each message points at), the store
//! deletes and scrubs in one transaction (see [`Store::erase_contact`](crate::Store::erase_contact)),
//! then the files go. A conversation still in progress is deleted as it is, not closed
//! first: closing would write a system message, a transcript e-mail and events carrying
//! the very data being erased, each to be scrubbed again; the `conversation_deleted`
//! events tell every console and widget it is gone, and the agent's capacity frees with
//! it.

use serde::Serialize;

use super::{CAS_ATTEMPTS, Engine};
use crate::error::{Error, Result};
use crate::ids::{ContactId, ConversationId};
use crate::model::{Actor, Attachment};
use crate::policy::Resolved;
use crate::store::{ContactErasure, ConversationQuery, MessageQuery, Scope};

/// What [`Engine::erase_contact`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Erasure {
    /// The contact (it stays, blank).
    pub contact_id: ContactId,
    /// `false` when there was nothing left to erase (an earlier erasure did it): no
    /// event was written.
    pub erased: bool,
    /// Conversations deleted.
    pub conversations: u64,
    /// Files removed from the blob store.
    pub files: u64,
}

impl Engine {
    /// Erases contact `id` (admins and the system only): its name, e-mail, phone,
    /// address, external id and attributes; its customer account, login names and visitor
    /// tokens; every conversation with its messages, notes, ratings and files (the search
    /// index drops their words); and the same data inside the event log, whose entries
    /// keep their sequence but say only `conversation_deleted` (see
    /// [`ContactErasure::scrub`]). One staff-only `contact_erased` event remains: who,
    /// when, which contact. Repeating it is harmless: a contact with nothing left is
    /// answered `erased: false` and nothing is written. [`Error::NotFound`] for an unknown
    /// contact, [`Error::Forbidden`] for anyone else.
    pub async fn erase_contact(&self, actor: &Actor, id: ContactId) -> Result<Erasure> {
        let who = self.resolve(actor).await?;
        if !who.erases_contacts() {
            return Err(Error::Forbidden("erase contacts"));
        }
        let tenant = actor.tenant();
        let contact = self
            .inner
            .store
            .contact(tenant, id)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        let erased_by = who.staff().map(|a| a.id);
        for _ in 0..CAS_ATTEMPTS {
            let conversations = self.all_conversations_of(tenant, id).await?;
            let has_account = match &self.inner.credentials {
                Some(credentials) => credentials.account(tenant, id).await?.is_some(),
                None => false,
            };
            if conversations.is_empty() && contact.is_blank() && !has_account {
                // Tokens may remain (an anonymous visitor never typed anything): revoke them.
                if let Some(credentials) = &self.inner.credentials
                    && credentials.revoke_visitor_tokens(tenant, id).await? > 0
                {
                    self.credential_changed(tenant, Ok(())).await?;
                }
                return Ok(Erasure {
                    contact_id: id,
                    erased: false,
                    conversations: 0,
                    files: 0,
                });
            }
            let mut files = Vec::new();
            for &conversation in &conversations {
                files.push((conversation, self.files_of(tenant, conversation).await?));
            }
            let erasure = ContactErasure {
                tenant,
                contact: id,
                conversations: conversations.clone(),
                erased_by,
                at: self.now(),
            };
            match self.inner.store.erase_contact(&erasure).await {
                Ok(events) => {
                    self.publish(events);
                    // Its tokens are gone: sockets holding them re-check and close.
                    self.credential_changed(tenant, Ok(())).await?;
                    let mut removed = 0;
                    for (conversation, attachments) in &files {
                        removed += attachments.len() as u64;
                        self.remove_files(*conversation, attachments).await;
                    }
                    return Ok(Erasure {
                        contact_id: id,
                        erased: true,
                        conversations: conversations.len() as u64,
                        files: removed,
                    });
                }
                // A conversation opened meanwhile: gather again.
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(
            "the contact keeps getting new conversations".into(),
        ))
    }

    /// Every conversation of a contact, whatever its mode.
    async fn all_conversations_of(
        &self,
        tenant: crate::ids::TenantId,
        contact: ContactId,
    ) -> Result<Vec<ConversationId>> {
        let mut query = ConversationQuery::new(
            tenant,
            Scope::Contact {
                contact,
                conversation: None,
            },
        );
        query.limit = self.inner.limits.max_page;
        let mut ids = Vec::new();
        loop {
            let page = self.inner.store.list_conversations(&query).await?;
            ids.extend(page.items.iter().map(|c| c.id));
            match page.next_cursor {
                Some(next) => query.cursor = Some(next),
                None => return Ok(ids),
            }
        }
    }

    /// The attachments of every message of a conversation, notes included.
    async fn files_of(
        &self,
        tenant: crate::ids::TenantId,
        conversation: ConversationId,
    ) -> Result<Vec<Attachment>> {
        let mut files = Vec::new();
        let mut query = MessageQuery::latest(tenant, conversation, 500);
        query.after = Some(0);
        loop {
            let page = self.inner.store.messages(&query).await?;
            let Some(highest) = page.iter().map(|m| m.seq).max() else {
                return Ok(files);
            };
            query.after = Some(highest);
            files.extend(page.into_iter().flat_map(|m| m.attachments));
        }
    }
}

impl Resolved {
    /// Whether this actor may erase contacts: admins and the system (a retention timer),
    /// never supervisors. Erasure cannot be undone, like deleting a conversation.
    pub fn erases_contacts(&self) -> bool {
        match self {
            Resolved::Staff(a) => a.role == crate::model::Role::Admin,
            Resolved::System => true,
            _ => false,
        }
    }
}
