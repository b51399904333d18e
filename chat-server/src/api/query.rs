//! The query parameters of the API: one definition each, read by the handlers (through
//! [`Ctx::query`](super::Ctx::query), which checks a value against it before parsing) and
//! written into the OpenAPI document (`openapi::query_param`), so a bound cannot say one
//! thing in the document and another in the parser. `tests/suite/openapi.rs` plays every
//! documented bound against a live server: the bound is accepted, one past it is 422.
//!
//! The endpoint table names an endpoint's parameters; [`param`] finds their definitions.

use std::str::FromStr;

use chat_core::report::{Dimension, Interval};
use chat_core::{Channel, Mode, Priority};
use serde_json::{Value, json};

use crate::endpoints::Endpoint;
use crate::error::ApiError;
use crate::http;

/// What a parameter's value may be.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// A count or a sequence number: a decimal integer from 0 to `max`.
    Unsigned {
        /// The largest value accepted.
        max: u64,
    },
    /// A UUID.
    Uuid,
    /// `true` or `false`.
    Flag,
    /// Text of `min_chars` to `max_chars` characters (Unicode scalar values).
    Text {
        /// The fewest characters (an empty value is the parameter left out).
        min_chars: usize,
        /// The most characters; `None`: only the request line's limit.
        max_chars: Option<usize>,
    },
    /// One of these words.
    Words(&'static [&'static str]),
    /// A local date, `YYYY-MM-DD`.
    Date,
    /// An RFC 3339 time.
    DateTime,
    /// A value the handler parses into a type the document's schema is derived from
    /// (an enum with `FromStr` and `ToSchema`: the same words both ways).
    Derived(fn() -> Value),
    /// A value with a syntax of its own (a list of modes, an assignee, a cursor): its
    /// schema is written here and its handler parses it.
    Written(fn() -> Value),
}

/// One query parameter.
#[derive(Debug, Clone, Copy)]
pub struct QueryParam {
    /// Its name in the query string.
    pub name: &'static str,
    /// What its value may be.
    pub shape: Shape,
    /// Whether the endpoint answers 422 without it.
    pub required: bool,
    /// The value meant when it is left out, if the document should say.
    pub default: Option<&'static str>,
    /// What it means, for the document.
    pub description: Option<&'static str>,
}

impl QueryParam {
    const fn new(name: &'static str, shape: Shape) -> Self {
        QueryParam {
            name,
            shape,
            required: false,
            default: None,
            description: None,
        }
    }

    const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }

    const fn describe(mut self, text: &'static str) -> Self {
        self.description = Some(text);
        self
    }

    /// Reads the parameter from `query` as `T`: `None` when absent or empty, 422 naming
    /// it when the value breaks its definition or does not parse.
    pub fn read<T: FromStr>(&self, query: Option<&str>) -> Result<Option<T>, ApiError> {
        if let Some(value) = query.and_then(|q| http::query_param(q, self.name))
            && !value.is_empty()
        {
            self.check(&value)?;
        }
        http::query_value(query, self.name)
    }

    /// Checks a present, non-empty value against the definition's bounds and words.
    pub fn check(&self, value: &str) -> Result<(), ApiError> {
        let refuse = |why: String| Err(ApiError::invalid(self.name, why));
        match self.shape {
            Shape::Unsigned { max } => match value.parse::<u64>() {
                Ok(n) if n <= max => Ok(()),
                _ => refuse(format!("`{value}` is not a whole number from 0 to {max}")),
            },
            Shape::Text {
                min_chars,
                max_chars,
            } => {
                let chars = value.chars().count();
                if chars < min_chars || max_chars.is_some_and(|max| chars > max) {
                    let max = max_chars.map_or(String::new(), |max| format!(" to {max}"));
                    refuse(format!("use {min_chars}{max} characters"))
                } else {
                    Ok(())
                }
            }
            Shape::Words(words) if !words.contains(&value) => {
                refuse(format!("use one of {}", words.join(", ")))
            }
            _ => Ok(()),
        }
    }

    /// The schema of the value, as the document gives it.
    pub fn schema(&self) -> Value {
        let mut schema = match self.shape {
            Shape::Unsigned { max } => json!({ "type": "integer", "minimum": 0, "maximum": max }),
            Shape::Uuid => json!({ "type": "string", "format": "uuid" }),
            Shape::Flag => json!({ "type": "string", "enum": ["true", "false"] }),
            Shape::Text {
                min_chars,
                max_chars,
            } => {
                let mut text = json!({ "type": "string" });
                if min_chars > 0 {
                    text["minLength"] = json!(min_chars);
                }
                if let Some(max) = max_chars {
                    text["maxLength"] = json!(max);
                }
                text
            }
            Shape::Words(words) => json!({ "type": "string", "enum": words }),
            Shape::Date => json!({ "type": "string", "format": "date" }),
            Shape::DateTime => json!({ "type": "string", "format": "date-time" }),
            Shape::Derived(schema) | Shape::Written(schema) => schema(),
        };
        if let Some(default) = self.default {
            schema["default"] = json!(default);
        }
        if let Some(description) = self.description {
            schema["description"] = json!(description);
        }
        schema
    }
}

/// Counts and sequence numbers parse as unsigned 64-bit integers; a `limit` above a
/// page is clamped to the page by the engine rather than refused.
const UNSIGNED: Shape = Shape::Unsigned { max: u64::MAX };
/// Text bounded only by the request line.
const TEXT: Shape = Shape::Text {
    min_chars: 0,
    max_chars: None,
};

/// Every query parameter but the few whose meaning depends on the endpoint
/// ([`ENDPOINT_PARAMS`]).
pub const PARAMS: &[QueryParam] = &[
    QueryParam::new("limit", UNSIGNED),
    QueryParam::new("since", UNSIGNED),
    QueryParam::new("before", UNSIGNED),
    QueryParam::new("after", UNSIGNED),
    QueryParam::new("tenant_id", Shape::Uuid),
    QueryParam::new("conversation_id", Shape::Uuid),
    QueryParam::new("agent_id", Shape::Uuid),
    QueryParam::new("cursor", Shape::Written(conversation_cursor))
        .describe("`next_cursor` of the previous page"),
    QueryParam::new("mode", Shape::Written(modes)).describe("one mode or several, comma-separated"),
    QueryParam::new("priority", Shape::Derived(derived::<Priority>)),
    QueryParam::new("channel", Shape::Derived(derived::<Channel>)),
    QueryParam::new("assigned", Shape::Written(assignee))
        .describe("`me` (staff), `none`, or an agent id"),
    QueryParam::new("pinned", Shape::Flag),
    QueryParam::new("snoozed", Shape::Flag),
    QueryParam::new("by", Shape::Derived(derived::<Dimension>)).required(),
    QueryParam::new("interval", Shape::Derived(derived::<Interval>)),
    // A report's period: local dates, both required.
    QueryParam::new("from", Shape::Date).required(),
    QueryParam::new("to", Shape::Date).required(),
    QueryParam::new("updated_from", Shape::DateTime)
        .describe("RFC 3339; last activity at or after `updated_from`, before `updated_to`"),
    QueryParam::new("updated_to", Shape::DateTime)
        .describe("RFC 3339; last activity at or after `updated_from`, before `updated_to`"),
    QueryParam::new("purpose", Shape::Words(&["message", "note"])).default("message"),
    QueryParam::new(
        "email",
        Shape::Text {
            min_chars: 1,
            max_chars: None,
        },
    )
    .required(),
    // The picker's prefix: longer than any shortcut or title could match nothing.
    QueryParam::new(
        "q",
        Shape::Text {
            min_chars: 0,
            max_chars: Some(chat_core::MAX_CANNED_TITLE_CHARS),
        },
    ),
    QueryParam::new("department", TEXT),
    QueryParam::new("tag", TEXT),
    QueryParam::new("contact_email", TEXT),
    QueryParam::new("text", TEXT),
    QueryParam::new("format", TEXT),
    QueryParam::new("tz", TEXT),
    QueryParam::new("access_token", TEXT),
    QueryParam::new("hub.mode", TEXT),
    QueryParam::new("hub.verify_token", TEXT),
    QueryParam::new("hub.challenge", TEXT),
];

/// Parameters that mean something else on one endpoint.
pub const ENDPOINT_PARAMS: &[(Endpoint, QueryParam)] = &[
    // Contacts page by the last contact's id; conversations by an opaque cursor.
    (
        Endpoint::ListContacts,
        QueryParam::new("cursor", Shape::Uuid),
    ),
];

/// The definition of `name` on `endpoint`. Every parameter an endpoint lists has one
/// (`tests/suite/openapi.rs`); a name without one is read as plain text.
pub fn param(endpoint: Endpoint, name: &'static str) -> QueryParam {
    ENDPOINT_PARAMS
        .iter()
        .find(|(e, p)| *e == endpoint && p.name == name)
        .map(|(_, p)| *p)
        .or_else(|| PARAMS.iter().find(|p| p.name == name).copied())
        .unwrap_or_else(|| {
            debug_assert!(false, "query parameter `{name}` has no definition");
            QueryParam::new(name, TEXT)
        })
}

fn derived<T: utoipa::ToSchema>() -> Value {
    crate::openapi::query_schema::<T>()
}

fn conversation_cursor() -> Value {
    json!({ "type": "string", "pattern": "^[0-9]+\\.[0-9a-f]{32}$" })
}

fn modes() -> Value {
    let modes = Mode::ALL
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join("|");
    json!({ "type": "string", "pattern": format!("^,*(({modes})(,+({modes}))*)?,*$") })
}

fn assignee() -> Value {
    json!({ "anyOf": [{ "type": "string", "enum": ["me", "none", "unassigned"] }, { "type": "string", "format": "uuid" }] })
}
