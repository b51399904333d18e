//! Mentions: `@handle` in an internal note calls a colleague in. Each mentioned agent gets
//! an event of its own and an unread count until it reads its mentions.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Agent;
use crate::ids::{AgentId, ConversationId, MessageId, TenantId};

/// One agent mentioned in one note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mention {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Who was mentioned.
    pub agent_id: AgentId,
    /// Where.
    pub conversation_id: ConversationId,
    /// The note.
    pub message_id: MessageId,
    /// Who wrote the note.
    pub by: AgentId,
    /// When.
    #[serde(with = "super::rfc3339")]
    pub at: OffsetDateTime,
    /// When the agent read its mentions; `None` while unread.
    #[serde(with = "super::rfc3339::option")]
    pub read_at: Option<OffsetDateTime>,
}

/// The handles an agent answers to, lower-case: its e-mail's local part (`ann.lee` for
/// `ann.lee@desk.example`) and its name without spaces (`annlee` for "Ann Lee").
pub fn handles(agent: &Agent) -> [String; 2] {
    let local = agent
        .email
        .split('@')
        .next()
        .unwrap_or_default()
        .to_lowercase();
    let name: String = agent
        .name
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    [local, name]
}

/// The `@handles` written in `text`, lower-case, in order, without repeats. A handle
/// starts after an `@` that begins a word (so `jo@shop.example` mentions nobody) and runs
/// over letters, digits, `.`, `_` and `-`; a trailing `.` (the end of a sentence) is not
/// part of it.
///
/// ```
/// assert_eq!(chat_core::mentioned_handles("@Ann.Lee and @bob. Mail jo@shop.example"), ["ann.lee", "bob"]);
/// ```
pub fn mentioned_handles(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut previous: Option<char> = None;
    for (i, c) in text.char_indices() {
        let starts_word = previous.is_none_or(|p| !(p.is_alphanumeric() || p == '.' || p == '_'));
        previous = Some(c);
        if c != '@' || !starts_word {
            continue;
        }
        let rest = &text[i + 1..];
        let end = rest
            .find(|ch: char| !(ch.is_alphanumeric() || matches!(ch, '.' | '_' | '-')))
            .unwrap_or(rest.len());
        let handle = rest[..end].trim_end_matches('.').to_lowercase();
        if !handle.is_empty() && !found.contains(&handle) {
            found.push(handle);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_begin_words_and_drop_the_full_stop() {
        assert_eq!(mentioned_handles("hey @ann, ask @Bob-K."), ["ann", "bob-k"]);
        assert!(mentioned_handles("write to jo@shop.example or @ alone").is_empty());
        assert_eq!(mentioned_handles("(@ann) @ann @ANN"), ["ann"]);
    }
}
