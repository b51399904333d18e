//! Who a contact is: verified identities and staff merges, the only two ways (with a
//! customer-account login) that a customer reaches an existing contact. A claim typed by a
//! visitor never does (see [`Contact`]).

use super::{CAS_ATTEMPTS, Engine};
use crate::error::{Error, Result};
use crate::ids::ContactId;
use crate::model::{AttributeType, Contact, ContactInput, Conversation, ConversationChange, Role};
use crate::policy::{Action, Actor, Resolved};
use crate::store::{ContactQuery, ConversationQuery, ConversationUpdate, Scope};

/// A trimmed, lower-case e-mail, `None` when empty; [`Error::Validation`] on `field` when
/// it cannot be an address.
pub(super) fn valid_email(field: &'static str, text: &str) -> Result<Option<String>> {
    match text.trim() {
        "" => Ok(None),
        e if e.len() > 254 || !e.contains('@') || e.contains(char::is_whitespace) => {
            Err(Error::validation(field, "not an e-mail address"))
        }
        e => Ok(Some(e.to_lowercase())),
    }
}

/// Input for [`Engine::update_contact`]: each field set replaces the stored one (an empty
/// string clears it); unset fields stay.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContactPatch {
    /// Display name.
    pub name: Option<String>,
    /// E-mail. A changed e-mail is a claim again: staff typing it do not prove it.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Postal address.
    pub address: Option<String>,
    /// Metadata entries to set (merged into the stored ones).
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// One page of [`Engine::list_contacts`].
#[derive(Clone, Debug, PartialEq)]
pub struct ContactPage {
    /// Contacts, newest first.
    pub items: Vec<Contact>,
    /// Pass back as `before` for the next page; `None` on the last one.
    pub next_cursor: Option<ContactId>,
}

/// Whether `value` is a value of `kind`; why not otherwise.
fn check_attribute(kind: AttributeType, value: &str) -> std::result::Result<(), &'static str> {
    let ok = match kind {
        AttributeType::Text => true,
        AttributeType::Number => value.trim().parse::<f64>().is_ok_and(f64::is_finite),
        AttributeType::Boolean => matches!(value, "true" | "false"),
        AttributeType::Date => time::Date::parse(
            value,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(match kind {
            AttributeType::Text => "text",
            AttributeType::Number => "a number",
            AttributeType::Boolean => "`true` or `false`",
            AttributeType::Date => "a date (YYYY-MM-DD)",
        })
    }
}

impl Engine {
    /// The tenant's contacts for staff, newest first, `limit` (default 50, at most the
    /// engine's page size) at a time from `before` (the previous page's `next_cursor`);
    /// with `text`, only those whose name, e-mail or phone contains it. Customers list
    /// no contacts.
    pub async fn list_contacts(
        &self,
        actor: &Actor,
        text: Option<&str>,
        before: Option<ContactId>,
        limit: Option<usize>,
    ) -> Result<ContactPage> {
        match self.resolve(actor).await? {
            Resolved::Staff(_) | Resolved::System => {}
            _ => return Err(Error::Forbidden("list contacts")),
        }
        let limit = limit.unwrap_or(50).clamp(1, self.inner.limits.max_page);
        let text = text.map(str::trim).filter(|t| !t.is_empty());
        if text.is_some_and(|t| t.chars().count() > 200) {
            return Err(Error::validation("text", "longer than 200 characters"));
        }
        let items = self
            .inner
            .store
            .list_contacts(&ContactQuery {
                tenant: actor.tenant(),
                text: text.map(str::to_owned),
                before,
                limit,
            })
            .await?;
        let next_cursor = (items.len() == limit)
            .then(|| items.last().map(|c| c.id))
            .flatten();
        Ok(ContactPage { items, next_cursor })
    }

    /// The conversations of contact `id` that the staff member may read, newest activity
    /// first (an agent sees those its scope reaches; admins and supervisors all).
    pub async fn contact_conversations(
        &self,
        actor: &Actor,
        id: ContactId,
    ) -> Result<Vec<Conversation>> {
        let who = self.resolve(actor).await?;
        if !matches!(who, Resolved::Staff(_) | Resolved::System) {
            return Err(Error::Forbidden("list a contact's conversations"));
        }
        let tenant = actor.tenant();
        self.inner
            .store
            .contact(tenant, id)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        let mut query = ConversationQuery::new(
            tenant,
            Scope::Contact {
                contact: id,
                conversation: None,
            },
        );
        query.limit = self.inner.limits.max_page;
        let mut items = Vec::new();
        loop {
            let page = self.inner.store.list_conversations(&query).await?;
            items.extend(
                page.items
                    .into_iter()
                    .filter(|c| who.authorize(Action::Read, c).is_ok()),
            );
            match page.next_cursor {
                Some(next) if items.len() < 10_000 => query.cursor = Some(next),
                _ => return Ok(items),
            }
        }
    }

    /// Edits a contact (staff and the system): what the desk learned about a customer. A
    /// customer never edits a contact, its own included, so a token cannot rewrite who it
    /// claims to be after the fact.
    pub async fn update_contact(
        &self,
        actor: &Actor,
        id: ContactId,
        patch: ContactPatch,
    ) -> Result<Contact> {
        match self.resolve(actor).await? {
            Resolved::Staff(_) | Resolved::System => {}
            _ => return Err(Error::Forbidden("edit contacts")),
        }
        let tenant = actor.tenant();
        let mut contact = self
            .inner
            .store
            .contact(tenant, id)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        if let Some(name) = patch.name {
            contact.name = self.optional_short_text("name", Some(&name))?;
        }
        if let Some(email) = patch.email {
            let email = valid_email("email", &email)?;
            if email != contact.email {
                contact.email = email;
                contact.email_verified = false;
            }
        }
        if let Some(phone) = patch.phone {
            contact.phone = self.optional_short_text("phone", Some(&phone))?;
        }
        if let Some(address) = patch.address {
            contact.address = self.optional_short_text("address", Some(&address))?;
        }
        // Attributes the tenant declared must hold values of their type; others are free
        // text, as metadata always was.
        if !patch.metadata.is_empty() {
            let declared = self.load_tenant(tenant).await?.settings.contact_attributes;
            for (key, value) in &patch.metadata {
                if let Some(kind) = declared.get(key)
                    && let Err(want) = check_attribute(*kind, value)
                {
                    return Err(Error::validation(
                        "metadata",
                        format!("`{key}` must be {want}"),
                    ));
                }
            }
        }
        contact.metadata.extend(patch.metadata);
        if contact.metadata.len() > 64 {
            return Err(Error::validation("metadata", "more than 64 entries"));
        }
        contact.updated_at = self.now();
        self.inner.store.update_contact(&contact).await?;
        Ok(contact)
    }

    /// The contact of a customer whose e-mail the embedding site has proven (the server
    /// checks the site's signature first; only the system may call this). Finds the
    /// contact with that verified e-mail, or creates one from `claims` with the e-mail
    /// marked verified. An existing contact is returned as it is: a visitor's claims never
    /// change a stored contact.
    pub async fn identify(
        &self,
        actor: &Actor,
        email: &str,
        claims: ContactInput,
    ) -> Result<Contact> {
        if !matches!(self.resolve(actor).await?, Resolved::System) {
            return Err(Error::Forbidden("vouch for a customer's identity"));
        }
        let tenant = actor.tenant();
        let email = valid_email("identity.email", email)?
            .ok_or_else(|| Error::validation("identity.email", "empty"))?;
        for _ in 0..2 {
            if let Some(found) = self.inner.store.verified_contact(tenant, &email).await? {
                return Ok(found);
            }
            let input = ContactInput {
                email: Some(email.clone()),
                ..claims.clone()
            };
            match self.new_contact(tenant, input, true).await {
                Ok(contact) => return Ok(contact),
                // Two first visits at once: the other one created it; read theirs.
                Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::Duplicate => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::duplicate("verified e-mail taken"))
    }

    /// Merges contact `from` into contact `into` (admins and supervisors): `from`'s
    /// conversations move to `into` (each records a `contact` change), fields `into`
    /// lacks are taken from `from` (a verified e-mail stays verified), `from`'s
    /// single-conversation visitor tokens now speak for `into`, its tokens for a whole
    /// history are revoked, and `from` is deleted with a staff-only `contact_merged`
    /// event as the audit record. A contact holding a customer account cannot be merged
    /// away (merge the other one into it).
    pub async fn merge_contacts(
        &self,
        actor: &Actor,
        into: ContactId,
        from: ContactId,
    ) -> Result<Contact> {
        let who = self.resolve(actor).await?;
        let allowed = match &who {
            Resolved::System => true,
            Resolved::Staff(me) => matches!(me.role, Role::Admin | Role::Supervisor),
            _ => false,
        };
        if !allowed {
            return Err(Error::Forbidden("merge contacts"));
        }
        if into == from {
            return Err(Error::validation(
                "contact_id",
                "cannot merge a contact into itself",
            ));
        }
        let tenant = actor.tenant();
        let load = |id| async move {
            self.inner
                .store
                .contact(tenant, id)
                .await?
                .ok_or(Error::NotFound("contact"))
        };
        let mut kept = load(into).await?;
        let merged = load(from).await?;
        if let Some(credentials) = &self.inner.credentials
            && credentials.account(tenant, from).await?.is_some()
        {
            return Err(Error::Conflict(
                "the contact merged away holds a customer account; merge the other way".into(),
            ));
        }
        kept.name = kept.name.or(merged.name);
        kept.phone = kept.phone.or(merged.phone);
        kept.address = kept.address.or(merged.address);
        kept.external_id = kept.external_id.or(merged.external_id);
        match (&kept.email, &merged.email) {
            (None, Some(_)) => {
                kept.email = merged.email.clone();
                kept.email_verified = merged.email_verified;
            }
            (Some(a), Some(b)) if a == b => {
                kept.email_verified |= merged.email_verified;
            }
            _ => {}
        }
        for (key, value) in merged.metadata {
            kept.metadata.entry(key).or_insert(value);
        }
        kept.updated_at = self.now();
        // A conversation opened for `from` while this runs makes the final step refuse;
        // moving again picks it up.
        for _ in 0..CAS_ATTEMPTS {
            self.move_conversations(tenant, from, into).await?;
            if let Some(credentials) = &self.inner.credentials {
                credentials
                    .reassign_visitor_tokens(tenant, from, into)
                    .await?;
            }
            match self
                .inner
                .store
                .merge_contact(&kept, from, self.now())
                .await
            {
                Ok(event) => {
                    // `from`'s history tokens were revoked: sockets holding them re-check.
                    self.publish([event]);
                    self.credential_changed(tenant, Ok(())).await?;
                    return Ok(kept);
                }
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(
            "the contact keeps getting new conversations".into(),
        ))
    }

    /// Gives every conversation of `from` to `into`, each with a compare-and-swap write.
    async fn move_conversations(
        &self,
        tenant: crate::ids::TenantId,
        from: ContactId,
        into: ContactId,
    ) -> Result<()> {
        loop {
            let mut query = ConversationQuery::new(
                tenant,
                Scope::Contact {
                    contact: from,
                    conversation: None,
                },
            );
            query.limit = self.inner.limits.max_page;
            let page = self.inner.store.list_conversations(&query).await?;
            if page.items.is_empty() {
                return Ok(());
            }
            for listed in page.items {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let Some(mut next) = self.inner.store.conversation(tenant, listed.id).await?
                    else {
                        break;
                    };
                    if next.contact_id != from {
                        break;
                    }
                    next.contact_id = into;
                    next.updated_at = self.now();
                    let update = ConversationUpdate {
                        conversation: next,
                        change: ConversationChange::Contact { from, to: into },
                        message: None,
                    };
                    match self.inner.store.update_conversation(update).await {
                        Ok(committed) => {
                            self.publish(committed.events);
                            break;
                        }
                        Err(Error::Conflict(_)) if attempt < CAS_ATTEMPTS => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}
