//! Canned responses: saved answers with a shortcut, shared by the desk or personal to one
//! agent, whose `{{placeholders}}` the engine fills from the conversation they are posted in.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{AgentId, CannedResponseId, TenantId};

/// A saved answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CannedResponse {
    /// Id.
    pub id: CannedResponseId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// The agent it belongs to; `None` for a shared one (managed by admins, seen by all staff).
    pub owner_id: Option<AgentId>,
    /// What an agent types after `/` to pick it: lower-case letters, digits, `-` and `_`.
    /// Unique among the shared responses, and among each agent's own.
    pub shortcut: String,
    /// A human name for the picker.
    pub title: String,
    /// The text, with `{{placeholders}}` from [`PLACEHOLDERS`].
    pub body: String,
    /// When it was created.
    #[serde(with = "super::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "super::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl CannedResponse {
    /// Whether it is shared by the whole desk.
    pub fn is_shared(&self) -> bool {
        self.owner_id.is_none()
    }
}

/// Every placeholder a canned response may use. Others are refused when it is saved, so a
/// typo is found by whoever writes the response, not by a customer reading `{{contcat.name}}`.
pub const PLACEHOLDERS: &[&str] = &[
    "contact.name",
    "contact.email",
    "agent.name",
    "agent.email",
    "conversation.id",
    "conversation.title",
    "conversation.department",
    "tenant.name",
];

/// The values a posted canned response is filled with; a value that is unknown (a contact
/// without a name) fills in as empty text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Placeholders {
    /// `(placeholder, value)` pairs, placeholder as in [`PLACEHOLDERS`].
    pub values: Vec<(&'static str, String)>,
}

/// Checks that every `{{...}}` in `body` names one of [`PLACEHOLDERS`] (spaces inside the
/// braces allowed) and that every `{{` is closed. The error is the offending text.
pub fn check_placeholders(body: &str) -> std::result::Result<(), String> {
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("a `{{` without its `}}`".to_owned());
        };
        let name = after[..end].trim();
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder `{{{{{name}}}}}`; use one of {}",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

/// Replaces every placeholder of a [checked](check_placeholders) body with its value.
///
/// ```
/// use chat_core::{Placeholders, fill_placeholders};
/// let values = Placeholders { values: vec![("contact.name", "Jo".into()), ("agent.name", "Ann".into())] };
/// assert_eq!(fill_placeholders("Hi {{contact.name}}, {{ agent.name }} here.", &values), "Hi Jo, Ann here.");
/// ```
pub fn fill_placeholders(body: &str, values: &Placeholders) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        let name = after[..end].trim();
        if let Some((_, value)) = values.values.iter().find(|(k, _)| *k == name) {
            out.push_str(value);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_or_unclosed_placeholders_are_refused() {
        assert!(check_placeholders("Hi {{contact.name}}, ticket {{conversation.id}}").is_ok());
        assert!(check_placeholders("plain text with { braces }").is_ok());
        let err = check_placeholders("Hi {{contact.nmae}}").unwrap_err();
        assert!(err.contains("contact.nmae"), "{err}");
        assert!(check_placeholders("Hi {{contact.name").is_err());
    }

    #[test]
    fn missing_values_fill_in_empty() {
        let values = Placeholders {
            values: vec![("agent.name", "Ann".into())],
        };
        assert_eq!(
            fill_placeholders("{{agent.name}} for {{contact.name}}!", &values),
            "Ann for !"
        );
    }
}
