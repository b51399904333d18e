//! Field schemas for rules `#[schema(...)]` attributes cannot say (a list's items from a
//! constant, a text checked by two rules), for `schema_with` on the fields of the input
//! types that carry them. The rest of each type is derived.

use serde_json::{Value, json};
use utoipa::openapi::{RefOr, Schema};

fn schema(value: Value) -> RefOr<Schema> {
    serde_json::from_value(value).expect("a valid schema")
}

/// A posted text, as one pattern: only allowed characters (no control characters but
/// line breaks and tabs), at least one of them not white space.
pub const POSTED_TEXT: &str = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*[^\s\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f][^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$";

/// A posted text: trimmed, not empty, at most 10,000 characters, no control characters
/// but line breaks and tabs (the engine's rule for messages, notes and canned responses),
/// with `{{placeholder}}`s ([`crate::PLACEHOLDERS`]) filled when posted.
pub fn canned_body() -> RefOr<Schema> {
    let placeholders = format!(
        "Text; `{{{{placeholder}}}}`s are filled when posted: {}. Any other is 422.",
        crate::PLACEHOLDERS.join(", ")
    );
    schema(
        json!({ "type": "string", "maxLength": 10000, "description": placeholders, "pattern": POSTED_TEXT }),
    )
}

/// [`canned_body`], or `null` (left unchanged).
pub fn canned_body_patch() -> RefOr<Schema> {
    let RefOr::T(body) = canned_body() else {
        unreachable!("an inline schema")
    };
    let mut body = serde_json::to_value(body).expect("schemas serialize");
    body["type"] = json!(["string", "null"]);
    schema(body)
}

/// The event kinds a webhook may follow ([`crate::WEBHOOK_EVENT_KINDS`]).
pub fn webhook_events() -> RefOr<Schema> {
    schema(
        json!({ "type": "array", "items": { "type": "string", "enum": crate::WEBHOOK_EVENT_KINDS },
        "description": "event kinds to follow; empty or absent: all" }),
    )
}

/// [`webhook_events`], or `null` (left unchanged).
pub fn webhook_events_patch() -> RefOr<Schema> {
    schema(
        json!({ "type": ["array", "null"], "items": { "type": "string", "enum": crate::WEBHOOK_EVENT_KINDS },
        "description": "event kinds to follow; empty: all" }),
    )
}

/// A snippet's highlights: `[start, end)` pairs of character offsets, in order.
pub fn highlights() -> RefOr<Schema> {
    schema(json!({
        "type": "array",
        "items": { "type": "array", "items": { "type": "integer", "minimum": 0 }, "minItems": 2, "maxItems": 2 },
        "description": "The matched words as [start, end) offsets in characters (Unicode scalar values) of `text`, in order."
    }))
}

/// A Telegram inbox's way of reading updates ([`crate::NewInbox::mode`]), or `null`.
pub fn inbox_mode() -> RefOr<Schema> {
    schema(json!({
        "type": ["string", "null"],
        "enum": ["webhook", "polling", null],
        "description": "telegram: `webhook` (the default: Telegram posts updates to the server, registered with `public_url`) or `polling` (the server asks `getUpdates`, for a bot without a public URL; no `public_url`; `deleteWebhook` is called)."
    }))
}
