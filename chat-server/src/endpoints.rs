//! The HTTP endpoint table: one list drives request matching, the OpenAPI document and
//! its test.
//!
//! Named "endpoints" rather than "routes" because routing, in this product, is what
//! [`chat_core::Router`] does: choosing an agent for a queued conversation.

use hyper::Method;

use crate::paths::PathTable;

/// Which callers an endpoint admits before the engine's policy has its say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, docs, login, opening a conversation).
    Public,
    /// Any authenticated caller: staff or visitor.
    Authenticated,
    /// Staff only.
    Staff,
}

/// Names a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Endpoint {
    Health,
    Ready,
    Metrics,
    OpenApi,
    Docs,
    Console,
    Demo,
    WidgetScript,
    Asset,
    Login,
    Me,
    OpenConversation,
    ListConversations,
    GetConversation,
    UpdateConversation,
    DeleteConversation,
    ListMessages,
    PostMessage,
    PostNote,
    EditMessage,
    DeleteMessage,
    MarkRead,
    ReadCursors,
    Handoff,
    Claim,
    Assign,
    Unassign,
    Transfer,
    SetMode,
    Close,
    Rate,
    Reopen,
    Archive,
    ContactHistory,
    GetContact,
    UpdateContact,
    MergeContact,
    EraseContact,
    SignUp,
    AccountLogin,
    ChangeAccountPassword,
    GetAccount,
    UpdateAccount,
    ListAgents,
    CreateAgent,
    GetAgent,
    UpdateAgent,
    SetAvailability,
    Events,
    WebSocket,
    QueuePosition,
    CreateBotToken,
    ListBotTokens,
    RevokeBotToken,
    GetSettings,
    UpdateSettings,
    Widget,
    ListCannedResponses,
    CreateCannedResponse,
    GetCannedResponse,
    UpdateCannedResponse,
    DeleteCannedResponse,
    PostCannedResponse,
    Snooze,
    Unsnooze,
    ListMentions,
    ReadMentions,
    ReportOverview,
    ReportBreakdown,
    ReportSeries,
    ReportFeedback,
    Transcript,
    MailTranscript,
    ListMail,
    UploadFiles,
    DownloadFile,
    ListContacts,
    ContactConversations,
    ListWebhooks,
    Export,
    CreateWebhook,
    GetWebhook,
    UpdateWebhook,
    DeleteWebhook,
    ListDeliveries,
    Redeliver,
    ListInboxes,
    CreateInbox,
    GetInbox,
    UpdateInbox,
    DeleteInbox,
    ReceiveInbound,
    ReceiveTelegram,
    ReceiveEmail,
    VerifyWhatsapp,
    ReceiveWhatsapp,
    SendTemplate,
}

/// One endpoint with what the documentation says about it.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// HTTP method.
    pub method: Method,
    /// Path with `{param}` placeholders (the same syntax in matchit and OpenAPI).
    pub path: &'static str,
    /// Handler.
    pub id: Endpoint,
    /// Who may call.
    pub access: Access,
    /// One line for the docs.
    pub summary: &'static str,
    /// Request body schema name, if any.
    pub request: Option<&'static str>,
    /// Success status.
    pub status: u16,
    /// Response schema name (`None` for no body).
    pub response: Option<&'static str>,
    /// Query parameters.
    pub query: &'static [&'static str],
}

// One argument per column of the table below keeps the table readable.
#[allow(clippy::too_many_arguments)]
const fn endpoint(
    method: Method,
    path: &'static str,
    id: Endpoint,
    access: Access,
    summary: &'static str,
    request: Option<&'static str>,
    status: u16,
    response: Option<&'static str>,
    query: &'static [&'static str],
) -> EndpointSpec {
    EndpointSpec {
        method,
        path,
        id,
        access,
        summary,
        request,
        status,
        response,
        query,
    }
}

use Access::*;
use Endpoint::*;

/// The list's filters, and the export format.
const LIST_QUERY: &[&str] = &[
    "mode",
    "priority",
    "department",
    "assigned",
    "tag",
    "channel",
    "contact_email",
    "pinned",
    "snoozed",
    "text",
    "updated_from",
    "updated_to",
    "cursor",
    "limit",
    "format",
];

/// Every endpoint of the API.
#[rustfmt::skip]
pub const ENDPOINTS: &[EndpointSpec] = &[
    endpoint(Method::GET, "/healthz", Health, Public, "Liveness: the process answers.", None, 200, Some("Health"), &[]),
    endpoint(Method::GET, "/readyz", Ready, Public, "Readiness: the store answers.", None, 200, Some("Health"), &[]),
    endpoint(Method::GET, "/metrics", Metrics, Staff, "Prometheus metrics, for the scraper's token (--metrics-token) or an admin's.", None, 200, Some("text"), &[]),
    endpoint(Method::GET, "/v1/openapi.json", OpenApi, Public, "This document.", None, 200, Some("object"), &[]),
    endpoint(Method::GET, "/docs", Docs, Public, "Human-readable API reference.", None, 200, Some("html"), &[]),
    endpoint(Method::GET, "/", Console, Public, "The agent console (a page; it signs in through /v1/auth/login).", None, 200, Some("html"), &[]),
    endpoint(Method::GET, "/demo", Demo, Public, "A sample website page with the chat widget on it.", None, 200, Some("html"), &[]),
    endpoint(Method::GET, "/widget.js", WidgetScript, Public, "The website widget: one `<script src=\".../widget.js\">` tag adds the chat to any page.", None, 200, Some("asset"), &[]),
    endpoint(Method::GET, "/assets/{*path}", Asset, Public, "The console's and the widget's files, embedded in the binary.", None, 200, Some("asset"), &[]),
    endpoint(Method::POST, "/v1/auth/login", Login, Public, "Staff login: e-mail and password for an access token.", Some("LoginRequest"), 200, Some("LoginResponse"), &[]),
    endpoint(Method::GET, "/v1/me", Me, Authenticated, "Who the token speaks for.", None, 200, Some("Me"), &[]),
    endpoint(Method::POST, "/v1/conversations", OpenConversation, Public, "Open a conversation. Anonymous callers (a website widget) receive a visitor token scoped to it.", Some("OpenConversationRequest"), 201, Some("OpenedConversation"), &[]),
    endpoint(Method::GET, "/v1/conversations", ListConversations, Authenticated, "Conversations the caller can see, newest activity first, with counts per mode (a search counts each mode up to 1000 and says so in `counts_capped`: a count of 1000 then means 1000 or more). With `text` (a search: words as prefixes, quoted phrases) each item carries `hits`, its newest matching messages with a plain-text `snippet` and the matched words' character ranges (`highlights`); internal notes are searched and shown for staff only. `updated_from` / `updated_to` (RFC 3339) keep the conversations whose last activity is in `[from, to)`. `format=csv` (or `Accept: text/csv`) exports the same page as CSV (one row per conversation, the columns of the caller's view; a column it may not see stays empty; the next page's cursor in the `next-cursor` header).", None, 200, Some("ConversationPage"), LIST_QUERY),
    endpoint(Method::GET, "/v1/conversations/{id}", GetConversation, Authenticated, "One conversation.", None, 200, Some("Conversation"), &[]),
    endpoint(Method::PATCH, "/v1/conversations/{id}", UpdateConversation, Staff, "Change priority, department, tags, pin, title or participants.", Some("ConversationPatch"), 200, Some("Conversation"), &[]),
    endpoint(Method::DELETE, "/v1/conversations/{id}", DeleteConversation, Staff, "Delete for good (admins).", None, 204, None, &[]),
    endpoint(Method::GET, "/v1/conversations/{id}/messages", ListMessages, Authenticated, "History by sequence: `before` gives the newest below it, `after` the oldest above it.", None, 200, Some("MessageList"), &["before", "after", "limit"]),
    endpoint(Method::POST, "/v1/conversations/{id}/messages", PostMessage, Authenticated, "Post a message. The same `client_message_id` twice stores one message (200 instead of 201).", Some("PostMessageRequest"), 201, Some("PostedMessage"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/notes", PostNote, Staff, "Write an internal note (never shown to the customer).", Some("NoteRequest"), 201, Some("Message"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/files", UploadFiles, Authenticated, "Upload files (multipart/form-data, one or more file parts, all stored or none) for a message, or with `?purpose=note` (staff) for an internal note. The type is decided from the bytes; size, count and types follow the tenant's upload settings (413 over the size, 422 `files` for too many or none, 422 `file` for a type not accepted or an image declaring too many pixels, 415 for a body that is not a form). Attach the answered items to a message or note.", Some("FileUpload"), 201, Some("AttachmentList"), &["purpose"]),
    endpoint(Method::GET, "/v1/conversations/{id}/files/{folder}/{name}", DownloadFile, Authenticated, "Download a file of the conversation (its `key` is `{folder}/{name}`), for whoever may read the conversation; note files for staff only. Served as `Content-Disposition: attachment` with `X-Content-Type-Options: nosniff`. An image's PNG preview (at most 320 × 320) is at `{key}.thumb.png`.", None, 200, Some("file"), &[]),
    endpoint(Method::PATCH, "/v1/messages/{id}", EditMessage, Authenticated, "Edit one's own message within the edit window.", Some("EditMessageRequest"), 200, Some("Message"), &[]),
    endpoint(Method::DELETE, "/v1/messages/{id}", DeleteMessage, Authenticated, "Delete a message softly.", None, 200, Some("Message"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/read", MarkRead, Authenticated, "Move the caller's read cursor.", Some("ReadRequest"), 200, Some("Conversation"), &[]),
    endpoint(Method::GET, "/v1/conversations/{id}/read", ReadCursors, Authenticated, "Read cursors (read receipts).", None, 200, Some("ReadCursorList"), &[]),
    endpoint(Method::GET, "/v1/conversations/{id}/queue", QueuePosition, Authenticated, "Queue position and estimated wait while queued (`position: null` otherwise).", None, 200, Some("QueuePosition"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/handoff", Handoff, Authenticated, "Ask for a human: the conversation joins the queue and is routed.", Some("HandoffRequest"), 200, Some("Conversation"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/claim", Claim, Staff, "Take a queued conversation. Of two claims exactly one wins; the other gets 409.", None, 200, Some("Conversation"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/assign", Assign, Staff, "Assign to an agent.", Some("AssignRequest"), 200, Some("Conversation"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/unassign", Unassign, Staff, "Put back in the queue.", None, 200, Some("Conversation"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/transfer", Transfer, Staff, "Transfer to an agent or a department, with a reason.", Some("TransferRequest"), 200, Some("Conversation"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/mode", SetMode, Authenticated, "Move along the mode state machine; an illegal move is 409.", Some("ModeRequest"), 200, Some("Conversation"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/close", Close, Authenticated, "Close, optionally with the customer's rating.", Some("CloseRequest"), 200, Some("Conversation"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/rating", Rate, Authenticated, "Rate (customers).", Some("RatingRequest"), 200, Some("Conversation"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/reopen", Reopen, Authenticated, "Reopen a closed conversation.", None, 200, Some("Conversation"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/archive", Archive, Staff, "Archive a closed conversation.", None, 200, Some("Conversation"), &[]),
    endpoint(Method::GET, "/v1/contacts", ListContacts, Staff, "The tenant's contacts, newest first; `text` finds those whose name, e-mail or phone contains it. Pass `next_cursor` back as `cursor` for the next page.", None, 200, Some("ContactPage"), &["text", "cursor", "limit"]),
    endpoint(Method::GET, "/v1/contacts/{id}/conversations", ContactConversations, Staff, "The contact's conversations that the caller may read, newest activity first.", None, 200, Some("ConversationList"), &[]),
    endpoint(Method::GET, "/v1/contacts/history", ContactHistory, Staff, "Every conversation of the contact with this e-mail.", None, 200, Some("ConversationList"), &["email"]),
    endpoint(Method::GET, "/v1/contacts/{id}", GetContact, Authenticated, "One contact.", None, 200, Some("Contact"), &[]),
    endpoint(Method::PATCH, "/v1/contacts/{id}", UpdateContact, Staff, "Edit a contact (staff): name, e-mail (a changed e-mail is an unverified claim), phone, address, metadata entries. Entries whose key the tenant declared in `contact_attributes` must hold a value of its type (422 on `metadata` otherwise).", Some("ContactPatch"), 200, Some("Contact"), &[]),
    endpoint(Method::POST, "/v1/contacts/{id}/erase", EraseContact, Staff, "Erase the contact (admins only; cannot be undone): its name, e-mail, phone, address, external id and attributes, its customer account and visitor tokens, and every conversation it had, in progress or not, with their messages, notes, ratings and files, from the database, the search index and the event log (whose entries for those conversations keep their sequence but say only `conversation_deleted`). The contact stays, blank; a staff-only `contact_erased` event records who erased it and when. Erasing again answers `erased: false` and changes nothing; an unknown contact is 404.", None, 200, Some("Erasure"), &[]),
    endpoint(Method::POST, "/v1/contacts/{id}/merge", MergeContact, Staff, "Merge the contact named in the body into this one (admins, supervisors): its conversations move here, it is deleted, and a staff-only `contact_merged` event records it. A contact of another tenant is not found (404) and nothing changes.", Some("MergeContactRequest"), 200, Some("Contact"), &[]),
    endpoint(Method::POST, "/v1/accounts", SignUp, Public, "Sign a customer up (a new contact with a login); answers a visitor token for all of the account's conversations.", Some("SignUpRequest"), 201, Some("AccountSession"), &[]),
    endpoint(Method::POST, "/v1/accounts/login", AccountLogin, Public, "Log a customer in by login name and password; 401 for a wrong one or a disabled account.", Some("AccountLoginRequest"), 200, Some("AccountSession"), &[]),
    endpoint(Method::POST, "/v1/accounts/password", ChangeAccountPassword, Authenticated, "Change the caller's account password (the current one is required); revokes every token of the account and answers a new one.", Some("AccountPasswordRequest"), 200, Some("VisitorTokenAnswer"), &[]),
    endpoint(Method::GET, "/v1/accounts/{id}", GetAccount, Authenticated, "The account of a contact (its own for a customer). Never carries the password hash.", None, 200, Some("Account"), &[]),
    endpoint(Method::PATCH, "/v1/accounts/{id}", UpdateAccount, Staff, "Disable or enable an account (admins); disabling revokes its tokens.", Some("AccountPatch"), 200, Some("Account"), &[]),
    endpoint(Method::GET, "/v1/agents", ListAgents, Staff, "Staff of the tenant.", None, 200, Some("AgentList"), &[]),
    endpoint(Method::POST, "/v1/agents", CreateAgent, Staff, "Create a staff member (admins).", Some("CreateAgentRequest"), 201, Some("Agent"), &[]),
    endpoint(Method::GET, "/v1/agents/{id}", GetAgent, Staff, "One staff member.", None, 200, Some("Agent"), &[]),
    endpoint(Method::PATCH, "/v1/agents/{id}", UpdateAgent, Staff, "Change a staff member; a new password revokes its tokens.", Some("AgentPatch"), 200, Some("Agent"), &[]),
    endpoint(Method::PUT, "/v1/agents/{id}/availability", SetAvailability, Staff, "Set availability; going online routes waiting conversations at once.", Some("AvailabilityRequest"), 200, Some("Agent"), &[]),
    endpoint(Method::POST, "/v1/bot-tokens", CreateBotToken, Staff, "Issue a token for an external bot service (admins), optionally expiring; shown once.", Some("BotTokenRequest"), 201, Some("BotToken"), &[]),
    endpoint(Method::GET, "/v1/bot-tokens", ListBotTokens, Staff, "The tenant's bot tokens (admins): id, name, issue, expiry and last use; never the token.", None, 200, Some("BotTokenList"), &[]),
    endpoint(Method::DELETE, "/v1/bot-tokens/{id}", RevokeBotToken, Staff, "Revoke a bot token (admins): its requests get 401 and its sockets close at once.", None, 204, None, &[]),
    endpoint(Method::GET, "/v1/settings", GetSettings, Staff, "The tenant's settings (admins), with their version as `ETag`.", None, 200, Some("TenantSettings"), &[]),
    endpoint(Method::PATCH, "/v1/settings", UpdateSettings, Staff, "Change tenant settings (admins): a merge patch of the settings to replace; each is validated (422 names the setting, and nothing changes) and a staff-only `settings_updated` event follows. With `If-Match` (the `ETag` of a read) it applies only over that version: 412 `precondition_failed` otherwise, so two admins cannot overwrite each other unseen.", Some("TenantSettingsPatch"), 200, Some("TenantSettings"), &[]),
    endpoint(Method::GET, "/v1/widget", Widget, Public, "What a chat widget shows before anyone writes (no credentials): whether the desk is open by its business hours, `next_opening` while closed, the offline and welcome messages, whether to ask name and e-mail first (`prechat_form`). Nothing else of the settings. `tenant_id` defaults to the server's default tenant; a missing or unknown one is 422 on `tenant_id`.", None, 200, Some("Widget"), &["tenant_id"]),
    endpoint(Method::GET, "/v1/canned-responses", ListCannedResponses, Staff, "Canned responses the caller can use (shared and its own), by shortcut; `q` keeps those whose shortcut or title starts with it (an as-you-type picker); with `conversation_id` each carries the `preview` it would post there.", None, 200, Some("CannedResponseList"), &["q", "limit", "conversation_id"]),
    endpoint(Method::POST, "/v1/canned-responses", CreateCannedResponse, Staff, "Save a canned response: the caller's own, or `shared: true` (admins). An unknown `{{placeholder}}` is 422 on `body`; a shortcut in use is 409 `duplicate`.", Some("NewCannedResponse"), 201, Some("CannedResponse"), &[]),
    endpoint(Method::GET, "/v1/canned-responses/{id}", GetCannedResponse, Staff, "One canned response (another agent's personal one is 404).", None, 200, Some("CannedResponse"), &[]),
    endpoint(Method::PATCH, "/v1/canned-responses/{id}", UpdateCannedResponse, Staff, "Change shortcut, title or body of one's own canned response, or of a shared one (admins).", Some("CannedResponsePatch"), 200, Some("CannedResponse"), &[]),
    endpoint(Method::DELETE, "/v1/canned-responses/{id}", DeleteCannedResponse, Staff, "Delete one's own canned response, or a shared one (admins).", None, 204, None, &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/canned", PostCannedResponse, Staff, "Post a canned response as the caller, placeholders filled from the conversation, its contact and the caller; like posting a message (same rules, same `client_message_id` idempotency).", Some("PostCannedRequest"), 201, Some("PostedMessage"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/snooze", Snooze, Staff, "Snooze a conversation an agent holds until `until` (RFC 3339, in the future, within a year) or, without it, until the customer's next message, which ends any snooze. It leaves lists filtered with `snoozed=false` and comes back by itself (`conversation_updated` with change `snoozed`, then `unsnoozed` with a `reason`: `time`, `customer_message` or `staff`).", Some("SnoozeRequest"), 200, Some("Conversation"), &[]),
    endpoint(Method::DELETE, "/v1/conversations/{id}/snooze", Unsnooze, Staff, "End a snooze now (409 if not snoozed).", None, 200, Some("Conversation"), &[]),
    endpoint(Method::GET, "/v1/mentions", ListMentions, Staff, "The caller's mentions, newest first, and `unread`: how many are unread. An `@handle` in an internal note mentions the active colleague whose e-mail starts with `handle@` or whose name without spaces is `handle` (any case); that agent alone gets a `mentioned` event and, if the conversation was not in its list, becomes a participant.", None, 200, Some("MentionList"), &["limit"]),
    endpoint(Method::POST, "/v1/mentions/read", ReadMentions, Staff, "Mark every mention of the caller read (`unread` becomes 0).", None, 200, Some("MentionsRead"), &[]),
    endpoint(Method::GET, "/v1/conversations/{id}/transcript", Transcript, Authenticated, "The conversation whole, as `format` = `text` (plain text), `html` (a standalone page; every text escaped, served with a no-script policy) or `json` (the conversation and messages as the caller may see them); without `format`, `Accept: text/html` or `text/plain` choose, JSON otherwise. Internal notes appear for staff only (customers get their own conversation without them). At most 10,000 messages (`truncated`).", None, 200, Some("Transcript"), &["format"]),
    endpoint(Method::POST, "/v1/conversations/{id}/transcript/email", MailTranscript, Authenticated, "Mail the conversation's transcript (plain text and HTML, as the customer sees it: never internal notes) to its contact's e-mail address, the only address it ever goes to. The conversation's customer may ask once it is closed (409 `conflict` before), once per conversation within `--mail-transcript-window-secs` (429 `transcript_mailed_recently` with `Retry-After`); staff who can read it may ask any time. 409 `mail_not_configured` when the server has no SMTP relay; 422 `contact_has_no_email` when the contact gave no address. 202: queued in the mail outbox; `GET /v1/mail` shows how its sending went.", None, 202, Some("Mail"), &[]),
    endpoint(Method::GET, "/v1/mail", ListMail, Staff, "The mail log (admins), newest first: each e-mail the server sent or is sending (transcripts, replies to e-mail customers) with its state (`pending`, `sent`, `failed`), attempts and the relay's last error. Bodies are not shown.", None, 200, Some("MailList"), &["limit"]),
    endpoint(Method::GET, "/v1/reports/overview", ReportOverview, Staff, "The desk's figures over `from`..`to` (local dates YYYY-MM-DD, both included, in the IANA zone `tz`, default UTC; at most 366 days): conversations opened, closed and reopened, first response and resolution time (count, median and 90th percentile by nearest rank, seconds), CSAT (count, average, distribution). Admins and supervisors see the whole desk, or one agent's conversations with `agent_id`; an agent sees its own figures only (403 for another's). `format=csv` (or `Accept: text/csv`) answers CSV. Missing or bad `from`, `to`, `tz` is 422 naming it.", None, 200, Some("ReportOverview"), &["from", "to", "tz", "agent_id", "format"]),
    endpoint(Method::GET, "/v1/reports/breakdown", ReportBreakdown, Staff, "The overview's figures per `by` = `agent` (assigned agent; an agent's `closed` is what it handled), `department`, `channel` or `tag` (a conversation counts under each of its tags), one row per key in key order (`null` key: no agent or department). Same period, access and formats as the overview.", None, 200, Some("ReportBreakdown"), &["by", "from", "to", "tz", "agent_id", "format"]),
    endpoint(Method::GET, "/v1/reports/series", ReportSeries, Staff, "Conversations opened, closed and reopened per local `interval` = `day` (default) or `hour` (at most 31 days) of the period, each point's `start` in the caller's `tz`. Same access and formats as the overview.", None, 200, Some("ReportSeries"), &["interval", "from", "to", "tz", "agent_id", "format"]),
    endpoint(Method::GET, "/v1/reports/feedback", ReportFeedback, Staff, "The customers' feedback texts given in the period with their scores, newest first, at most `limit` (default 100, at most 500). Same access and formats as the overview (CSV cells that would run as a spreadsheet formula get a leading quote).", None, 200, Some("ReportFeedback"), &["limit", "from", "to", "tz", "agent_id", "format"]),
    endpoint(Method::GET, "/v1/events", Events, Authenticated, "Replay the caller's visible events after `since` (pass `next_since` back while `more`).", None, 200, Some("EventList"), &["since", "limit"]),
    endpoint(Method::GET, "/v1/ws", WebSocket, Authenticated, "Realtime: upgrade to the WebSocket protocol (PROTOCOL.md). Token by header, `access_token` query or subprotocol `chat.v1, <token>`.", None, 101, None, &["access_token"]),
    endpoint(Method::GET, "/v1/export", Export, Staff, "Everything the caller's tenant owns as JSON Lines (admins), streamed from one consistent state of the store: settings, staff, contacts, customer accounts, conversations with tags and participants, messages and notes, read cursors, events, canned responses, mentions, webhooks and their outbox. Without secrets: no password hashes, token digests or webhook secrets (`chat-server export` on the server's machine writes them). `chat-server import` reads it into an empty database. Uploaded files' bytes are not in it.", None, 200, Some("ndjson"), &[]),
    endpoint(Method::GET, "/v1/webhooks", ListWebhooks, Staff, "Event webhooks (admins), oldest first; secrets are never shown again.", None, 200, Some("WebhookList"), &[]),
    endpoint(Method::POST, "/v1/webhooks", CreateWebhook, Staff, "Register an event webhook (admins): every event it follows is written to its outbox with the event and posted signed (`X-Chat-Signature`), retried with backoff for a day. Without `secret` the server makes one; the answer shows it, once. A URL that is not http(s), or whose host resolves to a private or loopback address (unless the server runs with `--webhooks-allow-private`), is 422 on `url`.", Some("NewWebhook"), 201, Some("CreatedWebhook"), &[]),
    endpoint(Method::GET, "/v1/webhooks/{id}", GetWebhook, Staff, "One event webhook (admins).", None, 200, Some("Webhook"), &[]),
    endpoint(Method::PATCH, "/v1/webhooks/{id}", UpdateWebhook, Staff, "Change an event webhook's URL or events (admins); `state: active` resumes a paused one (its held deliveries go out in order), `paused` holds them.", Some("WebhookPatch"), 200, Some("Webhook"), &[]),
    endpoint(Method::DELETE, "/v1/webhooks/{id}", DeleteWebhook, Staff, "Delete an event webhook and its outbox (admins).", None, 204, None, &[]),
    endpoint(Method::GET, "/v1/webhooks/{id}/deliveries", ListDeliveries, Staff, "The webhook's delivery log (admins), newest event first: state, attempts, last status or error, response time; `before` pages by `seq`.", None, 200, Some("DeliveryList"), &["before", "limit"]),
    endpoint(Method::POST, "/v1/webhooks/{id}/deliveries/{seq}/redeliver", Redeliver, Staff, "Send a delivery again (admins), whatever its state: pending and due now.", None, 202, Some("Delivery"), &[]),
    endpoint(Method::GET, "/v1/inboxes", ListInboxes, Staff, "Inboxes (admins), oldest first: the channels customers write in through besides the widget. Tokens and secrets are never shown again.", None, 200, Some("InboxList"), &[]),
    endpoint(Method::POST, "/v1/inboxes", CreateInbox, Staff, "Create an inbox (admins). `whatsapp`: `phone_number_id`, `access_token` and `app_secret` (secrets, never shown), `api_url` (default the Graph API's); point the Meta app's webhook at `/v1/inboxes/{id}/whatsapp` with the answered token as its verify token; agents' and the bot's messages outside the 24-hour window after the customer's last message are refused (409) rather than sent; `template_name` and `template_language` name an approved template agents may send instead (its body variables given with each send) (`POST /v1/conversations/{id}/whatsapp-template`). `telegram`: `bot_token` (a secret, never shown), `api_url` (default the Bot API's), and `public_url`, this server's address as Telegram reaches it, for `setWebhook` (422 on `public_url` if Telegram refuses it, and nothing is kept), or `mode: polling` (no `public_url`) to read updates by `getUpdates` instead (the server calls `deleteWebhook`; one server polls at a time; the offset is stored); replies go out by `sendMessage`, `sendPhoto` or `sendDocument` through the outbox. `email`: `name` and optionally `from`, its own sender (else `--mail-from`); needs the server's SMTP relay (409 `mail_not_configured` without `--smtp-url` and `--mail-from`); mails arrive by `POST /v1/inboxes/{id}/email` with the inbox's token, replies leave through the mail outbox (`GET /v1/mail`). `api`: customer messages arrive by `POST /v1/inboxes/{id}/messages` with the inbox's token; agent and bot replies are delivered to `webhook_url` through the event-webhook outbox (signed with `X-Chat-Signature`, retried, in order per conversation; the delivery log is the webhook's, `webhook_id`). The answer shows the token and the webhook secret, once. A `webhook_url` that is not http(s) or resolves to a private address (unless `--webhooks-allow-private`) is 422.", Some("NewInbox"), 201, Some("CreatedInbox"), &[]),
    endpoint(Method::GET, "/v1/inboxes/{id}", GetInbox, Staff, "One inbox (admins), with its version as `ETag` (send it back as `If-Match` with a change).", None, 200, Some("Inbox"), &[]),
    endpoint(Method::PATCH, "/v1/inboxes/{id}", UpdateInbox, Staff, "Change an inbox (admins): each field given replaces the stored one, checked as at creation (422 names the field, and nothing changes). `name`; `email`: `from`, its own sender (`Support <help@shop.example>`; empty: back to the server's `--mail-from`); `whatsapp`: `template_name` with `template_language` (both empty remove the template), and a rotated `access_token` or `app_secret`; `telegram`: a rotated `bot_token` of the same bot; any kind but a `telegram` inbox in webhook mode: `rotate_token: true` makes a new inbox token, answered once as `token` (the old one stops working). A field of another kind's inbox is 422. Secrets are never answered. With `If-Match` (the `ETag` of a read) it applies only over that version: 412 `precondition_failed` otherwise. The kind, the provider's account and an `api` inbox's webhook (see `PATCH /v1/webhooks/{id}`) do not change here.", Some("InboxPatch"), 200, Some("UpdatedInbox"), &[]),
    endpoint(Method::DELETE, "/v1/inboxes/{id}", DeleteInbox, Staff, "Delete an inbox and its webhook (admins); its conversations stay.", None, 204, None, &[]),
    endpoint(Method::POST, "/v1/inboxes/{id}/messages", ReceiveInbound, Public, "A customer's message into an `api` inbox, authenticated by `Authorization: Bearer <the inbox's token>` (a wrong token or unknown inbox is 403, nothing stored). Opens the conversation of `contact.id` on the `api` channel or continues it; the bot, the queue and routing treat it like a widget message. Idempotent on `message.id`: a repeat answers 200 with the first message and stores nothing. With files: `multipart/form-data`, this JSON in a field called `message` and the files as file parts; they are checked like uploads (size, count and type decided from the bytes: 422 on `file` or `files`, and a refused file opens no conversation) and become the message's attachments.", Some("InboundMessage"), 201, Some("ReceivedMessage"), &[]),
    endpoint(Method::POST, "/v1/inboxes/{id}/telegram", ReceiveTelegram, Public, "Telegram's webhook for a `telegram` inbox: an `Update` of the Bot API, authenticated by `X-Telegram-Bot-Api-Secret-Token` (the inbox's token, registered by `setWebhook` as `secret_token` when the inbox is created with `public_url`); a wrong or missing one is 403, nothing stored. A message's text (or caption) is posted as the customer of chat `chat.id`, idempotent on `message_id`, with its `photo` (largest size), `document` or `voice` fetched by `getFile` and attached: a file over the tenant's `upload_max_bytes` or of a type it does not take is 422 on `file` and nothing is stored; a file Telegram does not give is 502. Other updates are acknowledged and not stored. (A `mode: polling` inbox reads the same updates by `getUpdates`.)", Some("TelegramUpdate"), 200, Some("TelegramReceived"), &[]),
    endpoint(Method::POST, "/v1/inboxes/{id}/email", ReceiveEmail, Public, "A customer's e-mail into an `email` inbox: the raw RFC 5322 message as the body (`Content-Type: message/rfc822`, at most 25 MiB, else 413), authenticated by `Authorization: Bearer <the inbox's token>` (a wrong token or unknown inbox is 403, nothing stored); `chat-server email-inbound` posts here from an MTA's pipe. The customer is the `From` address (a channel identity: an unverified claim on the contact, one contact per address and inbox, never joined with a verified contact). A mail whose `In-Reply-To`/`References` names one of our `Message-ID`s or the customer's earlier mail, in a conversation of this inbox with the same `From`, continues it (reopened like other channels); any other opens a new conversation titled by the subject. The text is the `text/plain` part, else the HTML part as text; attachments are checked like uploads (422 on `file`/`files`, nothing stored). Idempotent on `Message-ID` (a repeat answers 200 and stores nothing). Not a mail, or no `From`: 422 on `mail` or `from`, nothing stored. Agents' and the bot's replies go out by e-mail through the mail outbox: `Re: <subject>`, `In-Reply-To`/`References` the customer's last `Message-ID`.", Some("RawEmail"), 201, Some("ReceivedMessage"), &[]),
    endpoint(Method::GET, "/v1/inboxes/{id}/whatsapp", VerifyWhatsapp, Public, "The WhatsApp Cloud API's verify handshake for a `whatsapp` inbox: with `hub.mode=subscribe` and `hub.verify_token` the inbox's token, answers `hub.challenge` as text; else 403.", None, 200, Some("text"), &["hub.mode", "hub.verify_token", "hub.challenge"]),
    endpoint(Method::POST, "/v1/inboxes/{id}/whatsapp", ReceiveWhatsapp, Public, "The WhatsApp Cloud API's webhook for a `whatsapp` inbox, authenticated by `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>` (a wrong or missing one is 403, nothing stored). Each text message, and each image, document or audio message (its media fetched by `GET /{media-id}` and its url, with the access token, and attached; over the tenant's limit or of a refused type: 422 on `file`, nothing stored; not given: 502), is posted as the customer of its sender's number, idempotent on its id; statuses and other message types are acknowledged and not stored.", Some("WhatsappNotification"), 200, Some("WhatsappReceived"), &[]),
    endpoint(Method::POST, "/v1/conversations/{id}/whatsapp-template", SendTemplate, Staff, "Send the WhatsApp inbox's template (its `template_name` and `template_language`) to the conversation's customer, as the caller's message (whoever may reply): the one message WhatsApp takes outside the 24-hour window, to ask the customer to write again. The message is stored as `WhatsApp template <name> (<language>)` with metadata `whatsapp_template`, and goes out as `type: template`. 422 on `template` when the conversation is not a WhatsApp inbox's or its inbox has no template. Optional body: `client_message_id` (idempotency, as for messages) and `parameters`, the template's body variables in order (at most 20, each 1 to 1024 characters without new lines, tabs or more than four spaces in a row, else 422 on `parameters`), sent as the Cloud API's `components` and shown in the stored message (`WhatsApp template <name> (<language>): <p1> | <p2>`).", Some("TemplateRequest"), 201, Some("PostedMessage"), &[]),
];

/// The table requests are matched against: [`ENDPOINTS`] in a [`PathTable`], whose
/// [`Matched::Found`](crate::extension::Matched::Found) carries the endpoint's
/// [`EndpointSpec`] (its pattern names it in metrics and logs).
pub type EndpointTable = PathTable<&'static EndpointSpec>;

/// Builds the [`EndpointTable`].
pub fn endpoint_table() -> EndpointTable {
    PathTable::new(ENDPOINTS.iter().map(|e| (e.method.clone(), e.path, e)))
}
