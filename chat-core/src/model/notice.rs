//! The desk's own notices in a conversation ("Assigned to Dana", "Conversation closed"):
//! system messages whose English body is for readers that know nothing else (transcripts,
//! webhooks, older clients), and whose metadata names the notice and its parameters, so
//! the console and the widget can write it in the reader's language.

use std::collections::BTreeMap;

/// Metadata key of a system message naming its notice (`assigned`, `closed`, …).
pub const NOTICE_KEY: &str = "notice";
/// Metadata key of the agent's name in an `assigned` notice.
pub const NOTICE_NAME_KEY: &str = "notice.name";

/// A notice the engine writes into a conversation when its mode or owner changes.
///
/// ```
/// use chat_core::Notice;
/// let n = Notice::Assigned { name: "Dana".into() };
/// assert_eq!(n.body(), "Assigned to Dana");
/// assert_eq!(n.metadata()["notice"], "assigned");
/// assert_eq!(n.metadata()["notice.name"], "Dana");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// Handed to a human: waiting in the queue, with the customer's or bot's reason.
    Queued {
        /// Why, when the handoff said (shown to the customer).
        reason: Option<String>,
    },
    /// Put back in the queue: nobody answered within `minutes`.
    Requeued {
        /// The desk's requeue time, in minutes.
        minutes: u64,
    },
    /// Closed by the desk: the customer did not write for `minutes`.
    ClosedIdle {
        /// The desk's idle time, in minutes.
        minutes: u64,
    },
    /// Moved from one party to another.
    Transferred {
        /// Who had it.
        from: Party,
        /// Who has it now.
        to: Party,
    },
    /// Back with the bot.
    BotAgain,
    /// Paused.
    Paused,
    /// Closed.
    Closed,
    /// Reopened.
    Reopened,
    /// The owner let it go: back in the queue.
    Unassigned,
    /// Given to an agent, named as customers see it.
    Assigned {
        /// The agent's display name.
        name: String,
    },
}

/// One side of a transfer, as the customer may read it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Party {
    /// An agent, by display name.
    Agent(String),
    /// An agent the reader is not told about.
    PreviousAgent,
    /// The queue.
    Queue,
    /// A department (the customer is not told which).
    Team,
}

impl Party {
    fn kind(&self) -> &'static str {
        match self {
            Party::Agent(_) => "agent",
            Party::PreviousAgent => "previous_agent",
            Party::Queue => "queue",
            Party::Team => "team",
        }
    }

    fn english(&self) -> String {
        match self {
            Party::Agent(name) => name.clone(),
            Party::PreviousAgent => "the previous agent".into(),
            Party::Queue => "the queue".into(),
            Party::Team => "another team".into(),
        }
    }

    fn describe(&self, side: &str, m: &mut BTreeMap<String, String>) {
        m.insert(format!("notice.{side}"), self.kind().to_owned());
        if let Party::Agent(name) = self {
            m.insert(format!("notice.{side}_name"), name.clone());
        }
    }
}

impl Notice {
    /// The notice's word in metadata and in the clients' string tables.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::Queued { .. } => "queued",
            Notice::Requeued { .. } => "requeued",
            Notice::ClosedIdle { .. } => "closed_idle",
            Notice::Transferred { .. } => "transferred",
            Notice::BotAgain => "bot",
            Notice::Paused => "paused",
            Notice::Closed => "closed",
            Notice::Reopened => "reopened",
            Notice::Unassigned => "unassigned",
            Notice::Assigned { .. } => "assigned",
        }
    }

    /// The stored body, in English.
    pub fn body(&self) -> String {
        match self {
            Notice::Queued { reason: None } => "Waiting for an agent".into(),
            Notice::Queued { reason: Some(r) } => format!("Waiting for an agent ({r})"),
            Notice::Requeued { minutes } => format!("Requeued: no answer within {minutes} minutes"),
            Notice::ClosedIdle { minutes } => {
                format!("Closed after {minutes} minutes without a reply from the customer")
            }
            Notice::Transferred { from, to } => {
                format!("Transferred from {} to {}", from.english(), to.english())
            }
            Notice::BotAgain => "The bot is answering again".into(),
            Notice::Paused => "Conversation paused".into(),
            Notice::Closed => "Conversation closed".into(),
            Notice::Reopened => "Conversation reopened".into(),
            Notice::Unassigned => "Unassigned; waiting for an agent".into(),
            Notice::Assigned { name } => format!("Assigned to {name}"),
        }
    }

    /// The message metadata that names it: `notice` and its parameters: `notice.name`
    /// (assigned), `notice.reason` (queued), `notice.minutes` (requeued, closed_idle),
    /// `notice.from`/`notice.to` (`agent`, `previous_agent`, `queue` or `team`) with
    /// `notice.from_name`/`notice.to_name` for an agent (transferred).
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::from([(NOTICE_KEY.to_owned(), self.kind().to_owned())]);
        match self {
            Notice::Assigned { name } => {
                m.insert(NOTICE_NAME_KEY.to_owned(), name.clone());
            }
            Notice::Queued { reason: Some(r) } => {
                m.insert("notice.reason".to_owned(), r.clone());
            }
            Notice::Requeued { minutes } | Notice::ClosedIdle { minutes } => {
                m.insert("notice.minutes".to_owned(), minutes.to_string());
            }
            Notice::Transferred { from, to } => {
                from.describe("from", &mut m);
                to.describe("to", &mut m);
            }
            _ => {}
        }
        m
    }
}
