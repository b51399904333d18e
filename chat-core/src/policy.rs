//! Who may see and do what. The one place access rules live; the engine calls it for
//! every operation, so embedders and the server get the same rules.
//!
//! | action | admin | supervisor | agent (sees it) | customer (own) | bot | system |
//! |--------|-------|------------|-----------------|----------------|-----|--------|
//! | read conversation and messages | yes | yes | yes | yes, no notes | yes | yes |
//! | post as customer | - | - | - | yes | - | - |
//! | reply as staff | yes | yes | yes | - | - | - |
//! | post as bot | - | - | - | - | yes | - |
//! | post system message | - | - | - | - | - | yes |
//! | internal note | yes | yes | yes | - | - | yes |
//! | mark read | yes | yes | yes | yes | - | - |
//! | request agent (handoff) | yes | yes | yes | yes | yes | yes |
//! | claim from queue | yes | yes | yes | - | - | - |
//! | assign to someone else, unassign | yes | yes | own only | - | - | yes |
//! | transfer | yes | yes | own | - | - | yes |
//! | mode, priority, department, tags, pin, title | yes | yes | own | - | - | yes |
//! | close | yes | yes | own | yes | yes | yes |
//! | rate | - | - | - | yes | - | yes |
//! | reopen | yes | yes | own | yes | - | yes |
//! | archive | yes | yes | - | - | - | yes |
//! | hard delete | yes | - | - | - | - | yes |
//! | reports | all | all | its own figures | - | - | all |
//!
//! "Sees it": an agent sees conversations assigned to it or where it participates, and
//! queued conversations of the general queue or of its departments ([`Scope::Agent`]).
//! Reports: an agent sees the figures of the conversations assigned to it (its own row of
//! every breakdown, its own feedback), never a colleague's or the desk's totals
//! ([`Resolved::report_agent`]).
//! "Own": the agent is assigned or participates. Nobody sees another tenant.
//! Not visible gives [`Error::NotFound`] (existence is not revealed); visible but not
//! allowed gives [`Error::Forbidden`].

pub mod view;
pub use view::Viewer;

use crate::error::{Error, Result};
use crate::ids::{AgentId, ContactId, ConversationId};
use crate::model::{Agent, Conversation, Role};
use crate::store::Scope;

// Defined with the domain types (one public path, `chat_core::Actor`); named here too
// because every rule below is about one.
pub(crate) use crate::model::Actor;

/// An actor with what the engine loaded about it.
#[derive(Clone, Debug)]
pub enum Resolved {
    /// Staff with its current record (active). Boxed: a realtime socket keeps its
    /// caller's `Resolved` for as long as it is open, and most sockets are customers',
    /// which would otherwise each carry room for an agent's record (152 bytes, not 40).
    Staff(Box<Agent>),
    /// Customer.
    Customer {
        /// The contact.
        contact: ContactId,
        /// Conversation scope.
        conversation: Option<ConversationId>,
    },
    /// Bot.
    Bot,
    /// System.
    System,
}

/// Something an actor wants to do to a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read it, its messages and events.
    Read,
    /// Post as the customer.
    PostAsCustomer,
    /// Reply as staff.
    Reply,
    /// Post as the bot.
    PostAsBot,
    /// Post a system message.
    PostAsSystem,
    /// Write an internal note.
    Note,
    /// Move a read cursor.
    MarkRead,
    /// Ask for a human.
    RequestAgent,
    /// Take a queued conversation for oneself.
    Claim,
    /// Assign to another agent or unassign.
    Assign,
    /// Transfer to an agent or department.
    Transfer,
    /// Change mode.
    ChangeMode,
    /// Change priority, department, tags, pin, title, participants.
    EditDetails,
    /// Close.
    Close,
    /// Rate.
    Rate,
    /// Reopen.
    Reopen,
    /// Archive.
    Archive,
    /// Delete for good.
    Delete,
}

impl Resolved {
    /// Which conversations this actor can see.
    pub fn scope(&self) -> Scope {
        match self {
            Resolved::Staff(a) if a.role == Role::Agent => Scope::Agent {
                agent: a.id,
                departments: a.departments.clone(),
            },
            Resolved::Staff(_) | Resolved::Bot | Resolved::System => Scope::Tenant,
            Resolved::Customer {
                contact,
                conversation,
            } => Scope::Contact {
                contact: *contact,
                conversation: *conversation,
            },
        }
    }

    /// Whether this actor sees internal notes and staff-only events.
    pub fn sees_notes(&self) -> bool {
        !matches!(self, Resolved::Customer { .. })
    }

    /// The staff record, if staff.
    pub fn staff(&self) -> Option<&Agent> {
        match self {
            Resolved::Staff(a) => Some(a),
            _ => None,
        }
    }

    /// Whether this actor is admin or supervisor (or the system).
    pub fn manages(&self) -> bool {
        match self {
            Resolved::Staff(a) => matches!(a.role, Role::Admin | Role::Supervisor),
            Resolved::System => true,
            _ => false,
        }
    }

    /// Whose figures a report may show this actor, given the agent it asked for: `None`
    /// is the whole tenant. Admins, supervisors and the system see the whole tenant or any
    /// one agent; an agent only itself (asking for nobody in particular gives its own);
    /// customers and bots no report ([`Error::Forbidden`]).
    pub fn report_agent(&self, asked: Option<AgentId>) -> Result<Option<AgentId>> {
        match self {
            _ if self.manages() => Ok(asked),
            Resolved::Staff(me) if asked.is_none_or(|a| a == me.id) => Ok(Some(me.id)),
            Resolved::Staff(_) => Err(Error::Forbidden("see another agent's report")),
            _ => Err(Error::Forbidden("reports are for staff")),
        }
    }

    /// `Ok` if the actor may do `action` to `conversation`; [`Error::NotFound`] if it cannot
    /// see it, [`Error::Forbidden`] if it can see it but may not do this.
    pub fn authorize(&self, action: Action, conversation: &Conversation) -> Result<()> {
        if !self.scope().contains(conversation) {
            return Err(Error::NotFound("conversation"));
        }
        use Action::*;
        let allowed = match self {
            Resolved::System => !matches!(action, PostAsCustomer | Reply | PostAsBot),
            Resolved::Bot => matches!(action, Read | PostAsBot | RequestAgent | Close),
            Resolved::Customer { .. } => matches!(
                action,
                Read | PostAsCustomer | MarkRead | RequestAgent | Close | Rate | Reopen
            ),
            Resolved::Staff(agent) => {
                let own = conversation.involves(agent.id);
                match (agent.role, action) {
                    (_, PostAsCustomer | PostAsBot | PostAsSystem | Rate) => false,
                    (Role::Admin, _) => true,
                    (Role::Supervisor, Delete) => false,
                    (Role::Supervisor, _) => true,
                    (Role::Agent, Read | Note | MarkRead | RequestAgent | Claim) => true,
                    (Role::Agent, Archive | Delete) => false,
                    (
                        Role::Agent,
                        Reply | Assign | Transfer | ChangeMode | EditDetails | Close | Reopen,
                    ) => own,
                }
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(Error::Forbidden(action_name(action)))
        }
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Read => "read",
        Action::PostAsCustomer => "post as customer",
        Action::Reply => "reply",
        Action::PostAsBot => "post as bot",
        Action::PostAsSystem => "post as system",
        Action::Note => "write notes",
        Action::MarkRead => "mark read",
        Action::RequestAgent => "request an agent",
        Action::Claim => "claim",
        Action::Assign => "assign",
        Action::Transfer => "transfer",
        Action::ChangeMode => "change mode",
        Action::EditDetails => "edit details",
        Action::Close => "close",
        Action::Rate => "rate",
        Action::Reopen => "reopen",
        Action::Archive => "archive",
        Action::Delete => "delete",
    }
}
