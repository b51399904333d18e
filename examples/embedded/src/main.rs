//! A support desk inside your own program: no server, no database.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p example-embedded
//! ```
//!
//! It plays one whole conversation: the customer opens it, the bot answers, the customer
//! asks for a human, the conversation is routed to the online agent, the agent answers
//! and closes it, and the customer rates it. Swap `MemoryStore` for `chat_sqlite` to keep
//! the data, and the rule bot for your own `Bot`.

use std::sync::Arc;

use chat_core::memory::MemoryStore;
use chat_core::{
    Actor, Availability, ContactInput, Engine, Message, NewAgent, OpenConversation, PostMessage,
    Role, Sender, TenantSettings,
};

#[tokio::main]
async fn main() -> chat_core::Result<()> {
    let engine = Engine::builder(Arc::new(MemoryStore::new())).build();
    let settings = TenantSettings {
        welcome_message: Some("Hi! I am the Acme bot.".into()),
        ..Default::default()
    };
    let tenant = engine.create_tenant("Acme", settings).await?.id;
    let system = Actor::System { tenant };

    let ann = NewAgent {
        name: "Ann".into(),
        email: "ann@acme.example".into(),
        role: Role::Agent,
        capacity: Some(3),
        departments: vec!["billing".into()],
    };
    let ann = engine.create_agent(&system, ann).await?;
    let agent = Actor::Staff {
        tenant,
        agent: ann.id,
    };
    engine
        .set_availability(&agent, ann.id, Availability::Online)
        .await?;

    // The widget opens a conversation for the visitor; the visitor then acts with a
    // token scoped to that one conversation.
    let contact = ContactInput {
        name: Some("Jo".into()),
        email: Some("jo@example.com".into()),
        ..Default::default()
    };
    let opened = engine
        .open_conversation(
            &system,
            OpenConversation {
                contact,
                ..Default::default()
            },
        )
        .await?;
    let id = opened.conversation.id;
    let customer = Actor::Customer {
        tenant,
        contact: opened.contact.id,
        conversation: Some(id),
    };
    opened.messages.iter().for_each(show);

    for text in [
        "Hello",
        "What are your opening hours?",
        "Can I talk to a human?",
    ] {
        let posted = engine
            .post_message(&customer, id, PostMessage::text(text))
            .await?;
        show(&posted.message);
        posted.replies.iter().for_each(show);
    }

    let conversation = engine.conversation(&agent, id).await?;
    println!(
        "-- mode: {}, assigned to Ann: {}",
        conversation.mode,
        conversation.assigned_agent_id == Some(ann.id)
    );

    let reply = engine
        .post_message(
            &agent,
            id,
            PostMessage::text("Hi Jo, Ann here. How can I help?"),
        )
        .await?;
    show(&reply.message);
    let thanks = engine
        .post_message(&customer, id, PostMessage::text("All sorted, thanks!"))
        .await?;
    show(&thanks.message);
    engine.close(&agent, id, None).await?;
    let rated = engine
        .rate(&customer, id, 5, Some("Fast and friendly".into()))
        .await?;
    let rating = rated.rating.as_ref().map_or(0, |r| r.score);
    println!(
        "-- mode: {}, rating: {rating}/5, messages: {}",
        rated.mode, rated.message_count
    );
    Ok(())
}

fn show(message: &Message) {
    let who = match message.sender {
        Sender::Customer => "customer",
        Sender::Agent(_) => "agent",
        Sender::Bot => "bot",
        Sender::System => "system",
    };
    println!("{:>3} {who:>8}: {}", message.seq, message.body);
}
