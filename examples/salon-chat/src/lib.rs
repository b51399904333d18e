//! Seed document 002's salon chat backend (`/api/v1/chat/…` and two WebSockets), served
//! by the engine: one tenant per salon, staff and customer logins, integer ids.
//!
//! ```text
//! cargo run -p example-salon-chat -- --demo
//! ```
//!
//! See the README for the routes, the JSON shapes and every deviation from the document.

// Handlers fail with a finished response in the document's error shape; it is answered
// at once, so its size on the error path costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

mod answers;
mod chats;
mod demo;
mod endpoints;
mod files;
mod logins;
mod messages;
mod salons;
mod shapes;
mod socket;
mod who;

use std::path::Path;

use chat_core::TenantSettings;
use chat_starter::Starter;

pub use demo::{DEMO_PASSWORD, DemoError, seed_demo};
pub use files::file_type;
pub use salons::{CustomerError, Salon, SalonChat, normalize_phone};
pub use shapes::{MESSAGE_STRIDE, message_number, split_message_number};
pub use socket::Presence;

// The socket module names these at the crate root.
pub(crate) use answers::engine_error;
pub(crate) use who::{Participant, Who};

/// The salon `Starter::open` creates on first start; `--demo` adds a second one.
pub const FIRST_SALON: &str = "Main Salon";
/// Largest JSON or form body (the document's bodies are a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// Largest uploaded file.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Largest `page_size`.
pub const MAX_PAGE_SIZE: usize = 100;
/// Where uploaded files are served: `{FILES_PATH}/{chat_id}/{key}`.
pub const FILES_PATH: &str = "/api/v1/chat/files";
/// What uploads accept: the document's images, voice notes and documents.
pub const FILE_TYPES: [(&str, &str); 12] = [
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("mp3", "audio/mpeg"),
    ("m4a", "audio/mp4"),
    ("aac", "audio/aac"),
    ("ogg", "audio/ogg"),
    ("wav", "audio/wav"),
    ("webm", "audio/webm"),
    ("pdf", "application/pdf"),
];

/// Contact metadata: the customer's number.
pub(crate) const CUSTOMER_NUMBER: &str = "customer_id";
/// Message metadata: the id of the message answered (the engine keeps its UUID).
pub(crate) const REPLY_TO: &str = "salon.reply_to_id";
/// Conversation metadata: the entity a customer opened the chat about.
pub(crate) const ENTITY_TYPE: &str = "salon.entity_type";
pub(crate) const ENTITY_ID: &str = "salon.entity_id";

/// Every salon's settings: no bot (people answer), the document's 15-minute edit window.
pub fn salon_settings() -> TenantSettings {
    TenantSettings {
        bot_enabled: false,
        edit_window_secs: 15 * 60,
        ..TenantSettings::default()
    }
}

/// Opens the template's database (created if missing) with its first salon.
pub async fn open(db: &Path) -> Result<Starter, chat_starter::Error> {
    Starter::open(db, FIRST_SALON, salon_settings(), |b| b).await
}
