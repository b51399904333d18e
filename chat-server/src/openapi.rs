//! The OpenAPI 3.1 document, generated from the endpoint table so that an endpoint cannot exist
//! without being documented (and the test in `tests/openapi.rs` checks the reverse).

use serde_json::{Map, Value, json};

use crate::endpoints::{Access, ENDPOINTS};

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
            "responses": responses(endpoint.status, endpoint.response),
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
        parameters.extend(endpoint.query.iter().map(|name| json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" } })));
        if !parameters.is_empty() {
            op["parameters"] = Value::Array(parameters);
        }
        if let Some(schema) = endpoint.request {
            // Uploads are forms; every other body is JSON.
            let media = if schema == "FileUpload" {
                "multipart/form-data"
            } else {
                "application/json"
            };
            op["requestBody"] = json!({
                "required": true,
                "content": { media: { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
            });
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
            "description": "Customer-support chat: conversations, messages, routing, staff. Every error is {\"error\": {\"code\", \"message\", \"field\"?}} with codes: malformed_json, bad_request, invalid_id (400), unauthorized (401), forbidden (403), not_found (404), method_not_allowed (405), version_conflict (409, with current_version), duplicate, conflict, invalid_transition (409), payload_too_large (413), unsupported_media_type (415), validation_failed (422, names the field), rate_limited (429, Retry-After), bot_failed (502), storage_busy (503, Retry-After), storage_full, storage_read_only, storage_corrupt, unavailable (503), bot_timeout (504)."
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

fn responses(status: u16, response: Option<&str>) -> Value {
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
        Some("object") => {
            json!({ "description": "OK", "content": { "application/json": { "schema": { "type": "object" } } } })
        }
        Some(name) => {
            json!({ "description": "OK", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } } } })
        }
    };
    json!({ status.to_string(): success, "default": error })
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
    all
}

/// The reports (`/v1/reports/...`); see `chat_core::report` for what each figure counts.
fn report_schemas() -> Value {
    let count = json!({ "type": "integer", "minimum": 0 });
    let array_of = |schema: &str| json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{schema}") } });
    let secs =
        json!({ "type": ["number", "null"], "description": "seconds; null without samples" });
    let durations = object(
        &["count", "median_secs", "p90_secs"],
        json!({ "count": count, "median_secs": secs, "p90_secs": secs }),
    );
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
        "Durations": durations,
        "Csat": object(&["count", "average", "distribution"], json!({
            "count": count,
            "average": { "type": ["number", "null"] },
            "distribution": { "type": "array", "minItems": 5, "maxItems": 5, "items": count, "description": "how many ratings gave 1, 2, 3, 4 and 5" } })),
        "ReportRow": object(&["key", "opened", "closed", "reopened", "first_response", "resolution", "csat"], json!({
            "key": { "type": ["string", "null"], "description": "agent id, department, channel or tag; null: the totals, or no agent or department" },
            "opened": { "type": "integer", "description": "conversations created in the period" },
            "closed": { "type": "integer", "description": "conversations whose current close is in the period" },
            "reopened": { "type": "integer", "description": "reopens in the period" },
            "first_response": { "$ref": "#/components/schemas/Durations", "description": "first agent reply minus creation, over the conversations opened" },
            "resolution": { "$ref": "#/components/schemas/Durations", "description": "close minus creation, over the conversations closed" },
            "csat": { "$ref": "#/components/schemas/Csat", "description": "ratings given in the period" } })),
        "ReportOverview": with(&["totals"], json!({ "totals": { "$ref": "#/components/schemas/ReportRow" } })),
        "ReportBreakdown": with(&["by", "rows"], json!({
            "by": { "type": "string", "enum": ["agent", "department", "channel", "tag"] },
            "rows": array_of("ReportRow") })),
        "SeriesPoint": object(&["start", "opened", "closed", "reopened"], json!({
            "start": { "type": "string", "format": "date-time", "description": "start of the local hour or day, with the zone's offset" },
            "opened": count, "closed": count, "reopened": count })),
        "ReportSeries": with(&["interval", "points"], json!({
            "interval": { "type": "string", "enum": ["hour", "day"] },
            "points": array_of("SeriesPoint") })),
        "Feedback": object(&["conversation_id", "agent_id", "score", "feedback", "rated_at"], json!({
            "conversation_id": { "type": "string", "format": "uuid" },
            "agent_id": { "type": ["string", "null"], "format": "uuid" },
            "score": { "type": "integer", "minimum": 1, "maximum": 5 },
            "feedback": { "type": "string" },
            "rated_at": { "type": "string", "format": "date-time" } })),
        "ReportFeedback": with(&["items"], json!({ "items": array_of("Feedback") })),
        "Transcript": object(&["conversation", "messages", "truncated"], json!({
            "conversation": { "$ref": "#/components/schemas/Conversation" },
            "messages": { "type": "array", "items": { "$ref": "#/components/schemas/Message" } },
            "truncated": { "type": "boolean", "description": "more than 10,000 messages: only the first are here" } })),
    })
}

/// The desk's configuration and daily tools: settings, business hours, canned responses,
/// mentions, snooze.
fn desk_schemas() -> Value {
    let settings = json!({
        "welcome_message": { "type": ["string", "null"], "maxLength": 2000, "description": "Posted by the bot when a conversation opens." },
        "bot_enabled": { "type": "boolean", "description": "New conversations start with the bot (else straight in the queue)." },
        "allow_reopen": { "type": "boolean", "description": "A customer writing to a closed conversation reopens it." },
        "edit_window_secs": { "type": "integer", "minimum": 0, "maximum": 86400 },
        "default_capacity": { "type": "integer", "minimum": 1, "maximum": 1000 },
        "auto_assign": { "type": "boolean" },
        "requeue_after_secs": { "type": ["integer", "null"], "minimum": 10, "maximum": 2592000, "description": "Requeue when the agent has not answered in time; null = off." },
        "close_inactive_after_secs": { "type": ["integer", "null"], "minimum": 10, "maximum": 2592000, "description": "Close after customer silence; null = off." },
        "average_handle_secs": { "type": "integer", "minimum": 1, "maximum": 86400 },
        "upload_max_bytes": { "type": "integer", "minimum": 1, "maximum": 1073741824, "description": "Largest attachment; the server's own limit still caps it." },
        "upload_max_files": { "type": "integer", "minimum": 1, "maximum": 100, "description": "Most files in one upload." },
        "upload_allowed_types": { "type": "array", "maxItems": 64, "items": { "type": "string" }, "description": "Types as decided from the bytes (image/png, application/pdf, text/plain ...); a trailing * matches a family (image/*). Empty accepts every recognised type." },
        "contact_attributes": { "type": "object", "maxProperties": 100, "additionalProperties": { "type": "string", "enum": ["text", "number", "boolean", "date"] }, "description": "Declared contact attributes: a contact's metadata value of another type is 422." },
        "business_hours": {
            "oneOf": [{ "type": "null" }, { "$ref": "#/components/schemas/BusinessHours" }],
            "description": "null (the default): always open. Outside the hours a visitor's new conversation gets the offline message, the answer says `offline: true`, and it waits in the queue, unrouted, until the next opening. A schedule that does not check (unknown zone, bad time, from >= to, overlapping ranges, bad date) is 422 on `business_hours` with the reason."
        }
    });
    let ranges = json!({ "type": "array", "maxItems": 24, "items": { "$ref": "#/components/schemas/OpenRange" } });
    let hhmm = json!({ "type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$" });
    let uuid = json!({ "type": "string", "format": "uuid" });
    let time = json!({ "type": "string", "format": "date-time" });
    let placeholders = format!(
        "Text; `{{{{placeholder}}}}`s are filled when posted: {}. Any other is 422.",
        chat_core::PLACEHOLDERS.join(", ")
    );
    let shortcut = json!({ "type": "string", "maxLength": 32, "pattern": "^/?[\\p{L}\\p{N}_-]+$", "description": "Stored lower-case, without a leading `/`." });
    json!({
        "CannedResponse": object(&["id", "tenant_id", "owner_id", "shortcut", "title", "body", "created_at", "updated_at"], json!({
            "id": uuid, "tenant_id": uuid, "owner_id": { "type": ["string", "null"], "format": "uuid", "description": "null for a shared response" },
            "shortcut": shortcut, "title": { "type": "string" }, "body": { "type": "string", "description": placeholders },
            "created_at": time, "updated_at": time,
            "preview": { "type": "string", "description": "In a list with `conversation_id`: the text it would post there." } })),
        "CannedResponseList": list_of("CannedResponse"),
        "NewCannedResponse": object(&["shortcut", "title", "body"], json!({ "shared": { "type": "boolean", "default": false, "description": "admins only" },
            "shortcut": shortcut, "title": { "type": "string", "maxLength": 200 }, "body": { "type": "string", "description": placeholders } })),
        "CannedResponsePatch": object(&[], json!({ "shortcut": shortcut, "title": { "type": "string", "maxLength": 200 }, "body": { "type": "string" } })),
        "PostCannedRequest": object(&["canned_response_id"], json!({ "canned_response_id": uuid, "client_message_id": { "type": "string" } })),
        "SnoozeRequest": object(&[], json!({ "until": { "type": ["string", "null"], "format": "date-time", "description": "absent or null: until the customer's next message" } })),
        "Snooze": object(&["until", "by", "at"], json!({ "until": { "type": ["string", "null"], "format": "date-time" }, "by": { "type": ["string", "null"], "format": "uuid" }, "at": time })),
        "Mention": object(&["tenant_id", "agent_id", "conversation_id", "message_id", "by", "at", "read_at"], json!({
            "tenant_id": uuid, "agent_id": uuid, "conversation_id": uuid, "message_id": uuid,
            "by": { "type": "string", "format": "uuid", "description": "the note's author" }, "at": time,
            "read_at": { "type": ["string", "null"], "format": "date-time" } })),
        "MentionList": object(&["unread", "items"], json!({ "unread": { "type": "integer" }, "items": { "type": "array", "items": { "$ref": "#/components/schemas/Mention" } } })),
        "MentionsRead": object(&["read", "unread"], json!({ "read": { "type": "integer", "description": "how many were unread" }, "unread": { "const": 0 } })),
        "OpenRange": {
            "type": "object", "required": ["from", "to"], "additionalProperties": false,
            "properties": { "from": hhmm, "to": hhmm },
            "description": "Local time, from (inclusive) before to (exclusive; 24:00 is the end of the day). A range across midnight is two ranges."
        },
        "BusinessHours": {
            "type": "object", "required": ["time_zone"], "additionalProperties": false,
            "properties": {
                "time_zone": { "type": "string", "description": "IANA name, e.g. Europe/Berlin (the tz database is bundled)." },
                "weekly": {
                    "type": "object", "additionalProperties": false,
                    "properties": { "mon": ranges, "tue": ranges, "wed": ranges, "thu": ranges, "fri": ranges, "sat": ranges, "sun": ranges },
                    "description": "Opening ranges per weekday in local wall-clock time; a missing or empty day is closed."
                },
                "holidays": { "type": "array", "maxItems": 1000, "items": { "type": "string", "format": "date" }, "description": "Local dates closed all day." },
                "offline_message": { "type": ["string", "null"], "maxLength": 2000, "description": "Posted by the bot to a visitor opening a conversation while closed." }
            }
        },
        "Widget": object(&["tenant_id", "open", "next_opening", "offline_message", "welcome_message"], json!({
            "tenant_id": uuid,
            "open": { "type": "boolean", "description": "Open now by the business hours (always true without them)." },
            "next_opening": { "type": ["string", "null"], "format": "date-time", "description": "While closed: when it opens next; null while open or if the schedule never opens." },
            "offline_message": { "type": ["string", "null"] },
            "welcome_message": { "type": ["string", "null"] } })),
        "TenantSettings": object(&[], settings.clone()),
        "TenantSettingsPatch": {
            "type": "object", "additionalProperties": false, "properties": settings,
            "description": "Only the settings to change. An unknown setting, a wrong type or a value out of range is 422 naming it, and nothing changes."
        },
    })
}

fn core_schemas() -> Value {
    let uuid = json!({ "type": "string", "format": "uuid" });
    let time = json!({ "type": "string", "format": "date-time" });
    let mode = json!({ "type": "string", "enum": ["bot", "queued", "agent", "paused", "closed", "archived"] });
    let priority = json!({ "type": "string", "enum": ["low", "medium", "high", "urgent"] });
    let channel = json!({ "type": "string", "enum": ["web", "whatsapp", "telegram", "email", "sms", "api", "other"] });
    let role = json!({ "type": "string", "enum": ["admin", "supervisor", "agent"] });
    let availability = json!({ "type": "string", "enum": ["online", "away", "offline"] });
    let sender = object(
        &["type"],
        json!({ "type": { "type": "string", "enum": ["customer", "agent", "bot", "system"] }, "id": uuid }),
    );
    let contact_input = object(
        &[],
        json!({
            "name": { "type": "string" }, "email": { "type": "string" }, "phone": { "type": "string" },
            "address": { "type": "string" }, "external_id": { "type": "string" },
            "metadata": { "type": "object", "additionalProperties": { "type": "string" } }
        }),
    );
    json!({
        "Error": object(&["error"], json!({ "error": object(&["code", "message"], json!({
            "code": { "type": "string" }, "message": { "type": "string" }, "field": { "type": "string" },
            "current_version": { "type": "integer", "description": "With version_conflict: the version stored now." }
        })) })),
        "Health": object(&["status"], json!({ "status": { "type": "string" } })),
        "LoginRequest": object(&["email", "password"], json!({ "email": { "type": "string" }, "password": { "type": "string" }, "tenant_id": uuid })),
        "LoginResponse": object(&["access_token", "token_type", "expires_in", "agent"], json!({
            "access_token": { "type": "string" }, "token_type": { "const": "Bearer" }, "expires_in": { "type": "integer" },
            "agent": { "$ref": "#/components/schemas/Agent" }
        })),
        "Me": object(&["kind", "tenant_id"], json!({ "kind": { "type": "string", "enum": ["staff", "customer", "system"] }, "tenant_id": uuid,
            "agent": { "$ref": "#/components/schemas/Agent" }, "contact_id": uuid, "conversation_id": uuid })),
        "ContactInput": contact_input,
        "Contact": object(&["id", "tenant_id", "created_at"], json!({ "id": uuid, "tenant_id": uuid, "name": { "type": "string" },
            "email": { "type": "string", "description": "A claim typed by the visitor unless `email_verified`." },
            "email_verified": { "type": "boolean", "description": "Proven by a signed identity or a staff merge; only a verified e-mail finds this contact again." },
            "phone": { "type": "string", "description": "Always a claim." }, "address": { "type": "string" }, "external_id": { "type": "string" },
            "metadata": { "type": "object" }, "created_at": time, "updated_at": time })),
        "ContactPatch": object(&[], json!({ "name": { "type": "string" }, "email": { "type": "string" }, "phone": { "type": "string" },
            "address": { "type": "string" }, "metadata": { "type": "object", "additionalProperties": { "type": "string" } } })),
        "MergeContactRequest": object(&["contact_id"], json!({ "contact_id": uuid })),
        "SignUpRequest": object(&["username", "password"], json!({ "username": { "type": "string", "maxLength": 64 },
            "password": { "type": "string" }, "email": { "type": "string" }, "name": { "type": "string" }, "tenant_id": uuid })),
        "AccountLoginRequest": object(&["username", "password"], json!({ "username": { "type": "string" }, "password": { "type": "string" }, "tenant_id": uuid })),
        "AccountPasswordRequest": object(&["current_password", "new_password"], json!({ "current_password": { "type": "string" }, "new_password": { "type": "string" } })),
        "AccountPatch": object(&["disabled"], json!({ "disabled": { "type": "boolean" } })),
        "Account": object(&["tenant_id", "contact_id", "username", "disabled", "created_at", "updated_at"], json!({
            "tenant_id": uuid, "contact_id": uuid, "username": { "type": "string" }, "email": { "type": ["string", "null"] },
            "disabled": { "type": "boolean" }, "created_at": time, "updated_at": time })),
        "AccountSession": object(&["account", "contact", "visitor_token"], json!({
            "account": { "$ref": "#/components/schemas/Account" }, "contact": { "$ref": "#/components/schemas/Contact" },
            "visitor_token": { "type": "string" } })),
        "VisitorTokenAnswer": object(&["visitor_token"], json!({ "visitor_token": { "type": "string" } })),
        "OpenConversationRequest": object(&[], json!({
            "tenant_id": uuid, "contact": { "$ref": "#/components/schemas/ContactInput" }, "channel": channel,
            "title": { "type": "string" }, "department": { "type": "string" }, "priority": priority,
            "first_message": { "type": "string" }, "metadata": { "type": "object" },
            "identity": object(&["email", "timestamp", "signature"], json!({ "email": { "type": "string" }, "timestamp": { "type": "integer" },
                "signature": { "type": "string", "description": "hex HMAC-SHA256 of `email:timestamp` under the identity secret" } }))
        })),
        "OpenedConversation": object(&["conversation", "contact", "messages", "offline"], json!({
            "conversation": { "$ref": "#/components/schemas/Conversation" }, "contact": { "$ref": "#/components/schemas/Contact" },
            "messages": { "type": "array", "items": { "$ref": "#/components/schemas/Message" } },
            "visitor_token": { "type": "string", "description": "Only for anonymous callers: the bearer token for this conversation." },
            "offline": { "type": "boolean", "description": "The desk was closed (business hours) at the opening: the conversation waits, unrouted, for the next opening." }
        })),
        "Conversation": object(&["id", "mode", "channel", "created_at", "updated_at"], json!({
            "id": uuid, "tenant_id": uuid, "contact_id": uuid, "channel": channel, "title": { "type": ["string", "null"] },
            "mode": mode, "priority": priority, "department": { "type": ["string", "null"] }, "tags": { "type": "array", "items": { "type": "string" } },
            "pinned": { "type": "boolean" }, "assigned_agent_id": { "type": ["string", "null"], "format": "uuid" },
            "snooze": { "$ref": "#/components/schemas/Snooze", "description": "Staff only; absent unless snoozed." },
            "participants": { "type": "array", "items": uuid },
            "rating": object(&["score"], json!({ "score": { "type": "integer", "minimum": 1, "maximum": 5 }, "feedback": { "type": ["string", "null"] }, "rated_at": time })),
            "message_count": { "type": "integer" }, "unread_for_agent": { "type": "integer" }, "unread_for_customer": { "type": "integer" },
            "last_message": object(&[], json!({ "sender": sender, "body": { "type": "string" }, "at": time })),
            "last_seq": { "type": "integer" }, "created_at": time, "updated_at": time, "queued_at": time, "assigned_at": time,
            "first_response_at": time, "last_message_at": time, "closed_at": time, "version": { "type": "integer" }
        })),
        "ConversationList": list_of("Conversation"),
        "ConversationPage": object(&["items", "next_cursor", "counts"], json!({
            "items": { "type": "array", "items": { "$ref": "#/components/schemas/Conversation" } },
            "next_cursor": { "type": ["string", "null"] },
            "counts": { "type": "object", "additionalProperties": { "type": "integer" }, "description": "conversations per mode matching the filters other than mode" }
        })),
        "ConversationPatch": object(&[], json!({ "priority": priority, "department": { "type": ["string", "null"] },
            "tags": { "type": "array", "items": { "type": "string" } }, "add_tags": { "type": "array", "items": { "type": "string" } },
            "remove_tags": { "type": "array", "items": { "type": "string" } }, "pinned": { "type": "boolean" }, "title": { "type": ["string", "null"] },
            "add_participants": { "type": "array", "items": uuid }, "remove_participants": { "type": "array", "items": uuid } })),
        "Message": object(&["id", "conversation_id", "seq", "sender", "kind", "body", "created_at"], json!({
            "id": uuid, "conversation_id": uuid, "seq": { "type": "integer" }, "sender": sender,
            "kind": { "type": "string", "enum": ["text", "image", "audio", "file", "note", "event"] }, "body": { "type": "string" },
            "attachments": { "type": "array", "items": { "$ref": "#/components/schemas/Attachment" } }, "reply_to": { "type": ["string", "null"] },
            "client_message_id": { "type": ["string", "null"] }, "entities": { "type": "array" }, "metadata": { "type": "object" },
            "revisions": { "type": "array" }, "created_at": time, "edited_at": time, "deleted_at": time
        })),
        "Attachment": object(&["key", "name", "content_type", "size"], json!({ "key": { "type": "string" }, "name": { "type": "string" },
            "content_type": { "type": "string" }, "size": { "type": "integer" } })),
        "MessageList": list_of("Message"),
        "PostMessageRequest": object(&["body"], json!({ "body": { "type": "string", "maxLength": 10000 }, "kind": { "type": "string" },
            "attachments": { "type": "array", "items": { "$ref": "#/components/schemas/Attachment" } }, "reply_to": uuid,
            "client_message_id": { "type": "string" }, "entities": { "type": "array" }, "metadata": { "type": "object" } })),
        "PostedMessage": object(&["message", "created", "replies", "conversation"], json!({ "message": { "$ref": "#/components/schemas/Message" },
            "created": { "type": "boolean" }, "replies": { "type": "array", "items": { "$ref": "#/components/schemas/Message" } },
            "conversation": { "$ref": "#/components/schemas/Conversation" } })),
        "NoteRequest": object(&[], json!({ "body": { "type": "string", "description": "Required unless files are attached." },
            "attachments": { "type": "array", "items": { "$ref": "#/components/schemas/Attachment" }, "description": "Files uploaded with `purpose=note`." } })),
        "FileUpload": object(&[], json!({
            "file": { "type": "array", "items": { "type": "string", "format": "binary" }, "description": "One part per file (any field name with a filename). The declared name is kept (cleaned); the declared type is ignored." } })),
        "AttachmentList": list_of("Attachment"),
        "ContactPage": object(&["items", "next_cursor"], json!({ "items": { "type": "array", "items": { "$ref": "#/components/schemas/Contact" } },
            "next_cursor": { "type": ["string", "null"], "format": "uuid", "description": "The `cursor` of the next page; null on the last." } })),
        "EditMessageRequest": object(&["body"], json!({ "body": { "type": "string" } })),
        "ReadRequest": object(&["seq"], json!({ "seq": { "type": "integer", "minimum": 0 } })),
        "ReadCursorList": list_of("ReadCursor"),
        "ReadCursor": object(&["reader", "seq"], json!({ "conversation_id": uuid, "reader": object(&["type"], json!({ "type": { "type": "string" }, "id": uuid })), "seq": { "type": "integer" }, "updated_at": time })),
        "HandoffRequest": object(&[], json!({ "department": { "type": "string" }, "reason": { "type": "string" } })),
        "AssignRequest": object(&["agent_id"], json!({ "agent_id": uuid })),
        "TransferRequest": object(&[], json!({ "agent_id": uuid, "department": { "type": "string" }, "reason": { "type": "string" } })),
        "ModeRequest": object(&["mode"], json!({ "mode": mode })),
        "RatingRequest": object(&["score"], json!({ "score": { "type": "integer", "minimum": 1, "maximum": 5 }, "feedback": { "type": "string" } })),
        "CloseRequest": object(&[], json!({ "rating": { "$ref": "#/components/schemas/RatingRequest" } })),
        "Agent": object(&["id", "name", "email", "role", "availability"], json!({ "id": uuid, "tenant_id": uuid, "name": { "type": "string" },
            "email": { "type": "string" }, "role": role, "availability": availability, "capacity": { "type": ["integer", "null"] },
            "departments": { "type": "array", "items": { "type": "string" } }, "active": { "type": "boolean" }, "created_at": time, "updated_at": time })),
        "AgentList": list_of("Agent"),
        "CreateAgentRequest": object(&["name", "email", "role", "password"], json!({ "name": { "type": "string" }, "email": { "type": "string" },
            "role": role, "password": { "type": "string", "minLength": 10 }, "capacity": { "type": "integer" }, "departments": { "type": "array", "items": { "type": "string" } } })),
        "AgentPatch": object(&[], json!({ "name": { "type": "string" }, "role": role, "capacity": { "type": ["integer", "null"] },
            "departments": { "type": "array", "items": { "type": "string" } }, "active": { "type": "boolean" }, "password": { "type": "string", "minLength": 10 },
            "current_password": { "type": "string", "description": "required to change one's own password" } })),
        "QueuePosition": object(&["position", "estimated_wait_secs"], json!({ "position": { "type": ["integer", "null"], "minimum": 1 },
            "estimated_wait_secs": { "type": ["integer", "null"], "description": "null while no agent who could take it is online" } })),
        "BotTokenRequest": object(&["name"], json!({ "name": { "type": "string" },
            "expires_in_secs": { "type": "integer", "minimum": 60, "description": "refused after this many seconds; never expires when absent" } })),
        "BotToken": object(&["id", "token", "name", "created_at", "expires_at"], json!({ "id": { "type": "string", "description": "handle for listing and revoking" },
            "token": { "type": "string", "description": "bt_...; shown only now" }, "name": { "type": "string" }, "created_at": time, "expires_at": { "type": ["string", "null"], "format": "date-time" } })),
        "BotTokenInfo": object(&["id", "name", "created_at", "expires_at", "last_used_at"], json!({ "id": { "type": "string" }, "name": { "type": "string" }, "created_at": time,
            "expires_at": { "type": ["string", "null"], "format": "date-time" }, "last_used_at": { "type": ["string", "null"], "format": "date-time", "description": "to the minute" } })),
        "BotTokenList": list_of("BotTokenInfo"),
        "AvailabilityRequest": object(&["availability"], json!({ "availability": availability })),
        "EventList": object(&["items", "next_since", "more", "head", "resync_required"], json!({ "items": { "type": "array", "items": { "$ref": "#/components/schemas/Event" } }, "next_since": { "type": "integer" }, "more": { "type": "boolean" },
            "head": { "type": "integer", "description": "The newest event's seq when the page was read." },
            "resync_required": { "type": "boolean", "description": "`since` is beyond `head`: the cursor comes from another database (a restore, a wiped server); reload, then continue from `head`." } })),
        "Event": object(&["seq", "at", "payload"], json!({ "seq": { "type": "integer" }, "tenant_id": uuid, "conversation_id": { "type": ["string", "null"] },
            "staff_only": { "type": "boolean" }, "at": time, "payload": object(&["type"], json!({ "type": { "type": "string",
            "enum": ["conversation_created", "conversation_updated", "conversation_deleted", "message_created", "message_updated", "read_updated", "agent_updated", "contact_merged", "settings_updated", "mentioned"] } })) })),
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
