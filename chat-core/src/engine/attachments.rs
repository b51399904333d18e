//! Attachments: bytes go to the blob store under a key that names their conversation, so
//! a download is authorized like reading that conversation, and a message can only
//! carry files uploaded to its own conversation. A file's type is decided from its bytes
//! ([`refine_content_type`]), never from the name or type the client declares. Files
//! uploaded for internal notes live under their own prefix and are shown to staff only.

use super::Engine;
use crate::Mode;
use crate::blob::safe_path_segment;
use crate::blob::thumbnail_key;
use crate::error::{Error, Result};
use crate::ids::{ConversationId, TenantId};
use crate::model::{Attachment, TenantSettings};
use crate::policy::{Action, Actor, Resolved};
use crate::refine_content_type;

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
                // Voice notes from Telegram and WhatsApp.
                "audio/ogg",
                "application/zip",
                "application/vnd.openxmlformats-officedocument.*",
                "application/msword",
                "application/vnd.ms-excel",
                "application/vnd.ms-powerpoint",
                "application/vnd.ms-office",
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

/// What one tenant accepts: its settings within the engine-wide [`UploadLimits`].
#[derive(Clone, Debug, PartialEq)]
pub struct UploadPolicy {
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// Most files in one upload request.
    pub max_files: usize,
    /// Accepted types (as decided from the bytes); empty accepts every recognised type.
    pub allowed_types: Vec<String>,
}

impl UploadPolicy {
    /// Whether `content_type` is accepted.
    pub fn allows(&self, content_type: &str) -> bool {
        UploadLimits {
            max_bytes: self.max_bytes,
            allowed_types: self.allowed_types.clone(),
        }
        .allows(content_type)
    }
}

/// One file of [`Engine::upload_files`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewFile {
    /// The client's file name (any path is dropped, the rest cleaned).
    pub name: String,
    /// The client's declared type: used only to name a member of a family the bytes
    /// prove (see [`refine_content_type`]), never to decide the family.
    pub declared_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl NewFile {
    /// A file named `name`, declared as `declared_type`.
    pub fn new(name: &str, declared_type: &str, bytes: Vec<u8>) -> Self {
        Self {
            name: name.to_owned(),
            declared_type: declared_type.to_owned(),
            bytes,
        }
    }
}

/// What uploaded files are for: a message's files are read by the conversation's readers,
/// a note's by staff only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileUse {
    /// Files for a message of the conversation.
    Message,
    /// Files for an internal note.
    Note,
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
        let mut stored = self
            .upload_files(
                actor,
                id,
                FileUse::Message,
                vec![NewFile::new(name, content_type, bytes)],
            )
            .await?;
        Ok(stored.remove(0))
    }

    /// Stores a file for an internal note of conversation `id` (staff who may write notes
    /// there). Its key carries the note prefix, so only staff download it and only a note
    /// ([`post_note_with_attachments`](Self::post_note_with_attachments)) carries it.
    /// Size and type follow the same rules as [`upload_attachment`](Self::upload_attachment).
    pub async fn upload_note_attachment(
        &self,
        actor: &Actor,
        id: ConversationId,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<Attachment> {
        let mut stored = self
            .upload_files(
                actor,
                id,
                FileUse::Note,
                vec![NewFile::new(name, "", bytes)],
            )
            .await?;
        Ok(stored.remove(0))
    }

    /// What a tenant accepts, for surfaces that check before reading a whole upload (the
    /// server sizes its multipart reader with it): the tenant's settings narrowed by the
    /// engine-wide [`UploadLimits`].
    /// The caller must be allowed to upload there for `purpose` (checked here too, so a
    /// caller who may not upload is turned away before its body is read).
    pub async fn upload_policy(
        &self,
        actor: &Actor,
        id: ConversationId,
        purpose: FileUse,
    ) -> Result<UploadPolicy> {
        self.may_upload(actor, id, purpose).await?;
        let tenant = self.load_tenant(actor.tenant()).await?;
        Ok(self.upload_policy_of(&tenant.settings))
    }

    fn upload_policy_of(&self, settings: &TenantSettings) -> UploadPolicy {
        let ceiling = &self.inner.limits.uploads;
        UploadPolicy {
            max_bytes: settings.upload_max_bytes.min(ceiling.max_bytes),
            max_files: (settings.upload_max_files as usize)
                .clamp(1, self.inner.limits.max_attachments.max(1)),
            allowed_types: settings.upload_allowed_types.clone(),
        }
    }

    /// Stores several files at once for conversation `id`, for a message
    /// ([`FileUse::Message`], like [`upload_attachment`](Self::upload_attachment)) or an
    /// internal note ([`FileUse::Note`], like
    /// [`upload_note_attachment`](Self::upload_note_attachment)). Every file is checked
    /// before any is stored, so one bad file stores none; more files than the tenant's
    /// `upload_max_files` is [`Error::Validation`] on `files`.
    pub async fn upload_files(
        &self,
        actor: &Actor,
        id: ConversationId,
        purpose: FileUse,
        files: Vec<NewFile>,
    ) -> Result<Vec<Attachment>> {
        self.may_upload(actor, id, purpose).await?;
        let owner = match purpose {
            FileUse::Message => id.0.simple().to_string(),
            FileUse::Note => note_owner(id),
        };
        let policy = self.upload_policy_of(&self.load_tenant(actor.tenant()).await?.settings);
        let names = self.check_files(&policy, &files)?;
        let mut checked = Vec::with_capacity(files.len());
        for (file, (name, content_type)) in files.into_iter().zip(names) {
            // Previews are made before anything is stored: an image bomb refuses the
            // whole upload like any other bad file.
            let thumbnail = match &self.inner.thumbnails {
                Some(t) if content_type.starts_with("image/") => {
                    t.thumbnail(content_type, &file.bytes).await?
                }
                _ => None,
            };
            checked.push((name, content_type, file.bytes, thumbnail));
        }
        let mut stored = Vec::with_capacity(checked.len());
        for (name, content_type, bytes, thumbnail) in checked {
            let put = match self.put_upload(&owner, name, content_type, bytes).await {
                Ok(a) => match thumbnail {
                    Some(png) => self
                        .inner
                        .blobs
                        .put_at(&thumbnail_key(&a.key), png)
                        .await
                        .map(|_| a),
                    None => Ok(a),
                },
                Err(e) => Err(e),
            };
            match put {
                Ok(a) => stored.push(a),
                Err(e) => {
                    // A store failure half-way: take back what this call stored.
                    self.remove_files(id, &stored).await;
                    return Err(e);
                }
            }
        }
        Ok(stored)
    }

    /// The cleaned name and type of each of `files`, or why they are refused: none, more
    /// than the policy's count, or one bad file (which refuses them all).
    pub(super) fn check_files(
        &self,
        policy: &UploadPolicy,
        files: &[NewFile],
    ) -> Result<Vec<(String, &'static str)>> {
        if files.is_empty() {
            return Err(Error::validation("files", "send at least one file"));
        }
        if files.len() > policy.max_files {
            return Err(Error::validation(
                "files",
                format!("at most {} files per upload", policy.max_files),
            ));
        }
        files
            .iter()
            .map(|f| self.check_upload(policy, &f.name, &f.declared_type, &f.bytes))
            .collect()
    }

    /// The upload limits for files that customers send through `inbox` (the tenant's
    /// settings narrowed by the engine-wide [`UploadLimits`]), for a server to size its
    /// reader with before a byte of the body is read.
    pub async fn inbox_upload_policy(&self, inbox: &crate::model::Inbox) -> Result<UploadPolicy> {
        Ok(self.upload_policy_of(&self.load_tenant(inbox.tenant_id).await?.settings))
    }

    /// The caller may upload files for a message of conversation `id` (whoever may post
    /// there; staff also where they would take the conversation over) or for a note (whoever
    /// may write notes there), never in an archived conversation.
    async fn may_upload(&self, actor: &Actor, id: ConversationId, purpose: FileUse) -> Result<()> {
        let who = self.resolve(actor).await?;
        let conversation = self.load_conversation(actor.tenant(), id).await?;
        let action = match who {
            _ if purpose == FileUse::Note => Action::Note,
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
        Ok(())
    }

    /// Checks an upload against the tenant's settings and [`UploadLimits`] and stores it
    /// under `<owner>_<name>`, typed by its bytes.
    async fn store_upload(
        &self,
        tenant: TenantId,
        owner: &str,
        name: &str,
        declared_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Attachment> {
        let policy = self.upload_policy_of(&self.load_tenant(tenant).await?.settings);
        let (name, content_type) = self.check_upload(&policy, name, declared_type, &bytes)?;
        self.put_upload(owner, name, content_type, bytes).await
    }

    /// The cleaned name and the type decided from the bytes, or why the file is refused.
    fn check_upload(
        &self,
        policy: &UploadPolicy,
        name: &str,
        declared_type: &str,
        bytes: &[u8],
    ) -> Result<(String, &'static str)> {
        if bytes.is_empty() {
            return Err(Error::validation("file", "is empty"));
        }
        if bytes.len() as u64 > policy.max_bytes {
            return Err(Error::validation(
                "file",
                format!("larger than {} bytes", policy.max_bytes),
            ));
        }
        let content_type = refine_content_type(bytes, declared_type).ok_or_else(|| {
            Error::validation(
                "file",
                "not a type this desk recognises (images, PDF, text, ZIP, Office documents)",
            )
        })?;
        // Both the tenant's list and the engine-wide one must accept the type.
        if !policy.allows(content_type) || !self.inner.limits.uploads.allows(content_type) {
            return Err(Error::validation(
                "file",
                format!("type `{content_type}` is not accepted"),
            ));
        }
        // Some clients send a whole path (`C:\\Users\\jo\\receipt.png`); the file is its last part.
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        Ok((self.short_text("name", base)?, content_type))
    }

    async fn put_upload(
        &self,
        owner: &str,
        name: String,
        content_type: &'static str,
        bytes: Vec<u8>,
    ) -> Result<Attachment> {
        let size = bytes.len() as u64;
        let key = self
            .inner
            .blobs
            .put(&format!("{owner}_{}", safe_path_segment(&name)), bytes)
            .await?;
        Ok(Attachment {
            key,
            name,
            content_type: content_type.to_owned(),
            size,
        })
    }

    /// Stores a file before its conversation is known (a chat app uploads, then sends the
    /// message). The file is private to its uploader: only the same customer or staff
    /// member downloads it ([`download_pending_attachment`](Self::download_pending_attachment))
    /// or attaches it, and attaching it to a message of a conversation the uploader may
    /// post in copies it into that conversation, where the conversation's readers see it.
    /// Size and type follow the same rules as [`upload_attachment`](Self::upload_attachment).
    pub async fn upload_pending_attachment(
        &self,
        actor: &Actor,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Attachment> {
        let owner = pending_owner(&self.resolve(actor).await?)
            .ok_or(Error::Forbidden("upload files without a conversation"))?;
        self.store_upload(actor.tenant(), &owner, name, content_type, bytes)
            .await
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
    /// must belong to that conversation (keys of other conversations are not found);
    /// files of internal notes are found by staff only.
    pub async fn download_attachment(
        &self,
        actor: &Actor,
        id: ConversationId,
        key: &str,
    ) -> Result<Vec<u8>> {
        let (who, _) = self.authorized(actor, id, Action::Read).await?;
        let readable = belongs_to(key, id) || (who.sees_notes() && owned_by(key, &note_owner(id)));
        if !readable {
            return Err(Error::NotFound("attachment"));
        }
        self.inner.blobs.get(key).await
    }

    /// Removes the files of a deleted message or conversation from the blob store. Only
    /// keys of that conversation are removed (a pending upload stays with its uploader).
    /// A file that cannot be removed stays as an orphan: the deletion itself has
    /// committed, and no message refers to the file any more.
    pub(super) async fn remove_files(&self, id: ConversationId, attachments: &[Attachment]) {
        for attachment in attachments {
            if belongs_to(&attachment.key, id) || owned_by(&attachment.key, &note_owner(id)) {
                let _ = self
                    .inner
                    .blobs
                    .delete(&thumbnail_key(&attachment.key))
                    .await;
                let _ = self.inner.blobs.delete(&attachment.key).await;
            }
        }
    }

    /// Refuses attachments that are not this conversation's note files.
    pub(super) fn check_note_attachments(
        &self,
        id: ConversationId,
        attachments: &[Attachment],
    ) -> Result<()> {
        if attachments
            .iter()
            .all(|a| owned_by(&a.key, &note_owner(id)))
        {
            Ok(())
        } else {
            Err(Error::validation(
                "attachments",
                "upload files for a note of this conversation first",
            ))
        }
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
pub(super) fn belongs_to(key: &str, id: ConversationId) -> bool {
    owned_by(key, &id.0.simple().to_string())
}

/// The owner part of the keys of a conversation's note files: `<conversation>-note`. It
/// never starts with `<conversation>_`, so no note file passes for a customer-visible one.
fn note_owner(id: ConversationId) -> String {
    format!("{}-note", id.0.simple())
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
