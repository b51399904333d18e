//! Field schemas for rules `#[schema(...)]` attributes cannot say, for `schema_with` on
//! the fields that carry them: the items of a list (each a short text), a subset of an
//! enum's words. The rest of each type is derived.

use serde_json::{Value, json};
use utoipa::openapi::{RefOr, Schema};

fn schema(value: Value) -> RefOr<Schema> {
    serde_json::from_value(value).expect("a valid schema")
}

/// The engine's short texts (names, titles, departments, tags): trimmed, not empty.
fn short() -> Value {
    json!({ "type": "string", "maxLength": 2000, "pattern": "\\S" })
}

/// Tags or departments, each a short text, at most 32; `null` is left out.
pub(crate) fn short_list() -> RefOr<Schema> {
    schema(json!({ "type": ["array", "null"], "maxItems": 32, "items": short() }))
}

/// Tags to add or remove, each a short text, at most 32.
pub(crate) fn short_list_required() -> RefOr<Schema> {
    schema(json!({ "type": "array", "maxItems": 32, "items": short() }))
}

/// The kinds a poster may give a message (notes and events have routes of their own).
pub(crate) fn posted_kind() -> RefOr<Schema> {
    schema(json!({ "type": ["string", "null"], "enum": ["text", "image", "audio", "file", null] }))
}

/// The rule between a transfer's fields a derive cannot state: exactly one of `agent_id`
/// and `department`, added to the derived `TransferRequest`.
pub(crate) fn one_transfer_target(schema: &mut Value) {
    schema["oneOf"] = json!([
        { "required": ["agent_id"], "properties": { "agent_id": { "type": "string" }, "department": { "type": "null" } } },
        { "required": ["department"], "properties": { "department": { "type": "string" }, "agent_id": { "type": "null" } } }
    ]);
    schema["description"] = json!("Exactly one of `agent_id` and `department`.");
}

/// A URL (utoipa's formats have no `uri`).
pub(crate) fn url() -> RefOr<Schema> {
    schema(json!({ "type": "string", "format": "uri" }))
}
