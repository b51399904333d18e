//! Bots: the first responder in `bot` mode.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::MessageId;
use crate::model::{Conversation, Message, Sender, Tenant};

/// Metadata key the rule bot sets on replies that did not answer anything.
pub const BOT_FALLBACK_KEY: &str = "bot.fallback";

/// Metadata key on the bot's handoff message: the department asked for (empty for none).
/// A crash between that message and the queueing leaves it as the conversation's last
/// message in `bot` mode, and the engine finishes the handoff from it.
pub const BOT_HANDOFF_KEY: &str = "bot.handoff";

/// Metadata key on the bot's handoff message: why it handed off, if it said.
pub const BOT_HANDOFF_REASON_KEY: &str = "bot.handoff_reason";

/// The `client_message_id` of the bot's answer to a customer message.
///
/// The store keeps one message per sender and key, so however often the turn for one
/// customer message runs (a crash in between, a client's retry, the start-up resume),
/// the customer gets one answer; looking the key up finds the answer given.
pub fn bot_reply_key(customer_message: MessageId) -> String {
    format!("{REPLY_KEY_PREFIX}{customer_message}")
}

const REPLY_KEY_PREFIX: &str = "bot-reply:";

/// Whether `client_message_id` is a [`bot_reply_key`] (of any customer message).
pub(crate) fn is_reply_key(client_message_id: &str) -> bool {
    client_message_id.starts_with(REPLY_KEY_PREFIX)
}

/// What the bot sees when a customer writes in `bot` mode.
#[derive(Debug, Clone, Copy)]
pub struct BotTurn<'a> {
    /// The tenant.
    pub tenant: &'a Tenant,
    /// The conversation, after the customer's message was stored.
    pub conversation: &'a Conversation,
    /// Recent customer-visible messages, oldest first; the last is the customer's.
    pub history: &'a [Message],
}

impl BotTurn<'_> {
    /// The customer's message that triggered this turn.
    pub fn last_customer_text(&self) -> &str {
        self.history
            .iter()
            .rev()
            .find(|m| m.sender == Sender::Customer)
            .map_or("", |m| m.body.as_str())
    }
}

/// What the bot decided.
#[derive(Debug, Clone, PartialEq)]
pub enum BotDecision {
    /// Answer the customer.
    Reply {
        /// The answer.
        text: String,
        /// Stored on the message (e.g. which intent matched).
        metadata: BTreeMap<String, String>,
    },
    /// Ask for a human: the conversation goes to the queue.
    Handoff {
        /// Route to this department.
        department: Option<String>,
        /// Why (kept in the system message).
        reason: Option<String>,
        /// Said to the customer before queueing.
        message: Option<String>,
    },
    /// Say nothing.
    Silent,
}

/// A bot. The engine consults it only in `bot` mode, never after a handoff.
#[async_trait]
pub trait Bot: Send + Sync + 'static {
    /// Decides how to answer the newest customer message.
    async fn respond(&self, turn: BotTurn<'_>) -> Result<BotDecision>;
}

/// A bot that never answers; customers wait for an agent's takeover or handoff.
#[derive(Debug, Default, Clone, Copy)]
pub struct SilentBot;

#[async_trait]
impl Bot for SilentBot {
    async fn respond(&self, _: BotTurn<'_>) -> Result<BotDecision> {
        Ok(BotDecision::Silent)
    }
}

/// One keyword rule of the [`RuleBot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// Name, recorded on replies as `bot.intent`.
    pub name: String,
    /// Words or phrases; any one matching (whole words, case-insensitive) fires the intent.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Regular expressions (case-insensitive); any one matching fires the intent.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// The answer.
    pub answer: String,
}

/// Configuration of the [`RuleBot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuleBotConfig {
    /// Keyword rules, first match wins.
    pub intents: Vec<Intent>,
    /// Phrases that mean "give me a human", in several languages.
    pub handoff_phrases: Vec<String>,
    /// Answer when nothing matched.
    pub fallback: String,
    /// Hand off after this many unanswered turns in a row (0 = never).
    pub handoff_after_unanswered: u32,
    /// Said to the customer when handing off.
    pub handoff_message: String,
}

impl Default for RuleBotConfig {
    fn default() -> Self {
        Self {
            intents: vec![
                Intent {
                    name: "greeting".into(),
                    keywords: vec!["hello".into(), "hi".into(), "halo".into(), "hola".into()],
                    patterns: Vec::new(),
                    answer: "Hello! How can I help you today?".into(),
                },
                Intent {
                    name: "hours".into(),
                    keywords: vec!["opening hours".into(), "open".into(), "hours".into()],
                    patterns: Vec::new(),
                    answer: "We are open Monday to Friday, 9:00 to 17:00.".into(),
                },
            ],
            handoff_phrases: [
                "human",
                "agent",
                "operator",
                "person",
                "representative",
                "manusia",
                "petugas",
                "humano",
                "agente",
                "mensch",
                "mitarbeiter",
                "humain",
                "opérateur",
            ]
            .map(String::from)
            .to_vec(),
            fallback: "Sorry, I did not understand. Could you rephrase, or ask for an agent?"
                .into(),
            handoff_after_unanswered: 3,
            handoff_message: "Connecting you to a human agent, please wait a moment.".into(),
        }
    }
}

/// Keyword bot: answers intents, hands off on request or after repeated misses.
///
/// ```
/// # tokio_test_block_on(async {
/// use chat_core::{RuleBot, RuleBotConfig};
/// let bot = RuleBot::new(RuleBotConfig::default()).unwrap();
/// assert!(bot.wants_human("Can I talk to a HUMAN please?"));
/// assert!(bot.wants_human("saya mau bicara dengan manusia"));
/// assert!(!bot.wants_human("what are your hours?"));
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(_: F) {}
/// ```
#[derive(Debug, Clone)]
pub struct RuleBot {
    config: RuleBotConfig,
    /// Compiled `patterns` of each intent, in intent order.
    patterns: Vec<Vec<regex::Regex>>,
}

impl Default for RuleBot {
    fn default() -> Self {
        let config = RuleBotConfig::default();
        let patterns = vec![Vec::new(); config.intents.len()];
        Self { config, patterns }
    }
}

impl RuleBot {
    /// A rule bot with this configuration; [`Error::Validation`](crate::Error::Validation)
    /// names the first pattern that is not a valid regular expression.
    pub fn new(config: RuleBotConfig) -> Result<Self> {
        let patterns = config
            .intents
            .iter()
            .map(|intent| {
                intent
                    .patterns
                    .iter()
                    .map(|p| {
                        regex::RegexBuilder::new(p)
                            .case_insensitive(true)
                            .size_limit(1 << 20)
                            .build()
                            .map_err(|e| {
                                crate::Error::validation("intents.patterns", format!("`{p}`: {e}"))
                            })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { config, patterns })
    }

    /// A rule bot from its JSON configuration (the format of [`RuleBotConfig`]).
    pub fn from_json(json: &str) -> Result<Self> {
        let config: RuleBotConfig = serde_json::from_str(json)
            .map_err(|e| crate::Error::validation("rules", e.to_string()))?;
        Self::new(config)
    }

    /// Whether the text asks for a human.
    pub fn wants_human(&self, text: &str) -> bool {
        self.config
            .handoff_phrases
            .iter()
            .any(|p| contains_phrase(text, p))
    }

    fn intent(&self, text: &str) -> Option<&Intent> {
        self.config
            .intents
            .iter()
            .zip(&self.patterns)
            .find_map(|(intent, patterns)| {
                let hit = intent.keywords.iter().any(|k| contains_phrase(text, k))
                    || patterns.iter().any(|r| r.is_match(text));
                hit.then_some(intent)
            })
    }
}

#[async_trait]
impl Bot for RuleBot {
    async fn respond(&self, turn: BotTurn<'_>) -> Result<BotDecision> {
        let text = turn.last_customer_text();
        if self.wants_human(text) {
            return Ok(BotDecision::Handoff {
                department: None,
                reason: Some("customer asked for a human".into()),
                message: Some(self.config.handoff_message.clone()),
            });
        }
        if let Some(intent) = self.intent(text) {
            let metadata = BTreeMap::from([("bot.intent".to_owned(), intent.name.clone())]);
            return Ok(BotDecision::Reply {
                text: intent.answer.clone(),
                metadata,
            });
        }
        // Misses in a row: the bot's own trailing fallback replies, read from history so
        // the bot keeps no state of its own.
        let misses = turn
            .history
            .iter()
            .rev()
            .filter(|m| m.sender == Sender::Bot)
            .take_while(|m| m.metadata.contains_key(BOT_FALLBACK_KEY))
            .count() as u32;
        let limit = self.config.handoff_after_unanswered;
        if limit > 0 && misses + 1 >= limit {
            return Ok(BotDecision::Handoff {
                department: None,
                reason: Some(format!("bot could not answer {limit} times")),
                message: Some(self.config.handoff_message.clone()),
            });
        }
        let metadata = BTreeMap::from([(BOT_FALLBACK_KEY.to_owned(), "true".to_owned())]);
        Ok(BotDecision::Reply {
            text: self.config.fallback.clone(),
            metadata,
        })
    }
}

/// Whole-word, case-insensitive phrase match.
fn contains_phrase(text: &str, phrase: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let text = words(text);
    let phrase = words(phrase);
    !phrase.is_empty() && text.windows(phrase.len()).any(|w| w == phrase.as_slice())
}
