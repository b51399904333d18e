//! The salons: one tenant each, with their chat numbers and customers (accounts whose
//! login is the phone number).

use std::sync::{Arc, RwLock};

use chat_core::{Contact, TenantId};
use chat_starter::Starter;
use chat_starter::numbering::ChatNumbers;

use crate::{CUSTOMER_NUMBER, Presence, salon_settings};

/// One salon: a tenant of the engine, so nothing of one salon is visible from another.
pub struct Salon {
    /// The document's `salon_id`: salons numbered by when they were created.
    pub number: u64,
    /// Its tenant.
    pub tenant: TenantId,
    /// Name.
    pub name: String,
    pub(crate) chats: ChatNumbers,
    /// The next free customer number, found on first use.
    pub(crate) next_customer: tokio::sync::Mutex<Option<u64>>,
}

/// The salons, and the [`Extension`](chat_server::Extension) serving the document's
/// routes for all of them.
pub struct SalonChat {
    pub(crate) salons: RwLock<Vec<Arc<Salon>>>,
    pub(crate) adding: tokio::sync::Mutex<()>,
    pub(crate) presence: Arc<Presence>,
}

/// Why a customer could not be added.
#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    /// Another customer of the salon has this phone number.
    #[error("phone number already registered")]
    PhoneTaken,
    /// The account could not be created.
    #[error(transparent)]
    Engine(#[from] chat_core::Error),
}

/// The customer whose account has this login name (phone number or customer alias).
pub(crate) async fn customer_by_name(
    engine: &chat_core::Engine,
    tenant: TenantId,
    name: &str,
) -> chat_core::Result<Option<Contact>> {
    let system = chat_core::Actor::System { tenant };
    match engine.find_account(&system, name).await? {
        Some(account) => engine.contact(&system, account.contact_id).await.map(Some),
        None => Ok(None),
    }
}

/// The alias a customer number is looked up by.
pub(crate) fn customer_alias(number: u64) -> String {
    format!("customer:{number}")
}

/// Phone numbers as logins: digits and a leading `+`, whatever spacing was typed.
pub fn normalize_phone(phone: &str) -> String {
    let phone = phone.trim();
    let plus = if phone.starts_with('+') { "+" } else { "" };
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    format!("{plus}{digits}")
}

impl SalonChat {
    /// Reads every salon of the database.
    pub async fn load(starter: &Starter) -> chat_core::Result<Arc<Self>> {
        let engine = &starter.engine;
        let mut tenants = engine.tenants().await?;
        tenants.sort_by_key(|t| (t.created_at, t.id));
        let mut salons = Vec::with_capacity(tenants.len());
        for (i, t) in tenants.into_iter().enumerate() {
            salons.push(Arc::new(Salon {
                number: i as u64 + 1,
                tenant: t.id,
                name: t.name,
                chats: ChatNumbers::load(engine, t.id).await?,
                next_customer: Default::default(),
            }));
        }
        Ok(Arc::new(Self {
            salons: RwLock::new(salons),
            adding: Default::default(),
            presence: Arc::default(),
        }))
    }

    /// Every salon, by number.
    pub fn salons(&self) -> Vec<Arc<Salon>> {
        self.salons.read().expect("never poisoned").clone()
    }

    /// The salon of a tenant.
    pub fn salon(&self, tenant: TenantId) -> Option<Arc<Salon>> {
        self.salons().into_iter().find(|s| s.tenant == tenant)
    }

    /// The salon named `name`, created if missing.
    pub async fn ensure_salon(
        &self,
        engine: &chat_core::Engine,
        name: &str,
    ) -> chat_core::Result<Arc<Salon>> {
        let _adding = self.adding.lock().await;
        if let Some(s) = self.salons().into_iter().find(|s| s.name == name) {
            return Ok(s);
        }
        let tenant = engine.create_tenant(name, salon_settings()).await?;
        let mut salons = self.salons.write().expect("never poisoned");
        let salon = Arc::new(Salon {
            number: salons.len() as u64 + 1,
            tenant: tenant.id,
            name: tenant.name,
            chats: ChatNumbers::default(),
            next_customer: Default::default(),
        });
        salons.push(salon.clone());
        Ok(salon)
    }

    /// Adds a customer who logs in with `phone` and `password`; returns its number.
    pub async fn add_customer(
        &self,
        engine: &chat_core::Engine,
        salon: &Salon,
        name: &str,
        phone: &str,
        password: &str,
    ) -> Result<(u64, Contact), CustomerError> {
        let phone = normalize_phone(phone);
        let system = chat_core::Actor::System {
            tenant: salon.tenant,
        };
        let sign_up = chat_core::SignUp {
            username: phone.clone(),
            email: None,
            password: password.to_owned(),
            name: None,
        };
        let (_, contact) = match engine.sign_up(&system, sign_up).await {
            Err(chat_core::Error::Validation {
                field: "username", ..
            }) => return Err(CustomerError::PhoneTaken),
            other => other?,
        };
        let mut next = salon.next_customer.lock().await;
        let mut number = match *next {
            Some(n) => n,
            None => first_free_customer(engine, salon.tenant).await?,
        };
        loop {
            match engine
                .add_account_name(&system, contact.id, &customer_alias(number))
                .await
            {
                Ok(()) => break,
                // Taken by another process on the same database: try the next one.
                Err(chat_core::Error::Validation { field: "name", .. }) => number += 1,
                Err(e) => return Err(e.into()),
            }
        }
        *next = Some(number + 1);
        let patch = chat_core::ContactPatch {
            name: Some(name.trim().to_owned()).filter(|n| !n.is_empty()),
            phone: Some(phone),
            metadata: [(CUSTOMER_NUMBER.to_owned(), number.to_string())].into(),
            ..Default::default()
        };
        let contact = engine.update_contact(&system, contact.id, patch).await?;
        Ok((number, contact))
    }

    /// The customer with this number.
    pub async fn customer(
        &self,
        engine: &chat_core::Engine,
        salon: &Salon,
        number: u64,
    ) -> chat_core::Result<Option<Contact>> {
        customer_by_name(engine, salon.tenant, &customer_alias(number)).await
    }
}

/// The lowest customer number not yet given: numbers are dense from 1, so an
/// exponential then binary search finds it in O(log n) lookups.
pub(crate) async fn first_free_customer(
    engine: &chat_core::Engine,
    tenant: TenantId,
) -> chat_core::Result<u64> {
    let taken = |n: u64| async move {
        let system = chat_core::Actor::System { tenant };
        engine
            .find_account(&system, &customer_alias(n))
            .await
            .map(|c| c.is_some())
    };
    if !taken(1).await? {
        return Ok(1);
    }
    let (mut low, mut high) = (1u64, 2u64);
    while taken(high).await? {
        low = high;
        high *= 2;
    }
    // `low` is taken, `high` is free.
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if taken(mid).await? {
            low = mid;
        } else {
            high = mid;
        }
    }
    Ok(high)
}
