//! Every route × every kind of caller, over HTTP: statuses match the policy and nothing
//! leaks across conversations or tenants.

use crate::common;

use chat_core::{Actor, NewAgent, Role, TenantSettings};
use chat_server::endpoints::{ENDPOINTS, Endpoint};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

const CALLERS: [&str; 8] = [
    "admin",
    "supervisor",
    "owner",
    "other agent",
    "visitor",
    "other visitor",
    "anonymous",
    "other tenant",
];

struct Case {
    route: Endpoint,
    /// Close the conversation before calling.
    closed: bool,
    body: Option<Value>,
    want: [u16; 8],
}

fn cases(bob: &str) -> Vec<Case> {
    use Endpoint::*;
    let c = |route, body: Option<Value>, want| Case {
        route,
        closed: false,
        body,
        want,
    };
    vec![
        c(
            GetConversation,
            None,
            [200, 200, 200, 404, 200, 404, 401, 404],
        ),
        c(
            UpdateConversation,
            Some(json!({ "priority": "high" })),
            [200, 200, 200, 404, 403, 403, 401, 404],
        ),
        c(
            DeleteConversation,
            None,
            [204, 403, 403, 404, 403, 403, 401, 404],
        ),
        c(ListMessages, None, [200, 200, 200, 404, 200, 404, 401, 404]),
        // Read access, like the history (notes are left out for the customer).
        c(Transcript, None, [200, 200, 200, 404, 200, 404, 401, 404]),
        // Read access decides first; then this server has no SMTP relay (tests/suite/mail.rs
        // sends through one): 409 `mail_not_configured` for whoever may read it.
        c(
            MailTranscript,
            Some(json!({})),
            [409, 409, 409, 404, 409, 404, 401, 404],
        ),
        // The mail log: admins of the tenant only.
        c(ListMail, None, [200, 403, 403, 403, 403, 403, 401, 200]),
        // Staff see reports (an agent its own figures, another tenant its own desk).
        c(
            ReportOverview,
            None,
            [200, 200, 200, 200, 403, 403, 401, 200],
        ),
        c(
            ReportBreakdown,
            None,
            [200, 200, 200, 200, 403, 403, 401, 200],
        ),
        c(ReportSeries, None, [200, 200, 200, 200, 403, 403, 401, 200]),
        c(
            ReportFeedback,
            None,
            [200, 200, 200, 200, 403, 403, 401, 200],
        ),
        c(
            PostMessage,
            Some(json!({ "body": "hi" })),
            [201, 201, 201, 404, 201, 404, 401, 404],
        ),
        c(
            PostNote,
            Some(json!({ "body": "internal" })),
            [201, 201, 201, 404, 403, 403, 401, 404],
        ),
        c(
            EditMessage,
            Some(json!({ "body": "edited" })),
            [403, 403, 403, 404, 200, 404, 401, 404],
        ),
        c(
            DeleteMessage,
            None,
            [200, 200, 403, 404, 200, 404, 401, 404],
        ),
        c(
            MarkRead,
            Some(json!({ "seq": 1 })),
            [200, 200, 200, 404, 200, 404, 401, 404],
        ),
        c(ReadCursors, None, [200, 200, 200, 404, 200, 404, 401, 404]),
        c(ListContacts, None, [200, 200, 200, 200, 403, 403, 401, 200]),
        // Bob gets an empty list (the leak check below holds him to it).
        c(
            ContactConversations,
            None,
            [200, 200, 200, 200, 403, 403, 401, 404],
        ),
        // Sent as JSON: those who may upload get as far as reading the form (415); the
        // others are turned away before their body is read.
        c(
            UploadFiles,
            Some(json!({ "file": "aGk=" })),
            [415, 415, 415, 404, 415, 404, 401, 404],
        ),
        // A file the visitor uploaded to the conversation.
        c(DownloadFile, None, [200, 200, 200, 404, 200, 404, 401, 404]),
        c(
            Handoff,
            Some(json!({})),
            [200, 200, 200, 404, 200, 404, 401, 404],
        ),
        c(Claim, None, [409, 409, 409, 404, 403, 403, 401, 404]),
        c(
            Assign,
            Some(json!({ "agent_id": bob })),
            [200, 200, 200, 404, 403, 403, 401, 404],
        ),
        c(Unassign, None, [200, 200, 200, 404, 403, 403, 401, 404]),
        c(
            Transfer,
            Some(json!({ "department": "sales", "reason": "quote" })),
            [200, 200, 200, 404, 403, 403, 401, 404],
        ),
        c(
            SetMode,
            Some(json!({ "mode": "paused" })),
            [200, 200, 200, 404, 403, 404, 401, 404],
        ),
        c(
            Close,
            Some(json!({})),
            [200, 200, 200, 404, 200, 404, 401, 404],
        ),
        c(
            Rate,
            Some(json!({ "score": 4 })),
            [403, 403, 403, 404, 200, 404, 401, 404],
        ),
        Case {
            route: Reopen,
            closed: true,
            body: None,
            want: [200, 200, 200, 404, 200, 404, 401, 404],
        },
        Case {
            route: Archive,
            closed: true,
            body: None,
            want: [200, 200, 403, 404, 403, 403, 401, 404],
        },
        c(GetContact, None, [200, 200, 200, 200, 200, 404, 401, 404]),
        // Into the conversation's contact, from a fresh visitor's (the body is made per call).
        c(MergeContact, None, [200, 200, 403, 403, 403, 403, 401, 404]),
        // A fresh visitor's contact each call: erasing is for admins alone.
        c(EraseContact, None, [200, 403, 403, 403, 403, 403, 401, 404]),
        c(
            UpdateContact,
            Some(json!({ "name": "Renamed", "metadata": { "plan": "gold" } })),
            [200, 200, 200, 200, 403, 403, 401, 404],
        ),
        c(GetAgent, None, [200, 200, 200, 200, 403, 403, 401, 404]),
        c(
            UpdateAgent,
            Some(json!({ "name": "Ann B" })),
            [200, 403, 200, 403, 403, 403, 401, 404],
        ),
        c(
            SetAvailability,
            Some(json!({ "availability": "away" })),
            [200, 200, 200, 403, 403, 403, 401, 404],
        ),
        c(
            ListConversations,
            None,
            [200, 200, 200, 200, 200, 200, 401, 200],
        ),
        c(
            ContactHistory,
            None,
            [200, 200, 200, 200, 403, 403, 401, 200],
        ),
        c(ListAgents, None, [200, 200, 200, 200, 403, 403, 401, 200]),
        c(CreateAgent, None, [201, 403, 403, 403, 403, 403, 401, 201]),
        c(Me, None, [200, 200, 200, 200, 200, 200, 401, 200]),
        c(Events, None, [200, 200, 200, 200, 200, 200, 401, 200]),
        c(
            OpenConversation,
            Some(json!({ "contact": { "email": "new@x.example" } })),
            [201, 201, 201, 201, 403, 403, 201, 201],
        ),
        c(Health, None, [200; 8]),
        c(Ready, None, [200; 8]),
        // The scraper's token or the server's own tenant's admins (see hardening.rs).
        c(Metrics, None, [200, 403, 403, 403, 403, 403, 401, 403]),
        c(OpenApi, None, [200; 8]),
        c(Docs, None, [200; 8]),
        // The console's, the demo's and the widget's files: public, like any web page.
        c(Console, None, [200; 8]),
        c(Demo, None, [200; 8]),
        c(WidgetScript, None, [200; 8]),
        c(Asset, None, [200; 8]),
        // Public: the desk's open state and messages, the same for every caller.
        c(Widget, None, [200; 8]),
        c(
            QueuePosition,
            None,
            [200, 200, 200, 404, 200, 404, 401, 404],
        ),
        c(
            CreateBotToken,
            Some(json!({ "name": "order bot" })),
            [201, 403, 403, 403, 403, 403, 401, 201],
        ),
        // Without upgrade headers: a bad request once authenticated.
        c(WebSocket, None, [400, 400, 400, 400, 400, 400, 401, 400]),
        c(
            Login,
            Some(json!({ "email": "nobody@acme.example", "password": "wrong password" })),
            [401; 8],
        ),
        // A sign-up is anonymous whoever calls: a new contact, never the caller's.
        c(SignUp, None, [201; 8]),
        c(
            AccountLogin,
            Some(json!({ "username": "nobody", "password": "wrong password" })),
            [401; 8],
        ),
        // The conversation's contact has no account: nothing to change, see or disable.
        c(
            ChangeAccountPassword,
            Some(json!({ "current_password": "x", "new_password": "y" })),
            [403, 403, 403, 403, 404, 404, 401, 403],
        ),
        c(GetAccount, None, [404, 404, 404, 404, 404, 404, 401, 404]),
        c(
            UpdateAccount,
            Some(json!({ "disabled": true })),
            [404, 403, 403, 403, 403, 403, 401, 404],
        ),
        c(
            ListBotTokens,
            None,
            [200, 403, 403, 403, 403, 403, 401, 200],
        ),
        c(
            RevokeBotToken,
            None,
            [404, 403, 403, 403, 403, 403, 401, 404],
        ),
        // Each tenant's admin reads and changes its own tenant's settings.
        c(GetSettings, None, [200, 403, 403, 403, 403, 403, 401, 200]),
        c(
            UpdateSettings,
            Some(json!({ "auto_assign": true })),
            [200, 403, 403, 403, 403, 403, 401, 200],
        ),
        c(
            ListCannedResponses,
            None,
            [200, 200, 200, 200, 403, 403, 401, 200],
        ),
        // Everyone on staff saves a personal one; customers none.
        c(
            CreateCannedResponse,
            Some(json!({ "shortcut": "thanks", "title": "Thanks", "body": "Thank you!" })),
            [201, 201, 201, 201, 403, 403, 401, 201],
        ),
        // A shared response of this tenant, made per call.
        c(
            GetCannedResponse,
            None,
            [200, 200, 200, 200, 403, 403, 401, 404],
        ),
        c(
            UpdateCannedResponse,
            Some(json!({ "title": "Renamed" })),
            [200, 403, 403, 403, 403, 403, 401, 404],
        ),
        c(
            DeleteCannedResponse,
            None,
            [204, 403, 403, 403, 403, 403, 401, 404],
        ),
        c(
            PostCannedResponse,
            None,
            [201, 201, 201, 404, 403, 403, 401, 404],
        ),
        c(
            Snooze,
            Some(json!({})),
            [200, 200, 200, 404, 403, 403, 401, 404],
        ),
        c(Unsnooze, None, [409, 409, 409, 404, 403, 403, 401, 404]),
        c(ListMentions, None, [200, 200, 200, 200, 403, 403, 401, 200]),
        c(ReadMentions, None, [200, 200, 200, 200, 403, 403, 401, 200]),
        // The tenant export: admins only, each of its own tenant.
        c(Export, None, [200, 403, 403, 403, 403, 403, 401, 200]),
        // Event webhooks: admins of the tenant only.
        c(ListWebhooks, None, [200, 403, 403, 403, 403, 403, 401, 200]),
        c(
            CreateWebhook,
            Some(json!({ "url": "http://127.0.0.1:9/hook" })),
            [201, 403, 403, 403, 403, 403, 401, 201],
        ),
        c(GetWebhook, None, [200, 403, 403, 403, 403, 403, 401, 404]),
        c(
            UpdateWebhook,
            Some(json!({ "events": ["message_created"] })),
            [200, 403, 403, 403, 403, 403, 401, 404],
        ),
        c(
            DeleteWebhook,
            None,
            [204, 403, 403, 403, 403, 403, 401, 404],
        ),
        c(
            ListDeliveries,
            None,
            [200, 403, 403, 403, 403, 403, 401, 404],
        ),
        c(Redeliver, None, [202, 403, 403, 403, 403, 403, 401, 404]),
        // Inboxes: admins of the tenant only; the inbound route takes the inbox's own
        // token, which no caller here holds (channels.rs posts with it).
        c(ListInboxes, None, [200, 403, 403, 403, 403, 403, 401, 200]),
        c(
            CreateInbox,
            Some(json!({ "name": "Shop app", "webhook_url": "http://127.0.0.1:9/hook" })),
            [201, 403, 403, 403, 403, 403, 401, 201],
        ),
        c(GetInbox, None, [200, 403, 403, 403, 403, 403, 401, 404]),
        c(
            UpdateInbox,
            Some(json!({ "name": "Shop app (new)" })),
            [200, 403, 403, 403, 403, 403, 401, 404],
        ),
        c(DeleteInbox, None, [204, 403, 403, 403, 403, 403, 401, 404]),
        c(
            ReceiveInbound,
            Some(json!({ "contact": { "id": "c-1" }, "message": { "id": "m-1", "text": "hi" } })),
            [403, 403, 403, 403, 403, 403, 401, 403],
        ),
        // An email inbox's route takes the inbox's token too (email_channel.rs posts with
        // it); a staff token is no inbox's.
        c(
            ReceiveEmail,
            Some(json!(
                "From: jo@customer.example\r\nMessage-ID: <m1@x>\r\n\r\nhi"
            )),
            [403, 403, 403, 403, 403, 403, 401, 403],
        ),
        // Telegram's route takes the inbox's secret token in its own header, which no
        // caller here sends (telegram.rs does).
        c(
            ReceiveTelegram,
            Some(
                json!({ "update_id": 1, "message": { "message_id": 1, "chat": { "id": 7 }, "text": "hi" } }),
            ),
            [403, 403, 403, 403, 403, 403, 403, 403],
        ),
        // WhatsApp's routes take the inbox's verify token or the app secret's signature,
        // which no caller here has (whatsapp.rs does).
        c(
            VerifyWhatsapp,
            None,
            [403, 403, 403, 403, 403, 403, 403, 403],
        ),
        c(
            ReceiveWhatsapp,
            Some(json!({ "object": "whatsapp_business_account", "entry": [] })),
            [403, 403, 403, 403, 403, 403, 403, 403],
        ),
        // The template route: whoever may read the conversation learns it is no WhatsApp
        // inbox's (422; whatsapp.rs sends one); staff only.
        c(
            SendTemplate,
            Some(json!({})),
            [422, 422, 422, 404, 403, 403, 401, 404],
        ),
    ]
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_policy_says_and_leaks_nothing() {
    // Every caller tries the logins from one address: the login throttle (tested in
    // logins.rs) would answer 429 before the credentials are looked at.
    let s = common::start_with(|c| {
        c.limits.login.free_per_name = 0;
        c.limits.login.free_per_address = 0;
        // The webhook cases register a URL on this machine (nothing listens there).
        c.webhooks.allow_private = true;
    })
    .await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let supervisor = s.staff("Sam", Role::Supervisor, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &["billing"]).await;
    let bob = s.staff("Bob", Role::Agent, &["sales"]).await;
    let (_, other_visitor) = s.visitor("other@x.example").await;
    // Another tenant on the same server, with its own admin.
    let foreign = s
        .engine
        .create_tenant("Other Co", TenantSettings::default())
        .await
        .unwrap();
    let system = Actor::System { tenant: foreign.id };
    let eve = NewAgent {
        name: "Eve".into(),
        email: "eve@other.example".into(),
        role: Role::Admin,
        capacity: None,
        departments: vec![],
    };
    let eve = s.engine.create_agent(&system, eve).await.unwrap();
    s.engine
        .set_password(
            &system,
            eve.id,
            &chat_server::auth::hash_password(common::PASSWORD).unwrap(),
        )
        .await
        .unwrap();
    let login = s.post("/v1/auth/login", None, json!({ "email": "eve@other.example", "password": common::PASSWORD, "tenant_id": foreign.id })).await;
    let eve_token = login.body["access_token"].as_str().unwrap().to_owned();

    let covered: Vec<Endpoint> = cases(&bob.id.to_string()).iter().map(|c| c.route).collect();
    for route in ENDPOINTS {
        assert!(
            covered.contains(&route.id),
            "{:?} is not in the authorization matrix",
            route.id
        );
    }

    let mut failures = Vec::new();
    let mut created = 0;
    for case in cases(&bob.id.to_string()) {
        let route = ENDPOINTS.iter().find(|r| r.id == case.route).unwrap();
        for (column, want) in case.want.into_iter().enumerate() {
            // A fresh conversation assigned to Ann in billing, with one customer message.
            let (id, visitor) = s.visitor("customer@x.example").await;
            let first = s
                .post(
                    &format!("/v1/conversations/{id}/messages"),
                    Some(&visitor),
                    json!({ "body": "my invoice" }),
                )
                .await;
            let message_id = first.body["message"]["id"].as_str().unwrap().to_owned();
            let contact_id = s
                .get(&format!("/v1/conversations/{id}"), Some(&admin.token))
                .await
                .body["contact_id"]
                .as_str()
                .unwrap()
                .to_owned();
            s.call(
                Method::PATCH,
                &format!("/v1/conversations/{id}"),
                Some(&admin.token),
                Some(json!({ "department": "billing", "tags": ["internal-flag"] })),
            )
            .await;
            // What the desk knows and the customer must never read back (the views).
            s.post(
                &format!("/v1/conversations/{id}/notes"),
                Some(&admin.token),
                json!({ "body": "desk-secret-note" }),
            )
            .await;
            s.call(
                Method::PATCH,
                &format!("/v1/contacts/{contact_id}"),
                Some(&admin.token),
                Some(json!({ "metadata": { "desk.secret": "desk-contact-secret" } })),
            )
            .await;
            let assigned = s
                .post(
                    &format!("/v1/conversations/{id}/assign"),
                    Some(&admin.token),
                    json!({ "agent_id": ann.id }),
                )
                .await;
            assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
            if case.closed {
                s.post(
                    &format!("/v1/conversations/{id}/close"),
                    Some(&admin.token),
                    json!({}),
                )
                .await;
            }
            let token = match column {
                0 => Some(admin.token.as_str()),
                1 => Some(supervisor.token.as_str()),
                2 => Some(ann.token.as_str()),
                3 => Some(bob.token.as_str()),
                4 => Some(visitor.as_str()),
                5 => Some(other_visitor.as_str()),
                6 => None,
                _ => Some(eve_token.as_str()),
            };
            let ann_id = ann.id.to_string();
            let canned_id = if matches!(
                case.route,
                Endpoint::GetCannedResponse
                    | Endpoint::UpdateCannedResponse
                    | Endpoint::DeleteCannedResponse
                    | Endpoint::PostCannedResponse
            ) {
                created += 1;
                let made = s
                    .post(
                        "/v1/canned-responses",
                        Some(&admin.token),
                        json!({ "shared": true, "shortcut": format!("c{created}"), "title": "Hi", "body": "Hi {{contact.name}}" }),
                    )
                    .await;
                assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
                made.body["id"].as_str().unwrap().to_owned()
            } else {
                String::new()
            };
            // A webhook of the tenant, with one delivery (of the event the PATCH below logs).
            let (webhook_id, delivery_seq) = if matches!(
                case.route,
                Endpoint::GetWebhook
                    | Endpoint::UpdateWebhook
                    | Endpoint::DeleteWebhook
                    | Endpoint::ListDeliveries
                    | Endpoint::Redeliver
            ) {
                let made = s
                    .post(
                        "/v1/webhooks",
                        Some(&admin.token),
                        json!({ "url": "http://127.0.0.1:9/hook" }),
                    )
                    .await;
                assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
                let webhook = made.body["id"].as_str().unwrap().to_owned();
                s.call(
                    Method::PATCH,
                    &format!("/v1/conversations/{id}"),
                    Some(&admin.token),
                    Some(json!({ "priority": "high" })),
                )
                .await;
                let log = s
                    .get(
                        &format!("/v1/webhooks/{webhook}/deliveries"),
                        Some(&admin.token),
                    )
                    .await;
                let seq = log.body["items"][0]["seq"].as_u64().unwrap().to_string();
                (webhook, seq)
            } else {
                (String::new(), String::new())
            };
            let stray_contact = if case.route == Endpoint::EraseContact {
                let (_, stray) = s.visitor("erased@x.example").await;
                let me = s.get("/v1/me", Some(&stray)).await;
                me.body["contact_id"].as_str().unwrap().to_owned()
            } else {
                String::new()
            };
            // An inbox of the tenant.
            let inbox_id = if matches!(
                case.route,
                Endpoint::GetInbox
                    | Endpoint::UpdateInbox
                    | Endpoint::DeleteInbox
                    | Endpoint::ReceiveInbound
                    | Endpoint::ReceiveEmail
                    | Endpoint::ReceiveTelegram
                    | Endpoint::VerifyWhatsapp
                    | Endpoint::ReceiveWhatsapp
            ) {
                let made = s
                    .post(
                        "/v1/inboxes",
                        Some(&admin.token),
                        json!({ "name": "Shop app", "webhook_url": "http://127.0.0.1:9/hook" }),
                    )
                    .await;
                assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
                made.body["id"].as_str().unwrap().to_owned()
            } else {
                String::new()
            };
            let target = match case.route {
                Endpoint::EraseContact => &stray_contact,
                Endpoint::GetWebhook
                | Endpoint::UpdateWebhook
                | Endpoint::DeleteWebhook
                | Endpoint::ListDeliveries
                | Endpoint::Redeliver => &webhook_id,
                Endpoint::EditMessage | Endpoint::DeleteMessage => &message_id,
                Endpoint::GetInbox
                | Endpoint::UpdateInbox
                | Endpoint::DeleteInbox
                | Endpoint::ReceiveInbound
                | Endpoint::ReceiveEmail => &inbox_id,
                Endpoint::GetContact
                | Endpoint::ContactConversations
                | Endpoint::MergeContact
                | Endpoint::UpdateContact
                | Endpoint::GetAccount
                | Endpoint::UpdateAccount => &contact_id,
                Endpoint::GetAgent | Endpoint::UpdateAgent | Endpoint::SetAvailability => &ann_id,
                Endpoint::GetCannedResponse
                | Endpoint::UpdateCannedResponse
                | Endpoint::DeleteCannedResponse => &canned_id,
                _ => &id,
            };
            let path = route
                .path
                .replace("{id}", target)
                .replace("{*path}", "console/index.html")
                .replace("{seq}", &delivery_seq);
            let path = if case.route == Endpoint::DownloadFile {
                let (content_type, form) = chat_server::testing::multipart(
                    &[],
                    &[(
                        "file",
                        "invoice.pdf",
                        "application/pdf",
                        b"%PDF-1.7 invoice",
                    )],
                );
                let uploaded = s
                    .send_as(
                        Method::POST,
                        &format!("/v1/conversations/{id}/files"),
                        Some(&visitor),
                        &[("content-type", content_type.as_str())],
                        form,
                    )
                    .await;
                assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text);
                let key = uploaded.body["items"][0]["key"].as_str().unwrap();
                path.replace("{folder}/{name}", key)
            } else {
                path
            };
            let path = match case.route {
                Endpoint::ContactHistory => format!("{path}?email=customer%40x.example"),
                Endpoint::ReportBreakdown => {
                    format!("{path}?from=2026-01-01&to=2026-01-31&by=agent")
                }
                Endpoint::ReportOverview | Endpoint::ReportSeries | Endpoint::ReportFeedback => {
                    format!("{path}?from=2026-01-01&to=2026-01-31")
                }
                _ => path,
            };
            let body = match case.route {
                Endpoint::CreateAgent => {
                    created += 1;
                    Some(
                        json!({ "name": "New", "email": format!("new{created}@acme.example"), "role": "agent", "password": "long enough password" }),
                    )
                }
                Endpoint::SignUp => {
                    created += 1;
                    Some(json!({ "username": format!("customer{created}"), "password": "pw" }))
                }
                Endpoint::MergeContact => {
                    let (_, stray) = s.visitor("stray@x.example").await;
                    let me = s.get("/v1/me", Some(&stray)).await;
                    Some(json!({ "contact_id": me.body["contact_id"] }))
                }
                Endpoint::PostCannedResponse => Some(json!({ "canned_response_id": canned_id })),
                _ => case.body.clone(),
            };
            let reply = s.call(route.method.clone(), &path, token, body).await;
            // At most 20 inboxes (each with a webhook) per tenant: each case cleans up.
            if !inbox_id.is_empty() || case.route == Endpoint::CreateInbox {
                let inboxes = s.get("/v1/inboxes", Some(&admin.token)).await;
                for inbox in inboxes.body["items"].as_array().unwrap() {
                    let gone = s
                        .delete(
                            &format!("/v1/inboxes/{}", inbox["id"].as_str().unwrap()),
                            Some(&admin.token),
                        )
                        .await;
                    assert_eq!(gone.status, StatusCode::NO_CONTENT);
                }
            }
            // At most 20 webhooks per tenant: each case cleans up after itself.
            if !webhook_id.is_empty() || case.route == Endpoint::CreateWebhook {
                let hooks = s.get("/v1/webhooks", Some(&admin.token)).await;
                for hook in hooks.body["items"].as_array().unwrap() {
                    let gone = s
                        .delete(
                            &format!("/v1/webhooks/{}", hook["id"].as_str().unwrap()),
                            Some(&admin.token),
                        )
                        .await;
                    assert_eq!(gone.status, StatusCode::NO_CONTENT);
                }
            }
            if reply.status.as_u16() != want {
                failures.push(format!(
                    "{} {} by {}: want {want}, got {} {}",
                    route.method,
                    route.path,
                    CALLERS[column],
                    reply.status.as_u16(),
                    reply.text
                ));
            }
            // Lists and replays never show this conversation to those who may not see it.
            if matches!(
                case.route,
                Endpoint::ListConversations
                    | Endpoint::Events
                    | Endpoint::Export
                    | Endpoint::ContactHistory
                    | Endpoint::ContactConversations
            ) && matches!(column, 3 | 5 | 7)
                && reply.text.contains(&id)
            {
                failures.push(format!(
                    "{} leaks the conversation to {}",
                    route.path, CALLERS[column]
                ));
            }
            // Whatever a customer or an anonymous caller is answered is the customer's view.
            if matches!(column, 4..=6) && reply.status.is_success() {
                for secret in [
                    "internal-flag",
                    "billing",
                    "desk-secret-note",
                    "desk-contact-secret",
                ] {
                    if reply.text.contains(secret) {
                        failures.push(format!(
                            "{} {} shows {secret} to {}",
                            route.method, route.path, CALLERS[column]
                        ));
                    }
                }
            }
            if case.route == Endpoint::ListAgents && column == 7 && reply.text.contains(&ann.email)
            {
                failures.push("the agent list leaks across tenants".into());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    s.stop().await;
}
