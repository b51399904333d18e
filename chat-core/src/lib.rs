#![doc = include_str!("../README.md")]

mod blob;
mod bot;
mod bus;
mod clock;
mod credentials;
mod engine;
mod error;
pub mod export;
pub mod feed;
mod ids;
pub mod memory;
mod mode;
mod model;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod policy;
pub mod report;
mod router;
mod sniff;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod write;

pub use blob::{BlobStore, MemoryBlobStore, Thumbnailer, safe_path_segment, thumbnail_key};
pub use bot::{
    BOT_FALLBACK_KEY, BOT_HANDOFF_KEY, BOT_HANDOFF_REASON_KEY, Bot, BotDecision, BotTurn, Intent,
    RuleBot, RuleBotConfig, SilentBot, bot_reply_key,
};
pub use bus::{Ephemeral, EventBus, InProcessBus};
pub use clock::{Clock, ManualClock, SystemClock};
pub use credentials::{
    Account, Backend, BotToken, Credential, Credentials, PasswordHasher, VisitorToken,
};
pub use engine::*;
pub use error::{
    BotError, BotErrorKind, Conflict, ConflictKind, Error, Result, StorageError, StorageKind,
};
pub use ids::{
    AgentId, CannedResponseId, ContactId, ConversationId, IdGenerator, InboxId, MailId, MessageId,
    SequentialIds, TenantId, V7Ids, WebhookId,
};
pub use mode::{InvalidTransition, Mode, UnknownMode};
pub use model::*;
pub use router::{LeastLoaded, Manual, RoundRobin, Router, eligible};
pub use sniff::{detect_content_type, refine_content_type};
pub use store::seam::Store;
