//! The OpenAPI 3.1 document, generated from the endpoint table so that an endpoint cannot exist
//! without being documented (and the test in `tests/openapi.rs` checks the reverse).
//!
//! Where each part comes from:
//! - **Query parameters**: [`crate::api::query`], the definitions the handlers read them by
//!   (`tests/openapi.rs` plays each documented bound against a live server).
//! - **Component schemas**: derived with `utoipa::ToSchema` from the types the server parses
//!   and answers (`derived`; the request bodies, the answers the server serializes from a
//!   type of its own, and every `{"items": [...]}` list through [`crate::api::Items`]), with
//!   `#[schema(...)]` attributes for their rules and `rules` (and `chat_core::openapi`)
//!   for the rules attributes cannot say (a list's item rules, a subset of an enum's words).
//! - **Still written here**, and why:
//!   - `TransferRequest`: "exactly one of `agent_id` and `department`" is a rule between
//!     fields (a `oneOf`), which a derive cannot state.
//!   - `FileUpload`, and the form of `InboundMessage`: multipart forms, not serde types.
//!   - `TelegramUpdate`, `WhatsappNotification`: the providers' formats, of which the server
//!     reads a few fields out of the JSON; documented as the providers define them.
//!   - The inbox family (`NewInbox`, `Inbox`, `CreatedInbox`, `InboxList`, `InboundMessage`,
//!     `ReceivedMessage`, `TelegramReceived`, `WhatsappReceived`): their types exist
//!     (`api::inboxes`, `chat_core::NewInbox`) and take the same derive; left for the change
//!     of the inbox kinds in progress, so the two do not collide.
//!   - `Event`, `EventList`: an event is the policy's `EventView` over `EventPayload`, a
//!     tagged enum of many kinds serialized by hand per viewer; deriving it needs
//!     `ToSchema` on every payload kind in chat-core.
//!   - Answers still assembled as JSON in their handlers rather than serialized from a type
//!     (`Me`, `OpenedConversation`, `ConversationPage`, `MessageHit`, `Transcript`, the
//!     `Report*` answers): each needs its handler to build a typed answer first, as
//!     `AccountSession`, `ContactPage`, `LoginResponse` and `Widget` now do.
//!   - `TenantSettingsPatch`: the derived `TenantSettings` closed to unknown fields, plus
//!     the upload types and limits the derive cannot say (`settings_schemas`).

use serde_json::{Map, Value, json};

use crate::endpoints::{Access, ENDPOINTS, Endpoint};

mod derived;
pub(crate) mod rules;

pub(crate) use derived::query_schema;

/// The document as JSON text.
pub fn document_json() -> String {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| serde_json::to_string_pretty(&document()).expect("the document serializes"))
        .clone()
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for endpoint in ENDPOINTS {
        let entry = paths.entry(endpoint.path).or_insert_with(|| json!({}));
        let mut op = json!({
            "operationId": format!("{:?}", endpoint.id),
            "summary": endpoint.summary,
            "responses": responses(endpoint.id, endpoint.status, endpoint.response),
        });
        let mut parameters: Vec<Value> = path_params(endpoint.path)
            .map(|name| {
                let schema = if name == "id" {
                    json!({ "type": "string", "format": "uuid" })
                } else {
                    json!({ "type": "string" })
                };
                json!({ "name": name, "in": "path", "required": true, "schema": schema })
            })
            .collect();
        parameters.extend(
            endpoint
                .query
                .iter()
                .map(|name| query_param(endpoint.id, name)),
        );
        if endpoint.id == Endpoint::UpdateSettings {
            parameters.push(json!({
                "name": "If-Match", "in": "header", "required": false,
                "description": "The `ETag` of `GET /v1/settings` (`\"7\"`) or `*`: the change applies only over that version, else 412 `precondition_failed` (with `current_version`) and nothing changes. Without it, the patch is merged into the newest settings.",
                "schema": { "type": "string" }
            }));
        }
        if !parameters.is_empty() {
            op["parameters"] = Value::Array(parameters);
        }
        if let Some(schema) = endpoint.request {
            // Uploads are forms; every other body is JSON.
            let media = match schema {
                "FileUpload" => "multipart/form-data",
                "RawEmail" => "message/rfc822",
                _ => "application/json",
            };
            op["requestBody"] = json!({
                "required": !OPTIONAL_BODIES.contains(&endpoint.id),
                "content": { media: { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
            });
            // An inbound message with files: the same JSON in a form field, beside them.
            if schema == "InboundMessage" {
                op["requestBody"]["content"]["multipart/form-data"] = json!({ "schema": object(&["message"], json!({
                    "message": { "type": "string", "description": "The `InboundMessage` JSON." },
                    "file": { "type": "array", "items": { "type": "string", "format": "binary" }, "description": "File parts (any field name), checked like uploads." }
                })) });
            }
        }
        op["security"] = match endpoint.access {
            Access::Public => json!([{}, { "bearer": [] }]),
            Access::Authenticated | Access::Staff => json!([{ "bearer": [] }]),
        };
        if endpoint.access == Access::Staff {
            op["description"] = json!("Staff token required.");
        }
        entry[endpoint.method.as_str().to_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "chat-server API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Customer-support chat: conversations, messages, routing, staff. Every error is {\"error\": {\"code\", \"message\", \"field\"?}} with codes: malformed_json, bad_request, invalid_id (400), unauthorized (401), forbidden (403), not_found (404), method_not_allowed (405), version_conflict (409, with current_version), duplicate, conflict, invalid_transition (409), precondition_failed (412, with current_version), payload_too_large (413), unsupported_media_type (415), validation_failed (422, names the field), rate_limited (429, Retry-After), bot_failed (502), storage_busy (503, Retry-After), storage_full, storage_read_only, storage_corrupt, unavailable (503), bot_timeout (504)."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "A staff JWT from /v1/auth/login, a visitor token (vt_...) from POST /v1/conversations, or a bot token (bt_...) from POST /v1/bot-tokens." }
            },
            "schemas": schemas(),
        }
    })
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// Endpoints whose body may be left out (every field of theirs is optional).
const OPTIONAL_BODIES: &[Endpoint] = &[Endpoint::Handoff, Endpoint::Close, Endpoint::Snooze];

/// Endpoints that answer 200 instead of their usual 201 for a repeated
/// `client_message_id` (the message stored the first time).
const IDEMPOTENT_POSTS: &[Endpoint] = &[
    Endpoint::PostMessage,
    Endpoint::PostCannedResponse,
    Endpoint::ReceiveEmail,
];

/// A query parameter as [`crate::api::query`] defines it for the handler that reads it.
/// An empty value counts as absent everywhere, so string parameters may be empty.
fn query_param(endpoint: Endpoint, name: &'static str) -> Value {
    let param = crate::api::query::param(endpoint, name);
    let (schema, required) = (param.schema(), param.required);
    // An empty value is the parameter left out (a form's empty field), for any type.
    let schema = if required
        || schema["type"] == "string"
            && schema.get("pattern").is_none()
            && schema.get("enum").is_none()
            && schema.get("format").is_none()
    {
        schema
    } else {
        json!({ "anyOf": [schema, { "const": "" }] })
    };
    json!({ "name": name, "in": "query", "required": required, "schema": schema })
}

fn responses(endpoint: Endpoint, status: u16, response: Option<&str>) -> Value {
    let error = json!({ "description": "Error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let success = match response {
        None => json!({ "description": "Done" }),
        Some("text") => {
            json!({ "description": "OK", "content": { "text/plain": { "schema": { "type": "string" } } } })
        }
        Some("html") => {
            json!({ "description": "OK", "content": { "text/html": { "schema": { "type": "string" } } } })
        }
        Some("file") => {
            json!({ "description": "The file's bytes, typed by their content, as an attachment.", "headers": {
                "Content-Disposition": { "schema": { "type": "string" }, "description": "attachment; filename=\"...\"" },
                "X-Content-Type-Options": { "schema": { "const": "nosniff" } }
            }, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } })
        }
        Some("asset") => {
            json!({ "description": "The file, typed by its name, with an `ETag` (send it back as `If-None-Match` for a 304).", "headers": {
                "ETag": { "schema": { "type": "string" } },
                "X-Content-Type-Options": { "schema": { "const": "nosniff" } }
            }, "content": { "*/*": { "schema": { "type": "string", "format": "binary" } } } })
        }
        Some("ndjson") => {
            json!({ "description": "JSON Lines, sent as they are read (chunked): a header line, one line per stored row (`kind` names its table), an end line with the count. A transfer cut short means the export failed.", "content": { "application/x-ndjson": { "schema": { "type": "string" } } } })
        }
        Some("object") => {
            json!({ "description": "OK", "content": { "application/json": { "schema": { "type": "object" } } } })
        }
        Some(name) => {
            json!({ "description": "OK", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } } } })
        }
    };
    let mut answers = json!({ status.to_string(): success, "default": error });
    if matches!(endpoint, Endpoint::GetSettings | Endpoint::UpdateSettings) {
        answers[status.to_string()]["headers"] = json!({
            "ETag": { "schema": { "type": "string" }, "description": "The settings' version, quoted (`\"7\"`): send it back as `If-Match`." }
        });
    }
    if endpoint == Endpoint::UpdateSettings {
        answers["412"] = json!({ "description": "`precondition_failed`: `If-Match` names a version that is no longer current (`current_version` says which is); nothing changed.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    }
    if IDEMPOTENT_POSTS.contains(&endpoint) {
        answers["200"] = answers[status.to_string()].clone();
    }
    answers
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

fn list_of(schema: &str) -> Value {
    object(
        &["items"],
        json!({ "items": { "type": "array", "items": { "$ref": format!("#/components/schemas/{schema}") } } }),
    )
}

fn schemas() -> Value {
    let mut all = core_schemas();
    let map = all.as_object_mut().expect("schemas are an object");
    map.extend(
        desk_schemas()
            .as_object()
            .expect("schemas are an object")
            .clone(),
    );
    map.extend(
        report_schemas()
            .as_object()
            .expect("schemas are an object")
            .clone(),
    );
    close_request_bodies(&mut all);
    let map = all.as_object_mut().expect("schemas are an object");
    for (name, schema) in derived::schemas() {
        assert!(
            map.insert(name.clone(), schema).is_none(),
            "{name} is derived from its type and written by hand too"
        );
    }
    settings_schemas(&mut all);
    // A search's answer adds the matching messages to each conversation.
    all["Conversation"]["properties"]["hits"] = json!({ "type": "array", "items": { "$ref": "#/components/schemas/MessageHit" },
        "description": "Only in an answer to a search (`text`): up to 3 of the conversation's newest messages the text matched, newest first; none when it matched by title or contact alone. Internal notes are hits for staff only." });
    all
}

/// Every JSON request body is read with `deny_unknown_fields`: an unknown field is 422
/// naming it, so the documented bodies admit no other field.
fn close_request_bodies(schemas: &mut Value) {
    for endpoint in ENDPOINTS {
        let Some(name) = endpoint.request else {
            continue;
        };
        // An upload takes a file part under any name; a mail is no JSON.
        if name == "FileUpload" || name == "RawEmail" {
            continue;
        }
        if let Some(schema) = schemas.get_mut(name).and_then(Value::as_object_mut) {
            schema
                .entry("additionalProperties")
                .or_insert(Value::Bool(false));
        }
    }
}

/// `schema`, or `null`.
fn nullable(mut schema: Value) -> Value {
    let plain_type = schema.get("enum").is_none()
        && schema.get("const").is_none()
        && schema.get("$ref").is_none();
    match schema.get_mut("type") {
        Some(Value::String(t)) if plain_type => {
            let t = t.clone();
            schema["type"] = json!([t, "null"]);
            schema
        }
        Some(Value::Array(types)) if plain_type => {
            if !types.contains(&json!("null")) {
                types.push(json!("null"));
            }
            schema
        }
        _ => json!({ "anyOf": [schema, { "type": "null" }] }),
    }
}

/// The reports (`/v1/reports/...`); see `chat_core::report` for what each figure counts.
fn report_schemas() -> Value {
    let array_of = |schema: &str| json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{schema}") } });
    let about = json!({
        "from": { "type": "string", "format": "date" },
        "to": { "type": "string", "format": "date" },
        "tz": { "type": "string", "description": "IANA time zone name" },
        "agent_id": { "type": ["string", "null"], "format": "uuid", "description": "the agent whose conversations were counted; null: the whole desk" }
    });
    let with = |required: &[&str], extra: Value| {
        let mut properties = about.clone();
        properties
            .as_object_mut()
            .expect("an object")
            .extend(extra.as_object().expect("an object").clone());
        let mut all = vec!["from", "to", "tz", "agent_id"];
        all.extend_from_slice(required);
        object(&all, properties)
    };
    json!({
        "ReportOverview": with(&["totals"], json!({ "totals": { "$ref": "#/components/schemas/ReportRow" } })),
        "ReportBreakdown": with(&["by", "rows"], json!({
            "by": { "$ref": "#/components/schemas/Dimension" },
            "rows": array_of("ReportRow") })),
        "ReportSeries": with(&["interval", "points"], json!({
            "interval": { "$ref": "#/components/schemas/Interval" },
            "points": array_of("SeriesPoint") })),
        "ReportFeedback": with(&["items"], json!({ "items": array_of("Feedback") })),
        "Transcript": object(&["conversation", "messages", "truncated"], json!({
            "conversation": { "$ref": "#/components/schemas/Conversation" },
            "messages": { "type": "array", "items": { "$ref": "#/components/schemas/Message" } },
            "truncated": { "type": "boolean", "description": "more than 10,000 messages: only the first are here" } })),
    })
}

/// The tenant settings as derived from `TenantSettings`, with what the derive cannot say,
/// and the patch: the same settings, each optional, no other.
fn settings_schemas(all: &mut Value) {
    let families = ["image/*", "application/*", "text/*"];
    // A type recognised from the bytes, or a family: the start of one followed by `*`.
    let upload_type = json!({ "anyOf": [
        { "type": "string", "enum": chat_core::UPLOAD_TYPES.iter().chain(&families).collect::<Vec<_>>() },
        { "type": "string", "pattern": "^(image|application|text)/[^*]*\\*$", "description": "a family, e.g. application/vnd.openxmlformats-officedocument.*" }
    ] });
    let settings = &mut all["TenantSettings"]["properties"];
    settings["upload_allowed_types"]["items"] = upload_type;
    // A field attribute the derive has no word for (`TenantSettings::check` holds the rule).
    settings["contact_attributes"]["maxProperties"] = json!(100);
    settings["business_hours"]["description"] = json!(
        "null (the default): always open. Outside the hours a visitor's new conversation gets the offline message, the answer says `offline: true`, and it waits in the queue, unrouted, until the next opening. A schedule that does not check (unknown zone, bad time, from >= to, overlapping ranges, bad date) is 422 on `business_hours` with the reason."
    );
    let mut patch = all["TenantSettings"].clone();
    patch["additionalProperties"] = json!(false);
    patch["description"] = json!(
        "Only the settings to change. An unknown setting, a wrong type or a value out of range is 422 naming it, and nothing changes."
    );
    all["TenantSettingsPatch"] = patch;
}

/// The desk's configuration and daily tools: business hours, canned responses, mentions,
/// snooze.
fn desk_schemas() -> Value {
    let uuid = json!({ "type": "string", "format": "uuid" });
    let time = json!({ "type": "string", "format": "date-time" });
    let inbox = json!({
        "id": uuid, "name": { "type": "string" }, "kind": { "type": "string", "enum": ["api", "telegram", "whatsapp", "email"] },
        "channel": { "type": "string", "description": "the channel of its conversations" },
        "webhook_id": { "type": ["string", "null"], "format": "uuid", "description": "the webhook replies are delivered through: its delivery log is the inbox's" },
        "created_at": time, "updated_at": time });
    json!({
        "NewInbox": object(&["name"], json!({
            "name": { "type": "string", "minLength": 1, "maxLength": 2000, "pattern": "\\S" },
            "kind": { "type": "string", "enum": ["api", "telegram", "whatsapp", "email"], "description": "absent: api; email: needs the server's SMTP relay (409 mail_not_configured), takes only `name`" },
            "phone_number_id": { "type": "string", "description": "whatsapp (required): the number's id" },
            "access_token": { "type": "string", "description": "whatsapp (required): the Cloud API's bearer token; never shown again" },
            "app_secret": { "type": "string", "description": "whatsapp (required): the app secret its webhook posts are signed with; never shown again" },
            "webhook_url": { "type": "string", "maxLength": 2000, "description": "api (required): where replies are delivered, http:// or https://" },
            "bot_token": { "type": "string", "description": "telegram (required): the bot's token; never shown again" },
            "api_url": { "type": "string", "maxLength": 2000, "description": "telegram: the Bot API's base URL (default https://api.telegram.org)" },
            "public_url": { "type": "string", "maxLength": 2000, "description": "telegram: this server's base URL as Telegram reaches it; given, the server calls setWebhook" },
            "mode": { "type": "string", "enum": ["webhook", "polling"], "description": "telegram: `polling` reads updates by getUpdates (no public_url; deleteWebhook is called); absent: webhook" },
            "template_name": { "type": "string", "maxLength": 512, "pattern": "^[a-z0-9_]+$", "description": "whatsapp: an approved message template without variables, sent by POST /v1/conversations/{id}/whatsapp-template outside the 24-hour window; with template_language" },
            "template_language": { "type": "string", "maxLength": 16, "description": "whatsapp: the template's language code (en_US); with template_name" },
            "webhook_secret": { "type": "string", "minLength": 16, "maxLength": 256, "description": "absent: the server makes one (shown once)" } })),
        "Inbox": object(&["id", "name", "kind", "channel", "webhook_id", "created_at", "updated_at"], inbox.clone()),
        "CreatedInbox": object(&["id", "name", "kind", "channel", "webhook_id", "created_at", "updated_at", "token"], {
            let mut i = inbox.clone();
            i["token"] = json!({ "type": "string", "description": "The inbox's token for `POST /v1/inboxes/{id}/messages`; never shown again." });
            i["webhook_secret"] = json!({ "type": "string", "description": "api: the reply webhook's signing secret; never shown again." });
            i
        }),
        "InboxList": list_of("Inbox"),
        "InboundMessage": object(&["contact", "message"], json!({
            "contact": object(&["id"], json!({
                "id": { "type": "string", "minLength": 1, "maxLength": 200, "description": "your id for the customer: their messages share one conversation" },
                "name": { "type": "string", "maxLength": 200 } })),
            "message": object(&["id", "text"], json!({
                "id": { "type": "string", "minLength": 1, "maxLength": 200, "description": "your id for the message: the idempotency key" },
                "text": { "type": "string", "minLength": 1, "maxLength": 10000, "pattern": "\\S" },
                "attachments": { "type": "array", "description": "files the server fetches by `GET` from your URLs before anything is stored, within the tenant's upload limits (with multipart parts, at most its file count); a URL that is not http(s), cannot be fetched or resolves inside the server's network (unless `--webhooks-allow-private`) is 422 on `attachments`, a file too large or of a refused type 422 on `file`",
                    "items": object(&["url"], json!({
                        "url": { "type": "string", "format": "uri" },
                        "name": { "type": "string", "maxLength": 200, "description": "the file's name; the URL's last segment when absent" } })) } })) })),
        "RawEmail": { "type": "string", "format": "binary", "maxLength": 26214400,
            "description": "A whole RFC 5322 message as the MTA received it (headers, blank line, MIME body), at most 25 MiB. Read: the first `From` address (required) and display name, `Message-ID` (the idempotency key; absent, the SHA-256 of the bytes), `In-Reply-To` and `References` (threading), `Subject`, the `text/plain` part (else the HTML part as text), and the attachments." },
        "TelegramUpdate": {
            "type": "object", "required": ["update_id"],
            "description": "The Bot API's Update object (https://core.telegram.org/bots/api#update); fields not listed are accepted and ignored.",
            "properties": {
                "update_id": { "type": "integer" },
                "message": {
                    "type": "object", "required": ["message_id", "chat"],
                    "properties": {
                        "message_id": { "type": "integer" },
                        "from": { "type": "object", "required": ["first_name"], "properties": { "first_name": { "type": "string" }, "last_name": { "type": "string" } } },
                        "chat": { "type": "object", "required": ["id"], "properties": { "id": { "type": "integer" } } },
                        "text": { "type": "string" }, "caption": { "type": "string" },
                        "photo": { "type": "array", "description": "sizes of a photo: the largest is fetched by getFile", "items": { "type": "object", "required": ["file_id"], "properties": { "file_id": { "type": "string" }, "width": { "type": "integer" }, "height": { "type": "integer" }, "file_size": { "type": "integer" } } } },
                        "document": { "type": "object", "required": ["file_id"], "properties": { "file_id": { "type": "string" }, "file_name": { "type": "string" }, "mime_type": { "type": "string" }, "file_size": { "type": "integer" } } },
                        "voice": { "type": "object", "required": ["file_id"], "properties": { "file_id": { "type": "string" }, "mime_type": { "type": "string" }, "file_size": { "type": "integer" } } } } } } },
        "WhatsappNotification": {
            "type": "object", "required": ["object", "entry"],
            "description": "A WhatsApp Cloud API webhook notification; fields not listed are accepted and ignored.",
            "properties": {
                "object": { "type": "string" },
                "entry": { "type": "array", "items": { "type": "object", "properties": {
                    "changes": { "type": "array", "items": { "type": "object", "required": ["field", "value"], "properties": {
                        "field": { "type": "string" },
                        "value": { "type": "object", "properties": {
                            "contacts": { "type": "array", "items": { "type": "object", "required": ["wa_id"], "properties": { "wa_id": { "type": "string" }, "profile": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string" } } } } } },
                            "messages": { "type": "array", "items": { "type": "object", "required": ["from", "id", "type"], "properties": { "from": { "type": "string" }, "id": { "type": "string" }, "type": { "type": "string" }, "text": { "type": "object", "required": ["body"], "properties": { "body": { "type": "string" } } }, "image": { "$ref": "#/components/schemas/WhatsappMedia" }, "document": { "$ref": "#/components/schemas/WhatsappMedia" }, "audio": { "$ref": "#/components/schemas/WhatsappMedia" } } } } } } } } } } } } } },
        "WhatsappMedia": object(&["id"], json!({
            "id": { "type": "string", "description": "the media id: GET /{media-id} answers its url, fetched with the access token" },
            "mime_type": { "type": "string" }, "filename": { "type": "string" }, "caption": { "type": "string" }, "sha256": { "type": "string" } })),
        "TemplateRequest": object(&[], json!({
            "client_message_id": { "type": "string", "maxLength": 200, "description": "the same id twice stores (and sends) one message" } })),
        "WhatsappReceived": object(&["stored"], json!({ "stored": { "type": "integer", "description": "text, image, document and audio messages stored (repeats included)" } })),
        "TelegramReceived": object(&["stored", "conversation_id", "message_id"], json!({
            "stored": { "type": "boolean", "description": "false: an update without a text, photo, document or voice message, acknowledged" },
            "conversation_id": { "type": ["string", "null"], "format": "uuid" },
            "message_id": { "type": ["string", "null"], "format": "uuid" } })),
        "ReceivedMessage": object(&["conversation_id", "message_id", "created", "opened"], json!({
            "conversation_id": uuid, "message_id": uuid,
            "created": { "type": "boolean", "description": "false: a repeat of a message already stored" },
            "opened": { "type": "boolean", "description": "true: this message opened the conversation" } })),
    })
}

fn core_schemas() -> Value {
    let uuid = json!({ "type": "string", "format": "uuid" });
    let time = json!({ "type": "string", "format": "date-time" });
    let sender = json!({ "$ref": "#/components/schemas/Sender" });
    // The engine's short texts (names, titles, departments): trimmed, not empty.
    let short = json!({ "type": "string", "maxLength": 2000, "pattern": "\\S" });
    json!({
        "Me": object(&["kind", "tenant_id"], json!({ "kind": { "type": "string", "enum": ["staff", "customer", "system"] }, "tenant_id": uuid,
            "agent": { "$ref": "#/components/schemas/Agent" }, "contact_id": uuid, "conversation_id": uuid })),
        "OpenedConversation": object(&["conversation", "contact", "messages", "offline"], json!({
            "conversation": { "$ref": "#/components/schemas/Conversation" }, "contact": { "$ref": "#/components/schemas/Contact" },
            "messages": { "type": "array", "items": { "$ref": "#/components/schemas/Message" } },
            "visitor_token": { "type": "string", "description": "Only for anonymous callers: the bearer token for this conversation." },
            "offline": { "type": "boolean", "description": "The desk was closed (business hours) at the opening: the conversation waits, unrouted, for the next opening." }
        })),
        "MessageHit": object(&["message_id", "seq", "kind", "sender", "created_at", "snippet"], json!({
            "message_id": uuid, "seq": { "type": "integer" }, "kind": { "type": "string" }, "sender": sender, "created_at": time,
            "snippet": object(&["text", "highlights"], json!({
                "text": { "type": "string", "description": "Plain text (never markup), about 160 characters around the first match; line breaks as spaces, `…` where the message was cut." },
                "highlights": { "type": "array", "items": { "type": "array", "items": { "type": "integer", "minimum": 0 }, "minItems": 2, "maxItems": 2 },
                    "description": "The matched words as [start, end) offsets in characters (Unicode scalar values) of `text`, in order." } })) })),
        "ConversationPage": object(&["items", "next_cursor", "counts", "counts_capped"], json!({
            "items": { "type": "array", "items": { "$ref": "#/components/schemas/Conversation" } },
            "next_cursor": { "type": ["string", "null"] },
            "counts": { "type": "object", "additionalProperties": { "type": "integer", "minimum": 0 }, "description": "Conversations per mode matching the filters other than mode. Exact without `text`; with `text` each mode is counted up to 1000 and stops there (see `counts_capped`)." },
            "counts_capped": { "type": "boolean", "description": "A search (`text`) stopped counting at least one mode at 1000: a count of 1000 then means 1000 or more (show \"1000+\"). Always false without `text`." }
        })),
        "FileUpload": {
            "type": "object", "required": ["file"], "additionalProperties": { "type": "string", "format": "binary" },
            "properties": {
            "file": { "type": "array", "minItems": 1, "items": { "type": "string", "format": "binary" }, "description": "One part per file (any field name with a filename). The declared name is kept (cleaned); the declared type is ignored." } } },
        "TransferRequest": {
            "type": "object", "properties": { "agent_id": nullable(uuid.clone()), "department": nullable(short.clone()), "reason": { "type": ["string", "null"] } },
            "oneOf": [
                { "required": ["agent_id"], "properties": { "agent_id": { "type": "string" }, "department": { "type": "null" } } },
                { "required": ["department"], "properties": { "department": { "type": "string" }, "agent_id": { "type": "null" } } }
            ],
            "description": "Exactly one of `agent_id` and `department`."
        },
        "EventList": object(&["items", "next_since", "more", "head", "resync_required"], json!({ "items": { "type": "array", "items": { "$ref": "#/components/schemas/Event" } }, "next_since": { "type": "integer" }, "more": { "type": "boolean" },
            "head": { "type": "integer", "description": "The newest event's seq when the page was read." },
            "resync_required": { "type": "boolean", "description": "`since` is beyond `head` (the cursor comes from another database: a restore, a wiped server), or before the oldest event the log keeps (the event retention removed the events after it); reload, then continue from `head`." } })),
        "Event": object(&["seq", "at", "payload"], json!({ "seq": { "type": "integer" }, "tenant_id": uuid, "conversation_id": { "type": ["string", "null"] },
            "staff_only": { "type": "boolean" }, "at": time, "payload": object(&["type"], json!({ "type": { "type": "string",
            "enum": ["conversation_created", "conversation_updated", "conversation_deleted", "message_created", "message_updated", "read_updated", "agent_updated", "contact_merged", "contact_erased", "settings_updated", "mentioned", "canned_response_updated", "canned_response_deleted", "webhook_paused"] } })) })),
    })
}

/// The `/docs` page: renders the OpenAPI document in the browser, no CDN.
pub const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chat-server API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330}
h1{margin-bottom:.2rem} .op{border:1px solid #d6dbe4;border-radius:6px;margin:.6rem 0;padding:.5rem .8rem}
.m{display:inline-block;min-width:4.2rem;font-weight:700;font-family:monospace} .get{color:#0a7b35}.post{color:#1a5fb4}
.patch{color:#9c6500}.put{color:#6d3fa9}.delete{color:#b4231a} code{background:#f2f4f8;padding:0 .25rem;border-radius:3px}
.meta{color:#5b6475;font-size:13px} pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:12px}
</style></head><body>
<h1>chat-server API</h1><p id="desc"></p><p>The machine-readable document: <a href="/v1/openapi.json">/v1/openapi.json</a>.</p>
<div id="ops">Loading…</div>
<script>
fetch('/v1/openapi.json').then(r=>r.json()).then(doc=>{
  document.getElementById('desc').textContent=doc.info.description;
  const ops=document.getElementById('ops'); ops.textContent='';
  for(const [path,methods] of Object.entries(doc.paths)){
    for(const [method,op] of Object.entries(methods)){
      const d=document.createElement('details'); d.className='op';
      const s=document.createElement('summary');
      s.innerHTML='<span class="m '+method+'">'+method.toUpperCase()+'</span> <code></code> <span class="meta"></span>';
      s.querySelector('code').textContent=path; s.querySelector('.meta').textContent=op.summary;
      d.appendChild(s);
      const pre=document.createElement('pre'); pre.textContent=JSON.stringify(op,null,2); d.appendChild(pre);
      ops.appendChild(d);
    }
  }
});
</script></body></html>"#;
