//! The conversation mode state machine.
//!
//! | from \ to | bot | queued | agent | paused | closed | archived |
//! |-----------|-----|--------|-------|--------|--------|----------|
//! | bot       |  -  | handoff | take over | pause | close | - |
//! | queued    | cancel handoff | - | assign / claim | - | close | - |
//! | agent     | back to bot | unassign / requeue | - | pause | close | - |
//! | paused    | resume with bot | requeue | resume | - | close | - |
//! | closed    | reopen | reopen | reopen | - | - | archive |
//! | archived  | - | - | - | - | restore | - |
//!
//! A dash is an illegal transition: [`Mode::check`] returns
//! [`InvalidTransition`], never a silent no-op,
//! including for "to the mode it is already in".
//!
//! How the seeds' vocabularies map onto it:
//!
//! | seed | their word | our mode |
//! |------|------------|----------|
//! | 000 quick chat | `active` | `bot` |
//! | 000 quick chat | `waiting_agent` | `queued` |
//! | 000 quick chat | `ended` | `closed` |
//! | 001 message center | `bot` / `agent` / `paused` / `closed` | same names |
//! | 002 salon chat | `active` / `closed` | `agent` / `closed` |
//! | 003 live chat | `pending` | `queued` |
//! | 003 live chat | `active` | `agent` |
//! | 003 live chat | `closed` / `archived` | same names |
//! | 004 AI chatbot | (personal chats, always answered by the bot) | `bot` |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Who is answering a conversation right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The bot answers.
    Bot,
    /// Waiting in the queue for a human.
    Queued,
    /// An agent is assigned and answers.
    Agent,
    /// On hold: nobody answers automatically; the assigned agent keeps it.
    Paused,
    /// Finished; may be rated, reopened or archived.
    Closed,
    /// Put away; read-only.
    Archived,
}

impl Mode {
    /// Every mode, in lifecycle order.
    pub const ALL: [Mode; 6] = [
        Mode::Bot,
        Mode::Queued,
        Mode::Agent,
        Mode::Paused,
        Mode::Closed,
        Mode::Archived,
    ];

    /// The snake_case name used in JSON and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Bot => "bot",
            Mode::Queued => "queued",
            Mode::Agent => "agent",
            Mode::Paused => "paused",
            Mode::Closed => "closed",
            Mode::Archived => "archived",
        }
    }

    /// Whether the state machine allows `self -> to`.
    pub fn can_become(self, to: Mode) -> bool {
        use Mode::*;
        matches!(
            (self, to),
            (Bot, Queued | Agent | Paused | Closed)
                | (Queued, Bot | Agent | Closed)
                | (Agent, Bot | Queued | Paused | Closed)
                | (Paused, Bot | Queued | Agent | Closed)
                | (Closed, Bot | Queued | Agent | Archived)
                | (Archived, Closed)
        )
    }

    /// `Ok(())` if `self -> to` is legal, else [`InvalidTransition`] (which `?` turns
    /// into [`Error::InvalidTransition`](crate::Error::InvalidTransition)).
    pub fn check(self, to: Mode) -> Result<(), InvalidTransition> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(InvalidTransition { from: self, to })
        }
    }

    /// Open conversations are those not closed or archived.
    pub fn is_open(self) -> bool {
        !matches!(self, Mode::Closed | Mode::Archived)
    }

    /// Modes that count against an agent's capacity.
    pub fn holds_agent(self) -> bool {
        matches!(self, Mode::Agent | Mode::Paused)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, UnknownMode> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownMode(s.to_owned()))
    }
}

/// A move the state machine has no transition for. The mode module defines its own
/// errors (the engine's [`Error`](crate::Error) converts them) so that the two modules do
/// not depend on each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid transition from {from} to {to}")]
pub struct InvalidTransition {
    /// Mode the conversation is in.
    pub from: Mode,
    /// Mode that was asked for.
    pub to: Mode,
}

/// A name that is not a mode (`?` turns it into a validation error on `mode`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode `{0}`")]
pub struct UnknownMode(pub String);
