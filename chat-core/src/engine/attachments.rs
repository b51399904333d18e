//! Attachments: bytes go to the blob store under a key that names their conversation, so
//! a download is authorized like reading that conversation, and a message can only
//! carry files uploaded to its own conversation.

use super::Engine;
use crate::Mode;
use crate::blob::sanitize;
use crate::error::{Error, Result};
use crate::ids::ConversationId;
use crate::model::Attachment;
use crate::policy::{Action, Actor, Resolved};

/// What uploads may be: enforced by the engine so every surface gets the same rule.
#[derive(Clone, Debug, PartialEq)]
pub struct UploadLimits {
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// Accepted MIME types; `*` at the end of an entry matches a family (`image/*`).
    /// Empty accepts any type.
    pub allowed_types: Vec<String>,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            allowed_types: [
                "image/*",
                "application/pdf",
                "text/plain",
                "application/msword",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

impl UploadLimits {
    /// Whether `content_type` (parameters ignored) is accepted.
    pub fn allows(&self, content_type: &str) -> bool {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        self.allowed_types.is_empty()
            || self
                .allowed_types
                .iter()
                .any(|t| match t.strip_suffix('*') {
                    Some(family) => essence.starts_with(family),
                    None => essence == *t,
                })
    }
}

impl Engine {
    /// Stores a file for conversation `id` and returns its metadata, to attach to a
    /// message with `PostMessage::attachments`. The caller must be allowed to post there
    /// (a customer in its own conversation, staff who may reply); size and type follow
    /// [`UploadLimits`]. Bad input stores nothing.
    pub async fn upload_attachment(
        &self,
        actor: &Actor,
        id: ConversationId,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Attachment> {
        let who = self.resolve(actor).await?;
        let conversation = self.load_conversation(actor.tenant(), id).await?;
        let action = match who {
            Resolved::Customer { .. } => Action::PostAsCustomer,
            Resolved::Bot => Action::PostAsBot,
            Resolved::System => Action::PostAsSystem,
            // Staff may upload to anything they could reply to or take over.
            Resolved::Staff(_) if matches!(conversation.mode, Mode::Bot | Mode::Queued) => {
                Action::Claim
            }
            Resolved::Staff(_) => Action::Reply,
        };
        who.authorize(action, &conversation)?;
        if conversation.mode == Mode::Archived {
            return Err(Error::Conflict(
                "archived conversations are read-only".into(),
            ));
        }
        let limits = &self.inner.limits.uploads;
        if bytes.is_empty() {
            return Err(Error::validation("file", "is empty"));
        }
        if bytes.len() as u64 > limits.max_bytes {
            return Err(Error::validation(
                "file",
                format!("larger than {} bytes", limits.max_bytes),
            ));
        }
        if !limits.allows(content_type) {
            return Err(Error::validation(
                "file",
                format!("type `{content_type}` is not accepted"),
            ));
        }
        let name = self.short_text("name", name)?;
        let size = bytes.len() as u64;
        let key = self
            .inner
            .blobs
            .put(&format!("{}_{}", id.0.simple(), sanitize(&name)), bytes)
            .await?;
        Ok(Attachment {
            key,
            name,
            content_type: content_type.trim().to_owned(),
            size,
        })
    }

    /// The bytes of an attachment of conversation `id`, for whoever may read it. The key
    /// must belong to that conversation (keys of other conversations are not found).
    pub async fn download_attachment(
        &self,
        actor: &Actor,
        id: ConversationId,
        key: &str,
    ) -> Result<Vec<u8>> {
        self.authorized(actor, id, Action::Read).await?;
        if !belongs_to(key, id) {
            return Err(Error::NotFound("attachment"));
        }
        self.inner.blobs.get(key).await
    }

    /// Refuses attachments uploaded to another conversation: a key is not a capability.
    pub(super) fn check_attachment_owner(
        &self,
        id: ConversationId,
        attachments: &[Attachment],
    ) -> Result<()> {
        if attachments.iter().all(|a| belongs_to(&a.key, id)) {
            Ok(())
        } else {
            Err(Error::validation(
                "attachments",
                "upload files to this conversation first",
            ))
        }
    }
}

/// Uploads are stored with the hint `<conversation>_<file name>`; blob stores keep the
/// hint as the last path segment. File names cannot contain `/`, so no upload to one
/// conversation can pass for another's.
fn belongs_to(key: &str, id: ConversationId) -> bool {
    let prefix = format!("{}_", id.0.simple());
    key.rsplit('/')
        .next()
        .is_some_and(|last| last.starts_with(&prefix))
}
