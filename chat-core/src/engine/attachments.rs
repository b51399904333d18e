//! Attachments: bytes go to the blob store under a key that names their conversation, so
//! a download is authorized like reading that conversation, and a message can only
//! carry files uploaded to its own conversation.

use super::Engine;
use crate::Mode;
use crate::blob::safe_path_segment;
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
        self.store_upload(&id.0.simple().to_string(), name, content_type, bytes)
            .await
    }

    /// Checks an upload against [`UploadLimits`] and stores it under `<owner>_<name>`.
    async fn store_upload(
        &self,
        owner: &str,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Attachment> {
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
            .put(&format!("{owner}_{}", safe_path_segment(&name)), bytes)
            .await?;
        Ok(Attachment {
            key,
            name,
            content_type: content_type.trim().to_owned(),
            size,
        })
    }

    /// Stores a file before its conversation is known (a chat app uploads, then sends the
    /// message). The file is private to its uploader: only the same customer or staff
    /// member downloads it ([`download_pending_attachment`](Self::download_pending_attachment))
    /// or attaches it, and attaching it to a message of a conversation the uploader may
    /// post in copies it into that conversation, where the conversation's readers see it.
    /// Size and type follow [`UploadLimits`].
    pub async fn upload_pending_attachment(
        &self,
        actor: &Actor,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Attachment> {
        let owner = pending_owner(&self.resolve(actor).await?)
            .ok_or(Error::Forbidden("upload files without a conversation"))?;
        self.store_upload(&owner, name, content_type, bytes).await
    }

    /// The bytes of a pending upload, for its uploader only (anyone else: not found).
    pub async fn download_pending_attachment(&self, actor: &Actor, key: &str) -> Result<Vec<u8>> {
        let owner = pending_owner(&self.resolve(actor).await?);
        if !owner.is_some_and(|o| owned_by(key, &o)) {
            return Err(Error::NotFound("attachment"));
        }
        self.inner.blobs.get(key).await
    }

    /// Attachments of a message the poster is allowed to post in conversation `id`: its
    /// own pending uploads are copied into the conversation (their keys change); keys of
    /// the conversation stay. The pending file itself stays with its uploader, so a retry
    /// of the same message finds it again.
    pub(super) async fn adopt_attachments(
        &self,
        who: &Resolved,
        id: ConversationId,
        attachments: Vec<Attachment>,
    ) -> Result<Vec<Attachment>> {
        let owner = pending_owner(who);
        let mut adopted = Vec::with_capacity(attachments.len());
        for mut attachment in attachments {
            if !belongs_to(&attachment.key, id)
                && owner
                    .as_deref()
                    .is_some_and(|o| owned_by(&attachment.key, o))
            {
                let bytes = self.inner.blobs.get(&attachment.key).await?;
                attachment.key = self
                    .inner
                    .blobs
                    .put(
                        &format!("{}_{}", id.0.simple(), safe_path_segment(&attachment.name)),
                        bytes,
                    )
                    .await?;
            }
            adopted.push(attachment);
        }
        Ok(adopted)
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
        who: &Resolved,
        id: ConversationId,
        attachments: &[Attachment],
    ) -> Result<()> {
        let owner = pending_owner(who);
        if attachments.iter().all(|a| {
            belongs_to(&a.key, id) || owner.as_deref().is_some_and(|o| owned_by(&a.key, o))
        }) {
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
    owned_by(key, &id.0.simple().to_string())
}

/// Who a pending upload belongs to, as its key names it: `pending-c<contact>` for a
/// customer, `pending-a<agent>` for staff. Conversation keys are bare ids, so the two
/// never meet.
fn pending_owner(who: &Resolved) -> Option<String> {
    match who {
        Resolved::Customer { contact, .. } => Some(format!("pending-c{}", contact.0.simple())),
        Resolved::Staff(agent) => Some(format!("pending-a{}", agent.id.0.simple())),
        Resolved::Bot | Resolved::System => None,
    }
}

/// Whether `key` was stored with the hint `<owner>_<file name>`.
fn owned_by(key: &str, owner: &str) -> bool {
    let prefix = format!("{owner}_");
    key.rsplit('/')
        .next()
        .is_some_and(|last| last.starts_with(&prefix))
}
