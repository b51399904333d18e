//! Demo data for `chat-server --demo`, so a newcomer has something to look at: staff and
//! the four conversations of the message-center seed (001), each in its mode. A module of
//! the binary, not of the library.

use chat_core::{
    Actor, Availability, Channel, ContactInput, Engine, Mode, NewAgent, OpenConversation,
    PostMessage, Role, TenantId,
};

/// Password of the demo staff (printed in the log at start-up with `--demo`).
pub const DEMO_PASSWORD: &str = "demo-password";

/// Seeds demo staff and conversations once; returns the staff e-mails created.
pub async fn seed(engine: &Engine, tenant: TenantId) -> anyhow::Result<Vec<String>> {
    let system = Actor::System { tenant };
    if engine
        .agent_by_email(&system, "admin@demo.example")
        .await?
        .is_some()
    {
        return Ok(Vec::new());
    }
    let hash = chat_server::auth::hash_password(DEMO_PASSWORD)?;
    let mut staff = Vec::new();
    let mut agent_id = None;
    for (name, email, role) in [
        ("Demo Admin", "admin@demo.example", Role::Admin),
        (
            "Demo Supervisor",
            "supervisor@demo.example",
            Role::Supervisor,
        ),
        ("Demo Agent", "agent@demo.example", Role::Agent),
    ] {
        let input = NewAgent {
            name: name.into(),
            email: email.into(),
            role,
            capacity: None,
            departments: vec!["support".into()],
        };
        let agent = engine.create_agent(&system, input).await?;
        engine.set_password(&system, agent.id, &hash).await?;
        if role == Role::Agent {
            agent_id = Some(agent.id);
        }
        staff.push(email.to_owned());
    }
    let agent_id = agent_id.expect("the demo agent exists");
    let agent = Actor::Staff {
        tenant,
        agent: agent_id,
    };
    let chats: [(&str, &str, Channel, Mode, &[&str]); 4] = [
        (
            "John Doe",
            "john.doe@email.com",
            Channel::Whatsapp,
            Mode::Agent,
            &["Halo!", "Is my order shipped yet?"],
        ),
        (
            "Sarah Williams",
            "sarah.w@email.com",
            Channel::Telegram,
            Mode::Bot,
            &[],
        ),
        (
            "Maria Lopez",
            "maria.lopez@email.com",
            Channel::Email,
            Mode::Bot,
            &["What are your opening hours?"],
        ),
        (
            "Ahmed Hassan",
            "ahmed.h@email.com",
            Channel::Whatsapp,
            Mode::Paused,
            &["I will send the invoice later."],
        ),
    ];
    for (name, email, channel, mode, lines) in chats {
        let contact = ContactInput {
            name: Some(name.into()),
            email: Some(email.into()),
            ..Default::default()
        };
        let opened = engine
            .open_conversation(
                &system,
                OpenConversation {
                    contact,
                    channel,
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
        if matches!(mode, Mode::Agent | Mode::Paused) {
            engine.assign(&system, id, agent_id).await?;
        }
        for line in lines {
            engine
                .post_message(&customer, id, PostMessage::text(*line))
                .await?;
        }
        if mode == Mode::Paused {
            engine.set_mode(&agent, id, Mode::Paused).await?;
        }
    }
    engine
        .set_availability(&system, agent_id, Availability::Away)
        .await?;
    Ok(staff)
}
