//! The demo data of `--demo`: the document's salons, staff, customers and first chat.

use chat_core::{Actor, OpenConversation, PostMessage};
use chat_server::accounts;
use chat_starter::Starter;
use serde_json::{Value, json};

use crate::salons::{Salon, SalonChat};
use crate::{CUSTOMER_NUMBER, FIRST_SALON, normalize_phone};

/// Why `--demo` could not seed the document's examples.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] chat_core::Error),
    /// Hashing a password or signing a token failed.
    #[error(transparent)]
    Server(#[from] chat_server::error::Error),
    /// A demo customer could not be added.
    #[error(transparent)]
    Customer(#[from] crate::CustomerError),
    /// A demo login exists with another password, so no token can be written for it.
    #[error("the demo password of {0} was changed")]
    PasswordChanged(String),
    /// Seeded data is gone (deleted behind the template's back).
    #[error("{0} is missing")]
    Missing(&'static str),
}

/// A demo login: who, and the bearer token `--demo` writes for it.
pub(crate) async fn demo_staff(
    starter: &Starter,
    salon: &Salon,
    name: &str,
    email: &str,
    role: chat_core::Role,
) -> Result<Value, DemoError> {
    let engine = &starter.engine;
    chat_starter::ensure_staff(engine, salon.tenant, name, email, DEMO_PASSWORD, role).await?;
    let (_, token) =
        accounts::staff_login(engine, &starter.config, salon.tenant, email, DEMO_PASSWORD)
            .await?
            .ok_or_else(|| DemoError::PasswordChanged(email.to_owned()))?;
    Ok(
        json!({ "salon_id": salon.number, "email": email, "password": DEMO_PASSWORD, "token": token }),
    )
}

pub(crate) async fn demo_customer(
    starter: &Starter,
    salons: &SalonChat,
    salon: &Salon,
    name: &str,
    phone: &str,
) -> Result<Value, DemoError> {
    let engine = &starter.engine;
    let phone = normalize_phone(phone);
    if crate::salons::customer_by_name(engine, salon.tenant, &phone)
        .await?
        .is_none()
    {
        salons
            .add_customer(engine, salon, name, &phone, DEMO_PASSWORD)
            .await?;
    }
    let (_, contact, token) =
        accounts::login(engine, &starter.config, salon.tenant, &phone, DEMO_PASSWORD)
            .await?
            .ok_or_else(|| DemoError::PasswordChanged(phone.clone()))?;
    Ok(json!({
        "salon_id": salon.number,
        "customer_id": contact.metadata.get(CUSTOMER_NUMBER).and_then(|n| n.parse::<u64>().ok()),
        "phone_number": phone,
        "password": DEMO_PASSWORD,
        "token": token,
    }))
}

/// The password of every demo login (the document's examples use `password`).
pub const DEMO_PASSWORD: &str = "password";

/// Seeds the document's examples (idempotent): the main salon's admin
/// `admin@salon.com` and stylist `staff@salon.com`, its customers `+1234567890` (the
/// first) and `+15550001111`, and chat 1 between the admin and the first; a second salon, Uptown Salon, with its own admin and
/// customer, to show that salons do not see each other. Returns the logins with fresh
/// tokens, for `demo-tokens.json`.
pub async fn seed_demo(starter: &Starter, salons: &SalonChat) -> Result<Value, DemoError> {
    let engine = &starter.engine;
    let main = salons.ensure_salon(engine, FIRST_SALON).await?;
    let uptown = salons.ensure_salon(engine, "Uptown Salon").await?;
    let admin = demo_staff(
        starter,
        &main,
        "Salon Admin",
        "admin@salon.com",
        chat_core::Role::Admin,
    )
    .await?;
    let agent = demo_staff(
        starter,
        &main,
        "Sam Stylist",
        "staff@salon.com",
        chat_core::Role::Agent,
    )
    .await?;
    let uptown_admin = demo_staff(
        starter,
        &uptown,
        "Uptown Admin",
        "admin@uptown-salon.com",
        chat_core::Role::Admin,
    )
    .await?;
    let customer = demo_customer(starter, salons, &main, "Jane Customer", "+1234567890").await?;
    let second_customer =
        demo_customer(starter, salons, &main, "Ken Client", "+15550001111").await?;
    let uptown_customer =
        demo_customer(starter, salons, &uptown, "Uma Uptown", "+1987654321").await?;
    if main.chats.is_empty() {
        let admin_agent = engine
            .agent_by_email(
                &Actor::System {
                    tenant: main.tenant,
                },
                "admin@salon.com",
            )
            .await?
            .ok_or(DemoError::Missing("the demo admin"))?;
        let actor = Actor::Staff {
            tenant: main.tenant,
            agent: admin_agent.id,
        };
        let customer_contact = salons
            .customer(engine, &main, customer["customer_id"].as_u64().unwrap_or(1))
            .await?
            .ok_or(DemoError::Missing("the demo customer"))?;
        let (_, opened) = main
            .chats
            .open(
                engine,
                &actor,
                OpenConversation {
                    contact_id: Some(customer_contact.id),
                    title: Some("Appointment".into()),
                    ..Default::default()
                },
            )
            .await?;
        engine
            .post_message(
                &actor,
                opened.conversation.id,
                PostMessage::text("Hi, how can I help?"),
            )
            .await?;
    }
    Ok(json!({
        "admin": admin,
        "agent": agent,
        "customer": customer,
        "second_customer": second_customer,
        "uptown_admin": uptown_admin,
        "uptown_customer": uptown_customer,
    }))
}
