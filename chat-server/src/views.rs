//! The JSON views: what one caller may see of a conversation or an event. The rules live
//! in the engine's policy ([`chat_core::policy::view`]); these are the server's shorthands
//! for them, so handlers, sockets and templates serialize the policy's output and
//! nothing else.

use chat_core::Conversation;
use chat_core::policy::Viewer;
pub use chat_core::policy::view::{ContactView, ConversationView, EventView};
use serde_json::Value;

/// A conversation as a staff (`staff = true`) or customer caller may see it.
pub fn conversation_view(c: &Conversation, staff: bool) -> ConversationView<'_> {
    viewer(staff).conversation(c)
}

/// An event as a staff or customer caller may see it, as JSON. A customer is never given
/// an event it may not see (the engine filters them first); should one get here, it is
/// shown as `null` rather than leaked.
pub fn event_view(event: &chat_core::Event, staff: bool) -> Value {
    serde_json::to_value(viewer(staff).event(event)).expect("events serialize")
}

fn viewer(staff: bool) -> Viewer {
    if staff {
        Viewer::Desk
    } else {
        Viewer::Customer
    }
}
