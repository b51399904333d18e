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
mod inboxes;
mod mentions;
mod messages;
mod reports;
mod settings;
mod snooze;
mod system;
mod webhooks;

use std::net::IpAddr;
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

    /// A query parameter parsed as `T`; 422 naming it if it does not parse.
    pub fn query<T: FromStr>(&self, name: &'static str) -> Result<Option<T>, ApiError> {
        http::query_value(self.query.as_deref(), name)
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

/// Calls the handler of `endpoint`.
pub async fn dispatch(endpoint: &EndpointSpec, ctx: Ctx) -> Result<Resp, ApiError> {
    use Endpoint::*;
    match endpoint.id {
        Health => system::health(ctx).await,
        Ready => system::ready(ctx).await,
        Metrics => system::metrics(ctx).await,
        OpenApi => system::openapi(ctx).await,
        Docs => system::docs(ctx).await,
        Console => crate::web::page(&ctx, "console/index.html"),
        Demo => crate::web::page(&ctx, "demo/index.html"),
        WidgetScript => crate::web::page(&ctx, "widget/widget.js"),
        Asset => {
            let path = ctx.params.get("path").unwrap_or_default().to_owned();
            crate::web::page(&ctx, &path)
        }
        Events => system::events(ctx).await,
        Login => agents::login(ctx).await,
        Me => agents::me(ctx).await,
        CreateBotToken => agents::create_bot_token(ctx).await,
        ListBotTokens => agents::list_bot_tokens(ctx).await,
        RevokeBotToken => agents::revoke_bot_token(ctx).await,
        ListAgents => agents::list(ctx).await,
        CreateAgent => agents::create(ctx).await,
        GetAgent => agents::get(ctx).await,
        UpdateAgent => agents::update(ctx).await,
        SetAvailability => agents::availability(ctx).await,
        OpenConversation => conversations::open(ctx).await,
        ListConversations => conversations::list(ctx).await,
        GetConversation => conversations::get(ctx).await,
        UpdateConversation => conversations::update(ctx).await,
        DeleteConversation => conversations::delete(ctx).await,
        Handoff => conversations::handoff(ctx).await,
        QueuePosition => conversations::queue_position(ctx).await,
        Claim => conversations::claim(ctx).await,
        Assign => conversations::assign(ctx).await,
        Unassign => conversations::unassign(ctx).await,
        Transfer => conversations::transfer(ctx).await,
        SetMode => conversations::set_mode(ctx).await,
        Close => conversations::close(ctx).await,
        Rate => conversations::rate(ctx).await,
        Reopen => conversations::reopen(ctx).await,
        Archive => conversations::archive(ctx).await,
        ContactHistory => conversations::contact_history(ctx).await,
        GetContact => conversations::contact(ctx).await,
        MergeContact => conversations::merge_contact(ctx).await,
        UpdateContact => conversations::update_contact(ctx).await,
        SignUp => accounts::sign_up(ctx).await,
        AccountLogin => accounts::login(ctx).await,
        ChangeAccountPassword => accounts::change_password(ctx).await,
        GetAccount => accounts::get(ctx).await,
        UpdateAccount => accounts::update(ctx).await,
        ListMessages => messages::list(ctx).await,
        PostMessage => messages::post(ctx).await,
        PostNote => messages::note(ctx).await,
        EditMessage => messages::edit(ctx).await,
        DeleteMessage => messages::delete(ctx).await,
        MarkRead => messages::mark_read(ctx).await,
        ReadCursors => messages::read_cursors(ctx).await,
        GetSettings => settings::get(ctx).await,
        UpdateSettings => settings::update(ctx).await,
        Widget => settings::widget(ctx).await,
        ListCannedResponses => canned::list(ctx).await,
        CreateCannedResponse => canned::create(ctx).await,
        GetCannedResponse => canned::get(ctx).await,
        UpdateCannedResponse => canned::update(ctx).await,
        DeleteCannedResponse => canned::delete(ctx).await,
        PostCannedResponse => canned::post(ctx).await,
        Snooze => snooze::snooze(ctx).await,
        Unsnooze => snooze::unsnooze(ctx).await,
        ListMentions => mentions::list(ctx).await,
        ReadMentions => mentions::read(ctx).await,
        ListWebhooks => webhooks::list(ctx).await,
        Export => export::export(ctx).await,
        CreateWebhook => webhooks::create(ctx).await,
        GetWebhook => webhooks::get(ctx).await,
        UpdateWebhook => webhooks::update(ctx).await,
        DeleteWebhook => webhooks::delete(ctx).await,
        ListDeliveries => webhooks::deliveries(ctx).await,
        Redeliver => webhooks::redeliver(ctx).await,
        ListInboxes => inboxes::list(ctx).await,
        CreateInbox => inboxes::create(ctx).await,
        GetInbox => inboxes::get(ctx).await,
        DeleteInbox => inboxes::delete(ctx).await,
        ReceiveInbound => inboxes::receive(ctx).await,
        ReceiveTelegram => inboxes::receive_telegram(ctx).await,
        VerifyWhatsapp => inboxes::verify_whatsapp(ctx).await,
        ReceiveWhatsapp => inboxes::receive_whatsapp(ctx).await,
        ReportOverview => reports::overview(ctx).await,
        ReportBreakdown => reports::breakdown(ctx).await,
        ReportSeries => reports::series(ctx).await,
        ReportFeedback => reports::feedback(ctx).await,
        Transcript => reports::transcript(ctx).await,
        UploadFiles => files::upload(ctx).await,
        DownloadFile => files::download(ctx).await,
        ListContacts => contacts::list(ctx).await,
        ContactConversations => contacts::conversations(ctx).await,
        EraseContact => contacts::erase(ctx).await,
        // Upgrades are handled before the request is split (they need the whole request).
        WebSocket => Err(ApiError::bad_request(
            "this endpoint speaks WebSocket: send Upgrade: websocket",
        )),
    }
}
