//! The LLM bot: any OpenAI-compatible chat-completions service answers the customer.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_core::{
    Bot, BotDecision, BotErrorKind, BotTurn, ConversationId, Error, Message, MessageKind, Result,
    Sender, TenantId,
};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Request, Uri};
use serde::{Deserialize, Serialize};

use crate::http::{self, HttpClient};
use crate::openai::{self, ChatMessage, ChatRequest, Completion, HANDOFF_TOOL, StreamAccumulator};
use crate::sse::SseDecoder;

/// Default system prompt; `{tenant}` is replaced by the tenant's name.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are the first-line customer support assistant of \
{tenant}. Answer briefly and politely, in the customer's language. Never invent prices, \
orders or policies. If the customer asks for a human, or you cannot help, call the \
handoff_to_human tool; if you cannot call tools, reply with exactly [HANDOFF].";

/// Default reply meaning "hand off", for models without tool support.
pub const DEFAULT_HANDOFF_SENTINEL: &str = "[HANDOFF]";

/// Configuration of the [`LlmBot`].
///
/// ```
/// use chat_bots::LlmConfig;
/// let config = LlmConfig {
///     api_key_env: Some("OPENAI_API_KEY".into()),
///     stream: true,
///     ..LlmConfig::new("http://127.0.0.1:11434/v1", "llama3.2")
/// };
/// assert_eq!(config.history, 20);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LlmConfig {
    /// Base URL of the API, up to and including its version, e.g.
    /// `http://127.0.0.1:11434/v1`; `/chat/completions` is appended; `https://` is verified against the bundled and
    /// system roots and `ca_file`.
    pub base_url: String,
    /// Model name, e.g. `gpt-4o-mini` or `llama3.2`.
    pub model: String,
    /// Name of the environment variable holding the API key, sent as
    /// `Authorization: Bearer <key>`. `None` sends no key (Ollama, llama.cpp).
    pub api_key_env: Option<String>,
    /// The system message; `{tenant}` is replaced by the tenant's name. Empty sends none.
    pub system_prompt: String,
    /// Most recent customer and staff messages sent to the model.
    pub history: usize,
    /// Time for the whole exchange, streamed answer included.
    pub timeout: Duration,
    /// Sampling temperature; `None` leaves the service's default.
    pub temperature: Option<f32>,
    /// Cap on generated tokens; `None` leaves the service's default.
    pub max_tokens: Option<u32>,
    /// Ask for server-sent events and relay text deltas as they arrive.
    pub stream: bool,
    /// Offer the `handoff_to_human` tool. Turn off for servers that refuse `tools`
    /// (vLLM without `--enable-auto-tool-choice`, llama.cpp without `--jinja`).
    pub handoff_tool: bool,
    /// A reply starting with this text is a handoff (for models without tools); the rest
    /// of the reply, if any, is said to the customer. `None` turns it off.
    pub handoff_sentinel: Option<String>,
    /// Said to the customer on a handoff when the model said nothing itself.
    pub handoff_message: Option<String>,
    /// Departments the model may route to; empty allows any (the model's guess is kept).
    pub departments: Vec<String>,
    /// Most bytes held for one answer: a whole JSON answer, one SSE line, or the text and
    /// tool arguments gathered from a stream. More is an error, never unbounded memory.
    pub max_response_bytes: usize,
    /// Longest stored reply, in characters (the engine refuses longer messages; see
    /// `chat_core::Limits::max_message_chars`).
    pub max_reply_chars: usize,
    /// PEM file of extra CA certificates to trust for an `https://` service, beside the
    /// bundled Mozilla roots and the system's (a private CA in front of a self-hosted
    /// model).
    pub ca_file: Option<std::path::PathBuf>,
}

impl LlmConfig {
    /// Defaults for this service and model.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            ..Self::default()
        }
    }
}

impl Default for LlmConfig {
    /// A local Ollama with `llama3.2`, streaming, tools on, 30 s timeout.
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:11434/v1".into(),
            model: "llama3.2".into(),
            api_key_env: None,
            system_prompt: DEFAULT_SYSTEM_PROMPT.into(),
            history: 20,
            timeout: Duration::from_secs(30),
            temperature: Some(0.2),
            max_tokens: None,
            stream: true,
            handoff_tool: true,
            handoff_sentinel: Some(DEFAULT_HANDOFF_SENTINEL.into()),
            handoff_message: None,
            departments: Vec::new(),
            max_response_bytes: 64 * 1024,
            max_reply_chars: 10_000,
            ca_file: None,
        }
    }
}

/// One piece of a streamed answer, for relaying to the conversation's clients as an
/// ephemeral event (not stored).
///
/// Pieces of one answer share `tenant_id`, `conversation_id` and `reply_to_seq` and count
/// up from `index` 0. The last piece has an empty `text` and an `end`: on
/// [`StreamEnd::Reply`] the stored bot message follows and replaces the pieces; otherwise
/// the pieces should be discarded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delta {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Conversation being answered.
    pub conversation_id: ConversationId,
    /// Sequence of the customer message being answered.
    pub reply_to_seq: u64,
    /// Position of this piece in the answer, from 0.
    pub index: u32,
    /// New text (empty on the last piece).
    pub text: String,
    /// Set on the last piece: how the answer ended.
    pub end: Option<StreamEnd>,
}

/// How a streamed answer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEnd {
    /// The answer is stored as a bot message, which follows.
    Reply,
    /// The model handed off; the pieces were not the answer.
    Handoff,
    /// The answer failed (timeout, broken stream); the engine hands off.
    Failed,
}

/// Receives the pieces of streamed answers. Called on the bot's task while it reads the
/// stream: keep it quick (send to a channel, publish to a bus).
pub type DeltaCallback = Arc<dyn Fn(Delta) + Send + Sync>;

/// An API key that never shows in `Debug` output or logs.
#[derive(Clone)]
struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A bot backed by an OpenAI-compatible chat-completions service (OpenAI, Ollama,
/// llama.cpp server, vLLM).
///
/// The model asks for a human by calling the `handoff_to_human` tool (optional
/// `department` and `reason` arguments) or by answering with the sentinel. Timeouts,
/// HTTP and format errors are [`Error::Bot`], on which the engine hands off.
///
/// ```
/// use std::sync::Arc;
/// use chat_bots::{LlmBot, LlmConfig};
/// use chat_core::{Engine, memory::MemoryStore};
///
/// let (deltas, mut pieces) = tokio::sync::mpsc::unbounded_channel();
/// let bot = LlmBot::new(LlmConfig::new("http://127.0.0.1:11434/v1", "llama3.2"))
///     .unwrap()
///     .with_delta_channel(deltas);
/// let engine = Engine::builder(Arc::new(MemoryStore::new())).bot(Arc::new(bot)).build();
/// # let _ = (engine, pieces.try_recv());
/// ```
#[derive(Clone)]
pub struct LlmBot {
    config: LlmConfig,
    endpoint: Uri,
    api_key: Option<ApiKey>,
    client: HttpClient,
    on_delta: Option<DeltaCallback>,
}

impl fmt::Debug for LlmBot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmBot")
            .field("config", &self.config)
            .field("endpoint", &self.endpoint)
            .field("api_key", &self.api_key)
            .field("on_delta", &self.on_delta.is_some())
            .finish_non_exhaustive()
    }
}

impl LlmBot {
    /// A bot with this configuration, reading the API key from `api_key_env` now.
    ///
    /// [`Error::Validation`] when the base URL is not an absolute `http://` or `https://`
    /// URL, `ca_file` holds no readable certificate, the model is blank, the history window is 0, or the key's variable is unset.
    pub fn new(config: LlmConfig) -> Result<Self> {
        let endpoint = http::endpoint("base_url", &config.base_url, "/chat/completions")?;
        if config.model.trim().is_empty() {
            return Err(Error::validation("model", "must not be empty"));
        }
        if config.history == 0 {
            return Err(Error::validation("history", "must be at least 1"));
        }
        let api_key = match &config.api_key_env {
            None => None,
            Some(var) => match std::env::var(var) {
                Ok(key) if !key.trim().is_empty() => Some(ApiKey(key.trim().to_owned())),
                _ => {
                    return Err(Error::validation(
                        "api_key_env",
                        format!("environment variable `{var}` is not set"),
                    ));
                }
            },
        };
        let client = http::client("ca_file", config.ca_file.as_deref())?;
        Ok(Self {
            config,
            endpoint,
            api_key,
            client,
            on_delta: None,
        })
    }

    /// Uses this API key instead of (or without) an environment variable.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(ApiKey(key.into()));
        self
    }

    /// Calls `callback` with each piece of a streamed answer (see [`Delta`]).
    pub fn on_delta(mut self, callback: impl Fn(Delta) + Send + Sync + 'static) -> Self {
        self.on_delta = Some(Arc::new(callback));
        self
    }

    /// Sends each piece of a streamed answer to this channel (see [`Delta`]). Pieces are
    /// dropped once the receiver is gone.
    pub fn with_delta_channel(self, sender: tokio::sync::mpsc::UnboundedSender<Delta>) -> Self {
        self.on_delta(move |delta| {
            let _ = sender.send(delta);
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    fn sentinel(&self) -> Option<&str> {
        self.config
            .handoff_sentinel
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// `messages`: the system prompt, then the window of history. Customers speak as
    /// `user`; the bot and agents as `assistant`; system events and notes are left out.
    fn messages<'t>(&self, turn: &BotTurn<'t>) -> Vec<ChatMessage<'t>> {
        let mut messages = Vec::new();
        let prompt = self
            .config
            .system_prompt
            .replace("{tenant}", &turn.tenant.name);
        if !prompt.trim().is_empty() {
            messages.push(ChatMessage {
                role: "system",
                content: prompt.into(),
            });
        }
        let spoken: Vec<ChatMessage<'t>> = turn.history.iter().filter_map(chat_message).collect();
        let start = spoken.len().saturating_sub(self.config.history);
        messages.extend(spoken.into_iter().skip(start));
        messages
    }

    fn request_body(&self, turn: &BotTurn<'_>) -> Result<Vec<u8>> {
        let request = ChatRequest {
            model: &self.config.model,
            messages: self.messages(turn),
            stream: self.config.stream,
            temperature: self.config.temperature,
            max_tokens: self.config.max_tokens,
            tools: self
                .config
                .handoff_tool
                .then(|| openai::handoff_tools(&self.config.departments)),
        };
        serde_json::to_vec(&request).map_err(|e| http::config_error("encoding the request", e))
    }

    async fn complete(&self, turn: &BotTurn<'_>, relay: &mut Relay) -> Result<Completion> {
        let accept = if self.config.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut request = Request::post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, accept)
            .header(USER_AGENT, http::USER_AGENT);
        if let Some(ApiKey(key)) = &self.api_key {
            let mut value = HeaderValue::try_from(format!("Bearer {key}")).map_err(|_| {
                Error::bot(
                    BotErrorKind::Config,
                    "the API key is not a valid header value",
                )
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let request = request
            .body(Full::new(Bytes::from(self.request_body(turn)?)))
            .map_err(|e| http::config_error("building the request", e))?;
        let response = http::send(&self.client, request).await?;
        http::check_status(&response)?;
        // Servers that ignore `stream: true` answer with plain JSON: go by what came.
        let streamed = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        let mut body = response.into_body();
        if streamed {
            self.read_stream(&mut body, relay).await
        } else {
            let bytes = http::read_bounded(&mut body, self.config.max_response_bytes).await?;
            openai::parse_response(&bytes)
        }
    }

    async fn read_stream(&self, body: &mut Incoming, relay: &mut Relay) -> Result<Completion> {
        let max = self.config.max_response_bytes;
        let mut decoder = SseDecoder::new(max);
        let mut answer = StreamAccumulator::new(max);
        let mut payloads = Vec::new();
        let mut take = |payloads: &mut Vec<String>, answer: &mut StreamAccumulator| {
            for payload in payloads.drain(..) {
                if answer.is_done() {
                    break;
                }
                if let Some(text) = answer.push(&payload)? {
                    relay.push(&text);
                }
            }
            Ok::<_, Error>(())
        };
        while let Some(chunk) = http::next_chunk(body).await? {
            decoder.feed(&chunk, &mut payloads)?;
            take(&mut payloads, &mut answer)?;
            if answer.is_done() {
                return answer.finish();
            }
        }
        decoder.finish(&mut payloads)?;
        take(&mut payloads, &mut answer)?;
        answer.finish()
    }

    /// Turns the model's answer into the engine's decision.
    fn decide(&self, completion: Completion) -> Result<BotDecision> {
        let text = http::clean_text(&completion.text, self.config.max_reply_chars);
        if let Some(call) = completion
            .tool_calls
            .iter()
            .find(|c| c.name.trim() == HANDOFF_TOOL)
        {
            // The call alone says "a human, please": unreadable arguments lose only detail.
            let args: HandoffArgs = serde_json::from_str(&call.arguments).unwrap_or_default();
            return Ok(self.handoff(args.department, args.reason, &text));
        }
        if let Some(call) = completion.tool_calls.first() {
            let name: String = call.name.chars().take(64).collect();
            return Err(Error::bot(
                BotErrorKind::Format,
                format!("the model called an unknown tool `{name}`"),
            ));
        }
        if let Some(rest) = self.sentinel().and_then(|s| text.strip_prefix(s)) {
            return Ok(self.handoff(None, None, rest.trim()));
        }
        if text.is_empty() {
            return Err(Error::bot(
                BotErrorKind::Format,
                "the model gave an empty answer",
            ));
        }
        let metadata = BTreeMap::from([("bot.model".to_owned(), self.config.model.clone())]);
        Ok(BotDecision::Reply { text, metadata })
    }

    fn handoff(
        &self,
        department: Option<String>,
        reason: Option<String>,
        said: &str,
    ) -> BotDecision {
        let departments = &self.config.departments;
        let department = http::short_text(department, 200)
            .filter(|d| departments.is_empty() || departments.contains(d));
        let reason =
            http::short_text(reason, 500).or_else(|| Some("the model asked for a human".into()));
        let message = if said.is_empty() {
            self.config.handoff_message.clone()
        } else {
            Some(said.to_owned())
        };
        BotDecision::Handoff {
            department,
            reason,
            message,
        }
    }
}

#[async_trait]
impl Bot for LlmBot {
    async fn respond(&self, turn: BotTurn<'_>) -> Result<BotDecision> {
        let mut relay = Relay::new(self.on_delta.clone(), &turn, self.sentinel());
        let timeout = self.config.timeout;
        let decision = match tokio::time::timeout(timeout, self.complete(&turn, &mut relay)).await {
            Ok(completion) => completion.and_then(|c| self.decide(c)),
            Err(_) => Err(http::timed_out(timeout)),
        };
        relay.end(match &decision {
            Ok(BotDecision::Reply { .. }) => StreamEnd::Reply,
            Ok(BotDecision::Handoff { .. }) => StreamEnd::Handoff,
            _ => StreamEnd::Failed,
        });
        decision
    }
}

/// Arguments of the `handoff_to_human` call.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HandoffArgs {
    department: Option<String>,
    reason: Option<String>,
}

/// A history message as the model sees it, or `None` when the model should not see it.
fn chat_message(message: &Message) -> Option<ChatMessage<'_>> {
    if message.deleted_at.is_some()
        || matches!(message.kind, MessageKind::Note | MessageKind::Event)
    {
        return None;
    }
    let role = match message.sender {
        Sender::Customer => "user",
        Sender::Bot | Sender::Agent(_) => "assistant",
        Sender::System => return None,
    };
    let content = if message.attachments.is_empty() {
        message.body.as_str().into()
    } else {
        let names: Vec<&str> = message
            .attachments
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        format!("{}\n[attached: {}]", message.body, names.join(", "))
            .trim()
            .to_owned()
            .into()
    };
    (!message.body.trim().is_empty() || !message.attachments.is_empty())
        .then_some(ChatMessage { role, content })
}

/// Passes streamed text on to the [`DeltaCallback`], and always closes the stream with an
/// end piece once something was sent: after the decision, or on drop when the answer was
/// abandoned (timeout, the caller went away).
struct Relay {
    sink: Option<DeltaCallback>,
    tenant_id: TenantId,
    conversation_id: ConversationId,
    reply_to_seq: u64,
    sentinel: Option<String>,
    text: String,
    sent: usize,
    index: u32,
    ended: bool,
}

impl Relay {
    fn new(sink: Option<DeltaCallback>, turn: &BotTurn<'_>, sentinel: Option<&str>) -> Self {
        let reply_to_seq = turn
            .history
            .iter()
            .rev()
            .find(|m| m.sender == Sender::Customer)
            .map_or(turn.conversation.last_seq, |m| m.seq);
        Self {
            sink,
            tenant_id: turn.tenant.id,
            conversation_id: turn.conversation.id,
            reply_to_seq,
            sentinel: sentinel.map(str::to_owned),
            text: String::new(),
            sent: 0,
            index: 0,
            ended: false,
        }
    }

    fn push(&mut self, piece: &str) {
        if self.sink.is_none() {
            return;
        }
        self.text.push_str(piece);
        if self.index == 0 {
            // Hold back text that may yet turn out to be the handoff sentinel, so customers
            // never see "[HANDOFF]" flash by.
            if let Some(sentinel) = &self.sentinel {
                let start = self.text.trim_start();
                if sentinel.starts_with(start) || start.starts_with(sentinel.as_str()) {
                    return;
                }
            }
        }
        let text: String = self.text[self.sent..]
            .chars()
            .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
            .collect();
        self.sent = self.text.len();
        if !text.is_empty() {
            self.send(text, None);
        }
    }

    fn end(&mut self, end: StreamEnd) {
        self.ended = true;
        if self.index > 0 {
            self.send(String::new(), Some(end));
        }
    }

    fn send(&mut self, text: String, end: Option<StreamEnd>) {
        if let Some(sink) = &self.sink {
            sink(Delta {
                tenant_id: self.tenant_id,
                conversation_id: self.conversation_id,
                reply_to_seq: self.reply_to_seq,
                index: self.index,
                text,
                end,
            });
            self.index += 1;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if !self.ended {
            self.end(StreamEnd::Failed);
        }
    }
}
