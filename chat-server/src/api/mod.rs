//! Handlers: each turns a request into one engine call and its result into JSON. No
//! domain rule lives here.

mod accounts;
mod agents;
mod canned;
mod contacts;
mod conversations;
pub mod decode;
mod export;
mod files;
pub(crate) mod inboxes;
mod mail;
mod mentions;
mod messages;
pub mod query;
mod reports;
mod settings;
mod snooze;
mod system;
mod webhooks;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use chat_core::{Actor, Conversation};
use hyper::HeaderMap;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::auth::Caller;
use crate::endpoints::{Endpoint, EndpointSpec};
use crate::error::ApiError;
use crate::http::{self, Resp};
use crate::paths::PathParams;
use chat_core::policy::Viewer;
use chat_core::policy::view::ConversationView;

/// A list answer, `{"items": [...]}`: every list of the API has this one shape, and the
/// document derives each list's schema (`MessageList`, `AgentList` ...) from it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Items<T> {
    /// The list, in the order the route states.
    pub items: Vec<T>,
}

impl<T: serde::Serialize> Items<T> {
    /// The 200 answer of a list.
    pub fn answer(items: Vec<T>) -> Resp {
        http::json(hyper::StatusCode::OK, &Items { items })
    }
}

/// Everything a handler gets.
pub struct Ctx {
    /// The server.
    pub app: Arc<App>,
    /// Path parameters.
    pub params: PathParams,
    /// Raw query string.
    pub query: Option<String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// The body, until a handler takes it.
    pub body: Option<Incoming>,
    /// Who calls.
    pub caller: Caller,
    /// Client address.
    pub ip: IpAddr,
    /// The endpoint called: its query parameters are read by their definitions.
    pub endpoint: crate::endpoints::Endpoint,
}

impl Ctx {
    /// The authenticated actor (routes marked public may have none).
    pub fn actor(&self) -> Result<&Actor, ApiError> {
        match &self.caller {
            Caller::Actor(actor) => Ok(actor),
            Caller::Anonymous => Err(ApiError::unauthorized("send Authorization: Bearer <token>")),
        }
    }

    /// Whether the caller is staff.
    pub fn is_staff(&self) -> bool {
        matches!(self.caller, Caller::Actor(Actor::Staff { .. }))
    }

    /// A path parameter parsed as an id; 400 `invalid_id` if it is not one.
    pub fn id<T: FromStr>(&self, name: &str) -> Result<T, ApiError> {
        let raw = self.params.get(name).unwrap_or_default();
        raw.parse().map_err(|_| {
            ApiError::new(
                hyper::StatusCode::BAD_REQUEST,
                "invalid_id",
                format!("`{raw}` is not a valid {name}"),
            )
        })
    }

    /// A query parameter parsed as `T`, checked first against its definition
    /// ([`query::param`], the one the OpenAPI document is written from); 422 naming it if
    /// it breaks it or does not parse.
    pub fn query<T: FromStr>(&self, name: &'static str) -> Result<Option<T>, ApiError> {
        query::param(self.endpoint, name).read(self.query.as_deref())
    }

    /// The JSON body.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        let body = self
            .body
            .take()
            .ok_or_else(|| ApiError::bad_request("the body was already read"))?;
        http::read_json(&self.headers, body, self.app.config.limits.body_bytes).await
    }

    /// The JSON body, or `T::default()` when there is none.
    pub async fn json_or_default<T: DeserializeOwned + Default>(&mut self) -> Result<T, ApiError> {
        let body = self
            .body
            .take()
            .ok_or_else(|| ApiError::bad_request("the body was already read"))?;
        http::read_json_or_default(&self.headers, body, self.app.config.limits.body_bytes).await
    }

    /// Who the caller is to the policy's views (anonymous callers see what a customer
    /// sees).
    pub fn viewer(&self) -> Viewer {
        match &self.caller {
            Caller::Actor(actor) => Viewer::of(actor),
            Caller::Anonymous => Viewer::Customer,
        }
    }

    /// A conversation as this caller may see it.
    pub fn conversation_view<'a>(&self, c: &'a Conversation) -> ConversationView<'a> {
        self.viewer().conversation(c)
    }
}

/// A handler's answer, boxed.
pub type Answer = Pin<Box<dyn Future<Output = Result<Resp, ApiError>> + Send>>;

/// Starts `handler` on the heap, in a stack frame of its own. Why: unoptimized builds give
/// each arm of [`dispatch`] a stack slot the size of its handler's whole future, and with
/// a hundred routes the frames of one request outgrew a 2 MiB worker stack (a stack
/// overflow in a debug test, on an inbox message). Boxed, every frame above holds a
/// pointer instead.
fn boxed<F, Fut>(handler: F, ctx: Ctx) -> Answer
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = Result<Resp, ApiError>> + Send + 'static,
{
    Box::pin(handler(ctx))
}

/// Calls the handler of `endpoint`.
pub fn dispatch(endpoint: &EndpointSpec, ctx: Ctx) -> Answer {
    use Endpoint::*;
    let ready = |answer| -> Answer { Box::pin(std::future::ready(answer)) };
    match endpoint.id {
        Health => boxed(system::health, ctx),
        Ready => boxed(system::ready, ctx),
        Metrics => boxed(system::metrics, ctx),
        OpenApi => boxed(system::openapi, ctx),
        Docs => boxed(system::docs, ctx),
        Console => ready(crate::web::page(&ctx, "console/index.html")),
        Demo => ready(crate::web::page(&ctx, "demo/index.html")),
        WidgetScript => ready(crate::web::page(&ctx, "widget/widget.js")),
        Asset => {
            let path = ctx.params.get("path").unwrap_or_default().to_owned();
            ready(crate::web::page(&ctx, &path))
        }
        Events => boxed(system::events, ctx),
        Login => boxed(agents::login, ctx),
        Me => boxed(agents::me, ctx),
        CreateBotToken => boxed(agents::create_bot_token, ctx),
        ListBotTokens => boxed(agents::list_bot_tokens, ctx),
        RevokeBotToken => boxed(agents::revoke_bot_token, ctx),
        ListAgents => boxed(agents::list, ctx),
        CreateAgent => boxed(agents::create, ctx),
        GetAgent => boxed(agents::get, ctx),
        UpdateAgent => boxed(agents::update, ctx),
        SetAvailability => boxed(agents::availability, ctx),
        OpenConversation => boxed(conversations::open, ctx),
        ListConversations => boxed(conversations::list, ctx),
        GetConversation => boxed(conversations::get, ctx),
        UpdateConversation => boxed(conversations::update, ctx),
        DeleteConversation => boxed(conversations::delete, ctx),
        Handoff => boxed(conversations::handoff, ctx),
        QueuePosition => boxed(conversations::queue_position, ctx),
        Claim => boxed(conversations::claim, ctx),
        Assign => boxed(conversations::assign, ctx),
        Unassign => boxed(conversations::unassign, ctx),
        Transfer => boxed(conversations::transfer, ctx),
        SetMode => boxed(conversations::set_mode, ctx),
        Close => boxed(conversations::close, ctx),
        Rate => boxed(conversations::rate, ctx),
        Reopen => boxed(conversations::reopen, ctx),
        Archive => boxed(conversations::archive, ctx),
        ContactHistory => boxed(conversations::contact_history, ctx),
        GetContact => boxed(conversations::contact, ctx),
        MergeContact => boxed(conversations::merge_contact, ctx),
        UpdateContact => boxed(conversations::update_contact, ctx),
        SignUp => boxed(accounts::sign_up, ctx),
        AccountLogin => boxed(accounts::login, ctx),
        ChangeAccountPassword => boxed(accounts::change_password, ctx),
        GetAccount => boxed(accounts::get, ctx),
        UpdateAccount => boxed(accounts::update, ctx),
        ListMessages => boxed(messages::list, ctx),
        PostMessage => boxed(messages::post, ctx),
        PostNote => boxed(messages::note, ctx),
        EditMessage => boxed(messages::edit, ctx),
        DeleteMessage => boxed(messages::delete, ctx),
        MarkRead => boxed(messages::mark_read, ctx),
        ReadCursors => boxed(messages::read_cursors, ctx),
        GetSettings => boxed(settings::get, ctx),
        UpdateSettings => boxed(settings::update, ctx),
        Widget => boxed(settings::widget, ctx),
        ListCannedResponses => boxed(canned::list, ctx),
        CreateCannedResponse => boxed(canned::create, ctx),
        GetCannedResponse => boxed(canned::get, ctx),
        UpdateCannedResponse => boxed(canned::update, ctx),
        DeleteCannedResponse => boxed(canned::delete, ctx),
        PostCannedResponse => boxed(canned::post, ctx),
        Snooze => boxed(snooze::snooze, ctx),
        Unsnooze => boxed(snooze::unsnooze, ctx),
        ListMentions => boxed(mentions::list, ctx),
        ReadMentions => boxed(mentions::read, ctx),
        ListWebhooks => boxed(webhooks::list, ctx),
        Export => boxed(export::export, ctx),
        CreateWebhook => boxed(webhooks::create, ctx),
        GetWebhook => boxed(webhooks::get, ctx),
        UpdateWebhook => boxed(webhooks::update, ctx),
        DeleteWebhook => boxed(webhooks::delete, ctx),
        ListDeliveries => boxed(webhooks::deliveries, ctx),
        Redeliver => boxed(webhooks::redeliver, ctx),
        ListInboxes => boxed(inboxes::list, ctx),
        CreateInbox => boxed(inboxes::create, ctx),
        GetInbox => boxed(inboxes::get, ctx),
        UpdateInbox => boxed(inboxes::update, ctx),
        DeleteInbox => boxed(inboxes::delete, ctx),
        ReceiveInbound => boxed(inboxes::receive, ctx),
        ReceiveTelegram => boxed(inboxes::receive_telegram, ctx),
        ReceiveEmail => boxed(inboxes::receive_email, ctx),
        VerifyWhatsapp => boxed(inboxes::verify_whatsapp, ctx),
        ReceiveWhatsapp => boxed(inboxes::receive_whatsapp, ctx),
        SendTemplate => boxed(inboxes::send_template, ctx),
        ReportOverview => boxed(reports::overview, ctx),
        ReportBreakdown => boxed(reports::breakdown, ctx),
        ReportSeries => boxed(reports::series, ctx),
        ReportFeedback => boxed(reports::feedback, ctx),
        Transcript => boxed(reports::transcript, ctx),
        MailTranscript => boxed(mail::transcript, ctx),
        ListMail => boxed(mail::list, ctx),
        UploadFiles => boxed(files::upload, ctx),
        DownloadFile => boxed(files::download, ctx),
        ListContacts => boxed(contacts::list, ctx),
        ContactConversations => boxed(contacts::conversations, ctx),
        EraseContact => boxed(contacts::erase, ctx),
        // Upgrades are handled before the request is split (they need the whole request).
        WebSocket => ready(Err(ApiError::bad_request(
            "this endpoint speaks WebSocket: send Upgrade: websocket",
        ))),
    }
}
