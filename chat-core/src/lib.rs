#![doc = include_str!("../README.md")]

pub mod blob;
pub mod bot;
pub mod bus;
pub mod clock;
pub mod credentials;
mod engine;
pub mod error;
pub mod feed;
pub mod ids;
pub mod memory;
pub mod mode;
pub mod model;
pub mod policy;
pub mod router;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod write;

pub use blob::{BlobStore, MemoryBlobStore};
pub use bot::{Bot, BotDecision, BotTurn, RuleBot, RuleBotConfig};
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
    AgentId, ContactId, ConversationId, IdGenerator, MessageId, SequentialIds, TenantId, V7Ids,
};
pub use mode::Mode;
pub use model::*;
pub use policy::Actor;
pub use router::{LeastLoaded, Manual, RoundRobin, Router};
pub use store::Store;
