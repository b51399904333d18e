//! The OpenAPI 3.1 document, generated from the endpoint table so that an endpoint cannot exist
//! without being documented (and the test in `tests/suite/openapi.rs` checks the reverse).
//!
//! Where each part comes from:
//! - **Query parameters**: [`crate::api::query`], the definitions the handlers read them by
//!   (`tests/suite/openapi.rs` plays each documented bound against a live server).
//! - **Component schemas**: derived with `utoipa::ToSchema` from the types the server parses
//!   and answers (`derived`; the request bodies, the answers the server serializes from a
//!   type of its own, and every `{"items": [...]}` list through [`crate::api::Items`]), with
//!   `#[schema(...)]` attributes for their rules and `rules` (and `chat_core::openapi`)
//!   for the rules attributes cannot say (a list's item rules, a subset of an enum's words).
//! - **Still written here**, and why:
//!   - The `oneOf` of `TransferRequest` (derived otherwise): "exactly one of `agent_id`
//!     and `department`" is a rule between fields, which a derive cannot state
//!     (`rules::one_transfer_target`).
//!   - `FileUpload`, and the form of `InboundMessage`: multipart forms, not serde types.
//!   - `RawEmail`: a whole RFC 5322 message, read by the mail parser, not serde.
//!   - `TenantSettingsPatch`: the derived `TenantSettings` closed to unknown fields, plus
//!     the upload types and limits the derive cannot say (`settings_schemas`).
//!
//! Every other schema, answers included (`Me`, `OpenedConversation`, `ConversationPage`,
//! `EventList`, `Transcript`, the `Report*` answers, the inbox family), is serialized from
//! the type it is derived from; `tests/suite/openapi_answers.rs` validates real answers against
//! them. The providers' formats (`TelegramUpdate`, `WhatsappNotification`) are derived
//! from the types `crate::channels` reads them into: the fields read, the rest accepted
//! and ignored (left open).

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
        if endpoint.id == Endpoint::OpenConversation {
            op["responses"]["201"]["links"] = opened_links();
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

/// The links of a just-opened conversation: every operation on it (a path under
/// `/v1/conversations/{id}` with no other parameter) takes the answer's `conversation.id`,
/// and its contact's operations `contact.id`. Stated, so clients and fuzzers do not have
/// to guess which of the answer's ids a path takes.
fn opened_links() -> Value {
    let mut links = Map::new();
    for endpoint in ENDPOINTS {
        let (source, rest) =
            if let Some(rest) = endpoint.path.strip_prefix("/v1/conversations/{id}") {
                ("$response.body#/conversation/id", rest)
            } else if let Some(rest) = endpoint.path.strip_prefix("/v1/contacts/{id}") {
                // Erasing or merging the contact would remove or move the conversation: no
                // link from the opening (schemathesis cannot tell such a removal from a lost
                // resource; see tests/suite/schemathesis.rs).
                if rest == "/erase" || rest == "/merge" {
                    continue;
                }
                ("$response.body#/contact/id", rest)
            } else {
                continue;
            };
        if rest.contains('{') || (!rest.is_empty() && !rest.starts_with('/')) {
            continue;
        }
        links.insert(
            format!("{:?}", endpoint.id),
            json!({
                "operationId": format!("{:?}", endpoint.id),
                "parameters": { "id": source },
            }),
        );
    }
    Value::Object(links)
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

fn schemas() -> Value {
    let mut all = form_schemas();
    let map = all.as_object_mut().expect("schemas are an object");
    map.extend(
        mail_schemas()
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
    rules::one_transfer_target(&mut all["TransferRequest"]);
    all
}

/// Every JSON request body is read with `deny_unknown_fields`: an unknown field is 422
/// naming it, so the documented bodies admit no other field.
fn close_request_bodies(schemas: &mut Value) {
    for endpoint in ENDPOINTS {
        let Some(name) = endpoint.request else {
            continue;
        };
        // An upload takes a file part under any name; a mail is no JSON; the providers'
        // formats are read in part (the rest is accepted and ignored).
        if matches!(
            name,
            "FileUpload" | "RawEmail" | "TelegramUpdate" | "WhatsappNotification"
        ) {
            continue;
        }
        if let Some(schema) = schemas.get_mut(name).and_then(Value::as_object_mut) {
            schema
                .entry("additionalProperties")
                .or_insert(Value::Bool(false));
        }
    }
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

/// What mail servers send: a mail, not JSON.
fn mail_schemas() -> Value {
    json!({
        "RawEmail": { "type": "string", "format": "binary", "maxLength": 26214400,
            "description": "A whole RFC 5322 message as the MTA received it (headers, blank line, MIME body), at most 25 MiB. Read: the first `From` address (required) and display name, `Message-ID` (the idempotency key; absent, the SHA-256 of the bytes), `In-Reply-To` and `References` (threading), `Subject`, the `text/plain` part (else the HTML part as text), and the attachments." },
    })
}

/// The upload form: multipart, not a serde type.
fn form_schemas() -> Value {
    json!({
        "FileUpload": {
            "type": "object", "required": ["file"], "additionalProperties": { "type": "string", "format": "binary" },
            "properties": {
            "file": { "type": "array", "minItems": 1, "items": { "type": "string", "format": "binary" }, "description": "One part per file (any field name with a filename). The declared name is kept (cleaned); the declared type is ignored." } } },
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
