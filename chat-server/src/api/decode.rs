//! The decoding the handlers do before any rule runs, behind one door for the fuzz targets
//! (`fuzz/`): every JSON body type of `/v1` and the query parameters of its list and report
//! routes, through the very functions the handlers call. An attacker controls these bytes
//! before authorization has even looked at them, so they must answer an error, never panic.

use chat_core::report::ReportPeriod;
use chat_core::{
    AgentId, CannedPatch, Channel, ContactId, ConversationId, Mode, NewCannedResponse, NewWebhook,
    Priority, WebhookPatch,
};
use serde::de::DeserializeOwned;
use utoipa::ToSchema;
use utoipa::openapi::{RefOr, Schema};

use crate::error::ApiError;
use crate::http;

/// How many body families [`body`] knows; its `family` is taken modulo this.
pub const BODY_FAMILIES: u8 = 30;

/// Decodes `bytes` as the JSON body of one route family (`family % BODY_FAMILIES`), as
/// the handler of that route does: `Ok` when it decodes, the API's 400/422 otherwise.
#[doc(hidden)]
pub fn body(family: u8, bytes: &[u8]) -> Result<(), ApiError> {
    use super::{accounts, agents, canned, conversations, messages, snooze};
    fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<(), ApiError> {
        http::parse_json::<T>(bytes).map(drop)
    }
    match family % BODY_FAMILIES {
        0 => parse::<accounts::SignUpRequest>(bytes),
        1 => parse::<accounts::LoginRequest>(bytes),
        2 => parse::<accounts::PasswordRequest>(bytes),
        3 => parse::<accounts::AccountPatch>(bytes),
        4 => parse::<agents::LoginRequest>(bytes),
        5 => parse::<agents::CreateRequest>(bytes),
        6 => parse::<agents::PatchRequest>(bytes),
        7 => parse::<agents::AvailabilityRequest>(bytes),
        8 => parse::<agents::BotTokenRequest>(bytes),
        9 => parse::<canned::PostCannedRequest>(bytes),
        10 => parse::<NewCannedResponse>(bytes),
        11 => parse::<CannedPatch>(bytes),
        12 => parse::<conversations::OpenRequest>(bytes),
        13 => parse::<conversations::Patch>(bytes),
        14 => parse::<conversations::HandoffRequest>(bytes),
        15 => parse::<conversations::AssignRequest>(bytes),
        16 => parse::<conversations::TransferRequest>(bytes),
        17 => parse::<conversations::ModeRequest>(bytes),
        18 => parse::<conversations::RatingRequest>(bytes),
        19 => parse::<conversations::CloseRequest>(bytes),
        20 => parse::<conversations::ContactPatchRequest>(bytes),
        21 => parse::<conversations::MergeRequest>(bytes),
        22 => parse::<messages::PostRequest>(bytes),
        23 => parse::<messages::NoteRequest>(bytes),
        24 => parse::<messages::EditRequest>(bytes),
        25 => parse::<messages::ReadRequest>(bytes),
        26 => parse::<snooze::SnoozeRequest>(bytes),
        27 => parse::<NewWebhook>(bytes),
        28 => parse::<WebhookPatch>(bytes),
        _ => parse::<serde_json::Map<String, serde_json::Value>>(bytes),
    }
}

/// The schemas of the JSON bodies above that are derived from their types (the rest are
/// still written in `openapi.rs`), for the OpenAPI document: the document describes the
/// very types these bytes are decoded into.
pub(crate) fn body_schemas() -> Vec<(String, RefOr<Schema>)> {
    use super::{accounts, agents, canned, conversations, messages, snooze};
    fn add<T: ToSchema>(all: &mut Vec<(String, RefOr<Schema>)>) {
        all.push((T::name().into_owned(), T::schema()));
        T::schemas(all);
    }
    let mut all = Vec::new();
    add::<accounts::SignUpRequest>(&mut all);
    add::<accounts::LoginRequest>(&mut all);
    add::<accounts::PasswordRequest>(&mut all);
    add::<accounts::AccountPatch>(&mut all);
    add::<agents::LoginRequest>(&mut all);
    add::<agents::CreateRequest>(&mut all);
    add::<agents::AvailabilityRequest>(&mut all);
    add::<agents::BotTokenRequest>(&mut all);
    add::<canned::PostCannedRequest>(&mut all);
    add::<conversations::HandoffRequest>(&mut all);
    add::<conversations::AssignRequest>(&mut all);
    add::<conversations::TransferRequest>(&mut all);
    add::<conversations::ModeRequest>(&mut all);
    add::<conversations::RatingRequest>(&mut all);
    add::<conversations::CloseRequest>(&mut all);
    add::<conversations::MergeRequest>(&mut all);
    add::<messages::NoteRequest>(&mut all);
    add::<messages::EditRequest>(&mut all);
    add::<messages::ReadRequest>(&mut all);
    add::<snooze::SnoozeRequest>(&mut all);
    add::<conversations::OpenRequest>(&mut all);
    add::<conversations::Patch>(&mut all);
    add::<conversations::ContactPatchRequest>(&mut all);
    add::<agents::PatchRequest>(&mut all);
    add::<messages::PostRequest>(&mut all);
    add::<NewCannedResponse>(&mut all);
    add::<CannedPatch>(&mut all);
    add::<NewWebhook>(&mut all);
    add::<WebhookPatch>(&mut all);
    add::<chat_core::NewInbox>(&mut all);
    add::<super::inboxes::InboundMessage>(&mut all);
    add::<super::inboxes::TemplateRequest>(&mut all);
    add::<super::inboxes::InboxPatchBody>(&mut all);
    add::<crate::channels::telegram::Update>(&mut all);
    add::<crate::channels::whatsapp::Notification>(&mut all);
    all
}

/// The schemas of the JSON answers serialized from a type of the server's own (its views
/// of what the engine answers), for the OpenAPI document.
pub(crate) fn answer_schemas() -> Vec<(String, RefOr<Schema>)> {
    use super::{
        accounts, agents, canned, conversations, inboxes, mail, mentions, messages, reports,
        settings, system, webhooks,
    };
    fn add<T: ToSchema>(all: &mut Vec<(String, RefOr<Schema>)>) {
        all.push((T::name().into_owned(), T::schema()));
        T::schemas(all);
    }
    let mut all = Vec::new();
    add::<crate::error::Body>(&mut all);
    add::<messages::PostAnswer>(&mut all);
    add::<agents::BotTokenInfo>(&mut all);
    add::<agents::IssuedBotToken>(&mut all);
    add::<webhooks::WebhookView>(&mut all);
    add::<webhooks::CreatedWebhook>(&mut all);
    add::<webhooks::DeliveryView>(&mut all);
    add::<mail::MailView>(&mut all);
    add::<conversations::QueueAnswer>(&mut all);
    add::<accounts::VisitorTokenAnswer>(&mut all);
    add::<mentions::MentionList>(&mut all);
    add::<mentions::MentionsRead>(&mut all);
    add::<system::Health>(&mut all);
    add::<accounts::AccountSession>(&mut all);
    add::<settings::Widget>(&mut all);
    add::<chat_core::Erasure>(&mut all);
    add::<super::contacts::ContactPage>(&mut all);
    add::<agents::LoginResponse>(&mut all);
    add::<agents::Me>(&mut all);
    add::<conversations::Opened>(&mut all);
    add::<conversations::ConversationPage>(&mut all);
    add::<system::EventList>(&mut all);
    add::<reports::Overview>(&mut all);
    add::<reports::Breakdown>(&mut all);
    add::<reports::Series>(&mut all);
    add::<reports::Feedbacks>(&mut all);
    add::<reports::TranscriptAnswer>(&mut all);
    add::<inboxes::CreatedInbox>(&mut all);
    add::<inboxes::UpdatedInbox>(&mut all);
    add::<inboxes::ReceivedView>(&mut all);
    add::<inboxes::TelegramReceived>(&mut all);
    add::<inboxes::WhatsappReceived>(&mut all);
    // The lists, each `Items` of its entries, under the names clients know.
    fn list<T: ToSchema>(all: &mut Vec<(String, RefOr<Schema>)>, name: &str) {
        all.push((
            name.to_owned(),
            <super::Items<T> as utoipa::PartialSchema>::schema(),
        ));
        add::<T>(all);
    }
    list::<chat_core::Conversation>(&mut all, "ConversationList");
    list::<chat_core::Message>(&mut all, "MessageList");
    list::<chat_core::ReadCursor>(&mut all, "ReadCursorList");
    list::<chat_core::Attachment>(&mut all, "AttachmentList");
    list::<chat_core::Agent>(&mut all, "AgentList");
    list::<agents::BotTokenInfo>(&mut all, "BotTokenList");
    list::<webhooks::WebhookView>(&mut all, "WebhookList");
    list::<webhooks::DeliveryView>(&mut all, "DeliveryList");
    list::<mail::MailView>(&mut all, "MailList");
    list::<canned::Entry>(&mut all, "CannedResponseList");
    list::<inboxes::InboxView>(&mut all, "InboxList");
    all
}

/// Decodes a query string as the list, search, paging and report routes read it: every
/// pair, each typed parameter they parse, and the report period (`from`, `to`, `tz`).
#[doc(hidden)]
pub fn query(query: &str) -> Vec<Result<(), ApiError>> {
    let q = Some(query);
    let _ = http::query_pairs(q);
    let modes = http::query_param(query, "mode").map(|list| {
        list.split(',')
            .filter(|m| !m.is_empty())
            .map(|m| {
                m.parse::<Mode>()
                    .map(drop)
                    .map_err(|_| ApiError::invalid("mode", ""))
            })
            .collect::<Result<Vec<()>, _>>()
            .map(drop)
    });
    // Each through its definition, as `Ctx::query` reads it.
    use super::query::param;
    use crate::endpoints::Endpoint::{self, ListContacts, ListConversations, ListMessages};
    let mut answers = vec![
        param(ListConversations, "priority")
            .read::<Priority>(q)
            .map(drop),
        param(ListConversations, "channel")
            .read::<Channel>(q)
            .map(drop),
        param(ListConversations, "pinned").read::<bool>(q).map(drop),
        param(ListConversations, "text").read::<String>(q).map(drop),
        param(ListConversations, "limit").read::<usize>(q).map(drop),
        param(Endpoint::Events, "since").read::<u64>(q).map(drop),
        param(ListConversations, "conversation_id")
            .read::<ConversationId>(q)
            .map(drop),
        param(ListContacts, "cursor").read::<ContactId>(q).map(drop),
        param(ListConversations, "agent_id")
            .read::<AgentId>(q)
            .map(drop),
        param(ListMessages, "before").read::<u64>(q).map(drop),
    ];
    answers.extend(modes);
    let from = http::query_param(query, "from").unwrap_or_default();
    let to = http::query_param(query, "to").unwrap_or_default();
    let tz = http::query_param(query, "tz");
    answers.push(
        ReportPeriod::parse(&from, &to, tz.as_deref())
            .map(drop)
            .map_err(ApiError::from),
    );
    answers
}
