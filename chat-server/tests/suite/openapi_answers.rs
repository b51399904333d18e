//! The document matches the wire: a desk's day is played against a real server, and every
//! JSON answer is validated (formats included) against the schema the served
//! `/v1/openapi.json` documents for its route and status. At the end every answer schema
//! of the endpoint table must have been met at least once, except the few listed in
//! [`NOT_PLAYED`] with the reason.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use chat_core::Role;
use chat_server::endpoints::ENDPOINTS;
use chat_server::testing::{Reply, multipart};
use hyper::Method;
use serde_json::{Value, json};

/// Answer schemas this test does not reach, and why.
const NOT_PLAYED: &[(&str, &str)] = &[
    // Need a Telegram Bot API / WhatsApp Cloud API double and signed posts: tests/suite/telegram.rs
    // and tests/suite/whatsapp.rs play them against local servers of those wire formats.
    ("TelegramReceived", "tests/suite/telegram.rs"),
    ("WhatsappReceived", "tests/suite/whatsapp.rs"),
    // A delivery exists only once a webhook's outbox has an event for a reachable URL:
    // tests/suite/webhooks.rs.
    ("Delivery", "tests/suite/webhooks.rs"),
];

/// The served document, and the answer schemas met so far.
struct Wire {
    doc: Value,
    met: BTreeSet<String>,
    validators: BTreeMap<String, jsonschema::Validator>,
}

impl Wire {
    async fn new(s: &common::Server) -> Self {
        let doc = s.get("/v1/openapi.json", None).await;
        assert_eq!(doc.status, 200);
        Wire {
            doc: doc.body,
            met: BTreeSet::new(),
            validators: BTreeMap::new(),
        }
    }

    /// Calls `method path` (`template` is its row in the endpoint table), expects the
    /// endpoint's success status, and validates a JSON answer against its documented
    /// schema. Returns the answer's body.
    async fn call(
        &mut self,
        s: &common::Server,
        method: Method,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let reply = s.call(method.clone(), path, token, body).await;
        self.check(method, template, path, reply)
    }

    /// Validates `reply`, the answer to `method path`, as [`call`](Self::call) does.
    fn check(&mut self, method: Method, template: &str, path: &str, reply: Reply) -> Value {
        let spec = ENDPOINTS
            .iter()
            .find(|e| e.method == method && e.path == template)
            .unwrap_or_else(|| panic!("{method} {template} is not in the endpoint table"));
        let status = reply.status.as_u16();
        assert!(
            status == spec.status || status == 200 && spec.status == 201,
            "{method} {path}: {status} {}",
            reply.text
        );
        let documented = &self.doc["paths"][template][method.as_str().to_lowercase()]["responses"]
            [status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {template} answers {status}, undocumented"
        );
        let Some(schema) = documented["content"]["application/json"]["schema"].as_object() else {
            return reply.body;
        };
        let name = schema["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .map(str::to_owned);
        if let Some(name) = name {
            let errors: Vec<String> = self
                .validator(&name)
                .iter_errors(&reply.body)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{method} {path}: the answer breaks schema {name}:\n{}\n{}",
                errors.join("\n"),
                serde_json::to_string_pretty(&reply.body).unwrap()
            );
            self.met.insert(name);
        }
        reply.body
    }
}

impl Wire {
    /// The validator of the component schema `name`, compiled once.
    fn validator(&mut self, name: &str) -> &jsonschema::Validator {
        let components = &self.doc["components"];
        self.validators.entry(name.to_owned()).or_insert_with(|| {
            let root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$ref": format!("#/components/schemas/{name}"),
                "components": components,
            });
            jsonschema::options()
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("schema {name} compiles: {e}"))
        })
    }

    fn valid(&mut self, name: &str, value: &Value) -> bool {
        self.validator(name).is_valid(value)
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

#[tokio::test]
async fn every_answer_validates_against_its_documented_schema() {
    // A relay of the test's own, so a transcript can be mailed and the mail log read.
    let relay = common::smtp::SmtpReceiver::start().await;
    let relay_url = relay.url();
    let s = common::start_with(|c| {
        c.webhooks.allow_private = true;
        c.mail = chat_server::mail::MailConfig {
            relay: Some(chat_server::mail::SmtpRelay::parse(&relay_url).unwrap()),
            from: Some("Acme Support <support@acme.example>".parse().unwrap()),
            ..chat_server::mail::MailConfig::default()
        };
    })
    .await;
    let admin = s.staff("Ada", Role::Admin, &["billing"]).await;
    let agent = s.staff("Bob", Role::Agent, &["billing"]).await;
    let mut w = Wire::new(&s).await;
    let a = Some(admin.token.as_str());
    let b = Some(agent.token.as_str());
    use Method as M;

    w.call(&s, M::GET, "/healthz", "/healthz", None, None).await;
    w.call(&s, M::GET, "/readyz", "/readyz", None, None).await;
    w.call(&s, M::GET, "/v1/widget", "/v1/widget", None, None)
        .await;
    w.call(&s, M::GET, "/v1/me", "/v1/me", a, None).await;

    // A visitor opens a conversation and writes; staff see, answer, note, move it.
    let opened = w
        .call(
            &s,
            M::POST,
            "/v1/conversations",
            "/v1/conversations",
            None,
            Some(
                json!({ "contact": { "name": "Vera", "email": "vera@example.com" },
                "title": "Refund", "first_message": "Where is my refund?" }),
            ),
        )
        .await;
    let c = opened["conversation"]["id"].as_str().unwrap().to_owned();
    let contact = opened["contact"]["id"].as_str().unwrap().to_owned();
    let vt = opened["visitor_token"].as_str().unwrap().to_owned();
    let v = Some(vt.as_str());
    let conv = format!("/v1/conversations/{c}");
    w.call(&s, M::GET, "/v1/me", "/v1/me", v, None).await;
    let posted = w
        .call(
            &s,
            M::POST,
            "/v1/conversations/{id}/messages",
            &format!("{conv}/messages"),
            v,
            Some(json!({ "body": "order 1234, refund please", "client_message_id": "m-1",
                "entities": [{ "kind": "order", "id": "1234" }], "metadata": { "page": "/orders" } })),
        )
        .await;
    let customer_message = id(&posted["message"]);
    w.call(
        &s,
        M::POST,
        "/v1/conversations/{id}/handoff",
        &format!("{conv}/handoff"),
        v,
        Some(json!({ "department": "billing", "reason": "wants a human" })),
    )
    .await;
    w.call(
        &s,
        M::GET,
        "/v1/conversations/{id}/queue",
        &format!("{conv}/queue"),
        v,
        None,
    )
    .await;
    for token in [a, v] {
        w.call(&s, M::GET, "/v1/conversations/{id}", &conv, token, None)
            .await;
        w.call(
            &s,
            M::GET,
            "/v1/conversations",
            "/v1/conversations",
            token,
            None,
        )
        .await;
        w.call(
            &s,
            M::GET,
            "/v1/conversations/{id}/messages",
            &format!("{conv}/messages"),
            token,
            None,
        )
        .await;
        w.call(
            &s,
            M::GET,
            "/v1/contacts/{id}",
            &format!("/v1/contacts/{contact}"),
            token,
            None,
        )
        .await;
        w.call(&s, M::GET, "/v1/events", "/v1/events", token, None)
            .await;
    }
    w.call(
        &s,
        M::POST,
        "/v1/conversations/{id}/assign",
        &format!("{conv}/assign"),
        a,
        Some(json!({ "agent_id": agent.id.to_string() })),
    )
    .await;
    let answered = w
        .call(
            &s,
            M::POST,
            "/v1/conversations/{id}/messages",
            &format!("{conv}/messages"),
            b,
            Some(json!({ "body": "Looking into it", "reply_to": customer_message })),
        )
        .await;
    let reply_id = id(&answered["message"]);
    w.call(
        &s,
        M::PATCH,
        "/v1/messages/{id}",
        &format!("/v1/messages/{reply_id}"),
        b,
        Some(json!({ "body": "Looking into it now" })),
    )
    .await;
    w.call(
        &s,
        M::POST,
        "/v1/conversations/{id}/notes",
        &format!("{conv}/notes"),
        b,
        Some(json!({ "body": "@ada can you approve the refund?" })),
    )
    .await;
    w.call(
        &s,
        M::POST,
        "/v1/conversations/{id}/read",
        &format!("{conv}/read"),
        v,
        Some(json!({ "seq": 2 })),
    )
    .await;
    w.call(
        &s,
        M::GET,
        "/v1/conversations/{id}/read",
        &format!("{conv}/read"),
        b,
        None,
    )
    .await;
    w.call(
        &s,
        M::PATCH,
        "/v1/conversations/{id}",
        &conv,
        a,
        Some(json!({ "priority": "high", "add_tags": ["refund"], "pinned": true })),
    )
    .await;
    w.call(&s, M::GET, "/v1/mentions", "/v1/mentions", a, None)
        .await;
    w.call(
        &s,
        M::POST,
        "/v1/mentions/read",
        "/v1/mentions/read",
        a,
        None,
    )
    .await;
    // A search answers its hits.
    let found = w
        .call(
            &s,
            M::GET,
            "/v1/conversations",
            "/v1/conversations?text=refund",
            a,
            None,
        )
        .await;
    assert!(
        found["items"][0]["hits"]
            .as_array()
            .is_some_and(|h| !h.is_empty()),
        "{found}"
    );
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    w.call(
        &s,
        M::POST,
        "/v1/conversations/{id}/snooze",
        &format!("{conv}/snooze"),
        b,
        Some(json!({ "until": tomorrow })),
    )
    .await;
    w.call(&s, M::GET, "/v1/conversations/{id}", &conv, b, None)
        .await;
    w.call(
        &s,
        M::DELETE,
        "/v1/conversations/{id}/snooze",
        &format!("{conv}/snooze"),
        b,
        None,
    )
    .await;

    // Canned responses.
    let canned = w
        .call(
            &s,
            M::POST,
            "/v1/canned-responses",
            "/v1/canned-responses",
            a,
            Some(json!({ "shortcut": "refund", "title": "Refund", "body": "Hi {{contact.name}}, done.", "shared": true })),
        )
        .await;
    let canned_id = id(&canned);
    w.call(
        &s,
        M::GET,
        "/v1/canned-responses",
        &format!("/v1/canned-responses?conversation_id={c}"),
        b,
        None,
    )
    .await;
    w.call(
        &s,
        M::PATCH,
        "/v1/canned-responses/{id}",
        &format!("/v1/canned-responses/{canned_id}"),
        a,
        Some(json!({ "title": "Refund done" })),
    )
    .await;
    w.call(
        &s,
        M::GET,
        "/v1/canned-responses/{id}",
        &format!("/v1/canned-responses/{canned_id}"),
        b,
        None,
    )
    .await;
    w.call(
        &s,
        M::POST,
        "/v1/conversations/{id}/canned",
        &format!("{conv}/canned"),
        b,
        Some(json!({ "canned_response_id": canned_id })),
    )
    .await;

    // A file for a message, then the message, then its deletion.
    let (content_type, form) =
        multipart(&[], &[("file", "notes.txt", "text/plain", b"order 1234")]);
    let files = format!("{conv}/files");
    let uploaded = s
        .send_as(
            M::POST,
            &files,
            v,
            &[("content-type", content_type.as_str())],
            form,
        )
        .await;
    let attachments = w.check(M::POST, "/v1/conversations/{id}/files", &files, uploaded);
    let with_file = w
        .call(
            &s,
            M::POST,
            "/v1/conversations/{id}/messages",
            &format!("{conv}/messages"),
            v,
            Some(
                json!({ "body": "the file", "kind": "file", "attachments": attachments["items"] }),
            ),
        )
        .await;
    w.call(
        &s,
        M::DELETE,
        "/v1/messages/{id}",
        &format!("/v1/messages/{}", id(&with_file["message"])),
        v,
        None,
    )
    .await;

    // Transfer, close with a rating, transcript, reports.
    w.call(
        &s,
        M::POST,
        "/v1/conversations/{id}/transfer",
        &format!("{conv}/transfer"),
        a,
        Some(json!({ "agent_id": admin.id.to_string(), "reason": "approval" })),
    )
    .await;
    w.call(
        &s,
        M::POST,
        "/v1/conversations/{id}/close",
        &format!("{conv}/close"),
        v,
        Some(json!({ "rating": { "score": 5, "feedback": "quick" } })),
    )
    .await;
    w.call(
        &s,
        M::GET,
        "/v1/conversations/{id}/transcript",
        &format!("{conv}/transcript"),
        v,
        None,
    )
    .await;
    let today = time::OffsetDateTime::now_utc().date();
    let (yesterday, next_day) = (today.previous_day().unwrap(), today.next_day().unwrap());
    for (template, query) in [
        ("/v1/reports/overview", ""),
        ("/v1/reports/breakdown", "&by=agent"),
        ("/v1/reports/series", "&interval=day"),
        ("/v1/reports/feedback", ""),
    ] {
        w.call(
            &s,
            M::GET,
            template,
            &format!("{template}?from={yesterday}&to={next_day}{query}"),
            a,
            None,
        )
        .await;
    }

    // Contacts.
    w.call(
        &s,
        M::GET,
        "/v1/contacts",
        "/v1/contacts?text=vera",
        a,
        None,
    )
    .await;
    w.call(
        &s,
        M::GET,
        "/v1/contacts/{id}/conversations",
        &format!("/v1/contacts/{contact}/conversations"),
        a,
        None,
    )
    .await;
    w.call(
        &s,
        M::GET,
        "/v1/contacts/history",
        "/v1/contacts/history?email=vera@example.com",
        a,
        None,
    )
    .await;
    w.call(
        &s,
        M::PATCH,
        "/v1/contacts/{id}",
        &format!("/v1/contacts/{contact}"),
        a,
        Some(json!({ "phone": "+49 30 1234", "metadata": { "plan": "pro" } })),
    )
    .await;
    let other = w
        .call(
            &s,
            M::POST,
            "/v1/conversations",
            "/v1/conversations",
            None,
            Some(json!({ "contact": { "name": "Vera again" } })),
        )
        .await;
    let other_contact = other["contact"]["id"].as_str().unwrap().to_owned();
    w.call(
        &s,
        M::POST,
        "/v1/contacts/{id}/merge",
        &format!("/v1/contacts/{contact}/merge"),
        a,
        Some(json!({ "contact_id": other_contact })),
    )
    .await;

    // Customer accounts.
    let session = w
        .call(
            &s,
            M::POST,
            "/v1/accounts",
            "/v1/accounts",
            None,
            Some(json!({ "username": "carla", "password": "carla-password", "email": "carla@example.com", "name": "Carla" })),
        )
        .await;
    let account_contact = session["contact"]["id"].as_str().unwrap().to_owned();
    w.call(
        &s,
        M::POST,
        "/v1/accounts/login",
        "/v1/accounts/login",
        None,
        Some(json!({ "username": "carla", "password": "carla-password" })),
    )
    .await;
    let account_token = session["visitor_token"].as_str().unwrap().to_owned();
    w.call(
        &s,
        M::GET,
        "/v1/accounts/{id}",
        &format!("/v1/accounts/{account_contact}"),
        Some(&account_token),
        None,
    )
    .await;
    w.call(
        &s,
        M::POST,
        "/v1/accounts/password",
        "/v1/accounts/password",
        Some(&account_token),
        Some(json!({ "current_password": "carla-password", "new_password": "carla-password-2" })),
    )
    .await;
    w.call(
        &s,
        M::PATCH,
        "/v1/accounts/{id}",
        &format!("/v1/accounts/{account_contact}"),
        a,
        Some(json!({ "disabled": true })),
    )
    .await;

    // Staff, bot tokens, settings.
    w.call(
        &s,
        M::POST,
        "/v1/auth/login",
        "/v1/auth/login",
        None,
        Some(json!({ "email": admin.email, "password": common::PASSWORD })),
    )
    .await;
    w.call(&s, M::GET, "/v1/agents", "/v1/agents", a, None)
        .await;
    let created = w
        .call(
            &s,
            M::POST,
            "/v1/agents",
            "/v1/agents",
            a,
            Some(json!({ "name": "Cid", "email": "cid@acme.example", "role": "agent", "password": "cid-password-1", "capacity": 3 })),
        )
        .await;
    let cid = id(&created);
    w.call(
        &s,
        M::GET,
        "/v1/agents/{id}",
        &format!("/v1/agents/{cid}"),
        a,
        None,
    )
    .await;
    w.call(
        &s,
        M::PATCH,
        "/v1/agents/{id}",
        &format!("/v1/agents/{cid}"),
        a,
        Some(json!({ "departments": ["sales"] })),
    )
    .await;
    w.call(
        &s,
        M::PUT,
        "/v1/agents/{id}/availability",
        &format!("/v1/agents/{cid}/availability"),
        a,
        Some(json!({ "availability": "away" })),
    )
    .await;
    w.call(
        &s,
        M::POST,
        "/v1/bot-tokens",
        "/v1/bot-tokens",
        a,
        Some(json!({ "name": "faq bot", "expires_in_secs": 3600 })),
    )
    .await;
    w.call(&s, M::GET, "/v1/bot-tokens", "/v1/bot-tokens", a, None)
        .await;
    w.call(&s, M::GET, "/v1/settings", "/v1/settings", a, None)
        .await;
    w.call(
        &s,
        M::PATCH,
        "/v1/settings",
        "/v1/settings",
        a,
        Some(json!({ "welcome_message": "Hi!", "business_hours": { "time_zone": "Europe/Berlin",
            "weekly": { "mon": [{ "from": "09:00", "to": "17:30" }] }, "holidays": ["2026-12-25"] } })),
    )
    .await;

    // Webhooks and inboxes.
    let hook = w
        .call(
            &s,
            M::POST,
            "/v1/webhooks",
            "/v1/webhooks",
            a,
            Some(json!({ "url": "http://127.0.0.1:9/hook", "events": ["message_created"] })),
        )
        .await;
    let hook_id = id(&hook);
    w.call(&s, M::GET, "/v1/webhooks", "/v1/webhooks", a, None)
        .await;
    w.call(
        &s,
        M::PATCH,
        "/v1/webhooks/{id}",
        &format!("/v1/webhooks/{hook_id}"),
        a,
        Some(json!({ "state": "paused" })),
    )
    .await;
    w.call(
        &s,
        M::GET,
        "/v1/webhooks/{id}",
        &format!("/v1/webhooks/{hook_id}"),
        a,
        None,
    )
    .await;
    w.call(
        &s,
        M::GET,
        "/v1/webhooks/{id}/deliveries",
        &format!("/v1/webhooks/{hook_id}/deliveries"),
        a,
        None,
    )
    .await;
    let inbox = w
        .call(
            &s,
            M::POST,
            "/v1/inboxes",
            "/v1/inboxes",
            a,
            Some(json!({ "name": "Shop app", "kind": "api", "webhook_url": "http://127.0.0.1:9/replies" })),
        )
        .await;
    let inbox_id = id(&inbox);
    let inbox_token = inbox["token"].as_str().unwrap().to_owned();
    w.call(&s, M::GET, "/v1/inboxes", "/v1/inboxes", a, None)
        .await;
    w.call(
        &s,
        M::GET,
        "/v1/inboxes/{id}",
        &format!("/v1/inboxes/{inbox_id}"),
        a,
        None,
    )
    .await;
    w.call(
        &s,
        M::POST,
        "/v1/inboxes/{id}/messages",
        &format!("/v1/inboxes/{inbox_id}/messages"),
        Some(&inbox_token),
        Some(json!({ "contact": { "id": "shop-42", "name": "Dan" }, "message": { "id": "x-1", "text": "hello" } })),
    )
    .await;
    // An email inbox, and a raw mail into it.
    let mailbox = w
        .call(
            &s,
            M::POST,
            "/v1/inboxes",
            "/v1/inboxes",
            a,
            Some(json!({ "name": "Support mail", "kind": "email" })),
        )
        .await;
    w.call(
        &s,
        M::PATCH,
        "/v1/inboxes/{id}",
        &format!("/v1/inboxes/{}", id(&mailbox)),
        a,
        Some(json!({ "name": "Orders mail", "from": "Orders <orders@acme.example>" })),
    )
    .await;
    let mailbox_token = mailbox["token"].as_str().unwrap().to_owned();
    let raw = "From: Dan <dan@customer.example>\r\nSubject: Order\r\nMessage-ID: <o1@customer.example>\r\n\r\nhello\r\n";
    let path = format!("/v1/inboxes/{}/email", id(&mailbox));
    let reply = s
        .send_as(
            M::POST,
            &path,
            Some(&mailbox_token),
            &[("content-type", "message/rfc822")],
            raw,
        )
        .await;
    w.check(M::POST, "/v1/inboxes/{id}/email", &path, reply);

    // The transcript mailed to the contact (staff may ask at any time), and the mail log.
    w.call(
        &s,
        M::POST,
        "/v1/conversations/{id}/transcript/email",
        &format!("{conv}/transcript/email"),
        a,
        None,
    )
    .await;
    relay.wait_messages(1).await;
    w.call(&s, M::GET, "/v1/mail", "/v1/mail", a, None).await;

    // Erasure last: it removes the conversation played above.
    w.call(
        &s,
        M::POST,
        "/v1/contacts/{id}/erase",
        &format!("/v1/contacts/{contact}/erase"),
        a,
        None,
    )
    .await;

    // The schemas are not vacuous: a conversation whose mode is no mode, or whose time is
    // no time, is refused.
    let mut wrong = found["items"][0].clone();
    wrong["mode"] = json!("lost");
    assert!(!w.valid("Conversation", &wrong));
    let mut wrong = found["items"][0].clone();
    wrong["created_at"] = json!("yesterday");
    assert!(!w.valid("Conversation", &wrong));
    assert!(w.valid("Conversation", &found["items"][0]));

    let mut unmet = Vec::new();
    for endpoint in ENDPOINTS {
        let Some(name) = endpoint.response else {
            continue;
        };
        let is_component = w.doc["components"]["schemas"][name].is_object();
        if is_component && !w.met.contains(name) && !NOT_PLAYED.iter().any(|(n, _)| *n == name) {
            unmet.push(name);
        }
    }
    assert!(unmet.is_empty(), "answer schemas never checked: {unmet:?}");
    s.stop().await;
}
