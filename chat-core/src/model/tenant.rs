use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::TenantId;

/// One business using the desk. Nothing crosses tenants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Behaviour switches.
    pub settings: TenantSettings,
    /// Counts the changes of `settings`, from 0: what `GET /v1/settings` gives as its
    /// `ETag`, so two admins editing at once cannot overwrite each other unseen (the store
    /// writes a change only over the version it was made from). Absent in tenants stored
    /// before it existed, which read as 0.
    #[serde(default)]
    pub settings_version: u64,
    /// When it was created.
    #[serde(with = "super::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Per-tenant behaviour. Every field has a default that suits a small support desk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct TenantSettings {
    /// Posted by the bot when a conversation opens.
    #[cfg_attr(feature = "openapi", schema(max_length = 2000, pattern = r"\S"))]
    pub welcome_message: Option<String>,
    /// Whether the website widget asks a visitor's name and e-mail before the first
    /// message (a pre-chat form). Public: `GET /v1/widget` tells the widget.
    pub prechat_form: bool,
    /// Whether new conversations start with the bot (`true`) or straight in the queue.
    pub bot_enabled: bool,
    /// Whether a customer writing to a closed conversation reopens it.
    pub allow_reopen: bool,
    /// How long after posting a sender may edit a message, in seconds.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 86400))]
    pub edit_window_secs: u32,
    /// Concurrent conversations per agent unless the agent overrides it.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub default_capacity: u32,
    /// Whether queued conversations are routed to agents automatically.
    pub auto_assign: bool,
    /// Requeue a conversation whose agent has not answered in this many seconds.
    #[cfg_attr(feature = "openapi", schema(minimum = 10, maximum = 2592000))]
    pub requeue_after_secs: Option<u32>,
    /// Close a conversation after this many seconds without a customer message.
    #[cfg_attr(feature = "openapi", schema(minimum = 10, maximum = 2592000))]
    pub close_inactive_after_secs: Option<u32>,
    /// Typical time an agent spends on a conversation, for queue wait estimates.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400))]
    pub average_handle_secs: u32,

    // Attachments. The engine's `Limits::uploads` stays the ceiling for every tenant; these
    // narrow it per desk.
    /// Largest attachment, in bytes.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1073741824))]
    pub upload_max_bytes: u64,
    /// Most files in one upload request.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub upload_max_files: u32,
    /// Accepted attachment types, as decided from the bytes (see
    /// [`detect_content_type`](crate::detect_content_type)); `*` at the end of an entry
    /// matches a family (`image/*`). Empty accepts every recognised type.
    #[cfg_attr(feature = "openapi", schema(max_items = 64))]
    pub upload_allowed_types: Vec<String>,
    /// Contact attributes with a declared type (`plan: text`, `seats: number`,
    /// `renewal: date` ...), kept in the contact's `metadata`: a value of another type is
    /// refused when a contact is edited. Undeclared keys stay free text.
    pub contact_attributes: std::collections::BTreeMap<String, AttributeType>,

    /// When the desk is staffed; `None` (the default) is always open. Outside these hours
    /// a visitor's new conversation gets the offline message and waits in the queue, unrouted,
    /// until the next opening (see [`is_open`](crate::is_open)).
    pub business_hours: Option<super::BusinessHours>,
}

/// The type of a declared contact attribute. Values are stored as text in the contact's
/// `metadata`; the type says which texts are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    /// Any text.
    Text,
    /// A finite decimal number (`42`, `-3.5`).
    Number,
    /// `true` or `false`.
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
}

/// Largest per-tenant attachment limit a setting may ask for (1 GiB); the engine's own
/// limit caps it in any case.
pub const MAX_UPLOAD_BYTES: u64 = 1024 * 1024 * 1024;

/// Whether `entry` of `upload_allowed_types` names a type the server can recognise from
/// the bytes, or a family of them (`image/*`): anything else would never match a file.
/// (Legacy Office names are accepted too: a declared name may pick one within the family
/// the bytes prove.)
fn known_type(entry: &str) -> bool {
    // A `*` at the end matches every type starting with what precedes it, as uploads
    // match it (`image/*`, `application/vnd.openxmlformats-officedocument.*`).
    match entry.strip_suffix('*') {
        Some(prefix) => prefix.contains('/') && UPLOAD_TYPES.iter().any(|t| t.starts_with(prefix)),
        None => UPLOAD_TYPES.contains(&entry),
    }
}

/// The types the server recognises from a file's bytes: what `upload_allowed_types` may
/// name (or a family of them, ending in `*`).
pub const UPLOAD_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "application/zip",
    "text/plain",
    "audio/ogg",
    "application/vnd.ms-office",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
];

/// Longest welcome message, in characters: a greeting, not a page.
pub const MAX_WELCOME_CHARS: usize = 2_000;

impl TenantSettings {
    /// Checks every field; [`Error::Validation`](crate::Error::Validation) names the first
    /// one out of range. The engine calls it before storing settings, so a bad value never
    /// reaches a timer or the router.
    pub fn validate(&self) -> crate::Result<()> {
        use crate::Error;
        if let Some(text) = &self.welcome_message
            && (text.trim().is_empty() || text.chars().count() > MAX_WELCOME_CHARS)
        {
            return Err(Error::validation(
                "welcome_message",
                format!("use 1 to {MAX_WELCOME_CHARS} characters, or null for none"),
            ));
        }
        // A day: longer windows turn edits into rewriting history.
        if self.edit_window_secs > 86_400 {
            return Err(Error::validation(
                "edit_window_secs",
                "at most 86400 (one day)",
            ));
        }
        if !(1..=1_000).contains(&self.default_capacity) {
            return Err(Error::validation("default_capacity", "use 1 to 1000"));
        }
        // Zero would fire on every timer pass; switch a timer off with null instead.
        for (field, value) in [
            ("requeue_after_secs", self.requeue_after_secs),
            ("close_inactive_after_secs", self.close_inactive_after_secs),
        ] {
            if value.is_some_and(|v| !(10..=30 * 86_400).contains(&v)) {
                return Err(Error::validation(
                    field,
                    "use 10 to 2592000 seconds (30 days), or null for off",
                ));
            }
        }
        if !(1..=86_400).contains(&self.average_handle_secs) {
            return Err(Error::validation("average_handle_secs", "use 1 to 86400"));
        }
        // The engine's own upload limit still caps these; a tenant's can only narrow it.
        if !(1..=MAX_UPLOAD_BYTES).contains(&self.upload_max_bytes) {
            return Err(Error::validation(
                "upload_max_bytes",
                format!("use 1 to {MAX_UPLOAD_BYTES} bytes"),
            ));
        }
        if !(1..=100).contains(&self.upload_max_files) {
            return Err(Error::validation("upload_max_files", "use 1 to 100"));
        }
        if self.upload_allowed_types.len() > 64
            || self.upload_allowed_types.iter().any(|t| !known_type(t))
        {
            return Err(Error::validation(
                "upload_allowed_types",
                "list at most 64 types the server recognises from the bytes (image/png, \
                 application/pdf, text/plain ...), or families such as image/*",
            ));
        }
        if self.contact_attributes.len() > 100
            || self.contact_attributes.keys().any(|k| {
                k.is_empty()
                    || k.chars().count() > 64
                    || !k
                        .chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            })
        {
            return Err(Error::validation(
                "contact_attributes",
                "declare at most 100 attributes, each named with 1 to 64 letters, digits, \
                 '_', '-' or '.'",
            ));
        }
        if let Some(hours) = &self.business_hours {
            hours
                .check()
                .map_err(|message| Error::validation("business_hours", message))?;
        }
        Ok(())
    }

    /// Whether any timer of [`Engine::run_timers`](crate::Engine::run_timers) is on (business
    /// hours count: their opening routes the waiting queue), so a
    /// scheduler may skip tenants with nothing to do.
    pub fn has_timers(&self) -> bool {
        self.requeue_after_secs.is_some()
            || self.close_inactive_after_secs.is_some()
            || self.business_hours.is_some()
    }
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            welcome_message: None,
            prechat_form: false,
            bot_enabled: true,
            allow_reopen: true,
            edit_window_secs: 15 * 60,
            default_capacity: 5,
            auto_assign: true,
            requeue_after_secs: None,
            close_inactive_after_secs: None,
            average_handle_secs: 300,
            upload_max_bytes: 10 * 1024 * 1024,
            upload_max_files: 5,
            upload_allowed_types: [
                "image/png",
                "image/jpeg",
                "image/gif",
                "image/webp",
                "application/pdf",
                "text/plain",
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
            contact_attributes: std::collections::BTreeMap::new(),
            business_hours: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_and_attribute_settings_are_checked() {
        let ok = TenantSettings::default();
        assert!(ok.validate().is_ok());
        let field = |s: TenantSettings| match s.validate() {
            Err(crate::Error::Validation { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(TenantSettings {
                upload_max_bytes: 0,
                ..ok.clone()
            }),
            "upload_max_bytes"
        );
        assert_eq!(
            field(TenantSettings {
                upload_max_files: 1000,
                ..ok.clone()
            }),
            "upload_max_files"
        );
        assert_eq!(
            field(TenantSettings {
                upload_allowed_types: vec!["text/html".into()],
                ..ok.clone()
            }),
            "upload_allowed_types"
        );
        let mut bad = ok.clone();
        bad.contact_attributes
            .insert("has space".into(), AttributeType::Text);
        assert_eq!(field(bad), "contact_attributes");
        let families = TenantSettings {
            upload_allowed_types: vec!["image/*".into(), "application/pdf".into()],
            ..ok
        };
        assert!(families.validate().is_ok());
    }

    #[test]
    fn every_type_the_bytes_can_tell_is_a_type_settings_may_allow() {
        let samples: [&[u8]; 7] = [
            b"\x89PNG\r\n\x1a\n....",
            b"\xff\xd8\xff\xe0....",
            b"GIF89a....",
            b"RIFF....WEBPVP8 ",
            b"%PDF-1.7\n",
            b"PK\x03\x04....",
            b"hello\n",
        ];
        for bytes in samples {
            let detected = crate::detect_content_type(bytes).expect("recognised");
            assert!(known_type(detected), "{detected}");
        }
    }
}
