//! Customer accounts: sign up, log in, change the password, disable. An account is a
//! contact plus a login kept in the credential store; its password hash lives in a table
//! of its own and never in the contact, so no contact write, view or merge can reach it.

use std::sync::Arc;

use super::Engine;
use super::contacts::valid_email;
use crate::credentials::{Account, Credentials, PasswordHasher};
use crate::error::{Error, Result};
use crate::ids::{ContactId, TenantId};
use crate::model::{ContactInput, Role};
use crate::policy::{Actor, Resolved};

/// Input for [`Engine::sign_up`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SignUp {
    /// Login name: 1 to 64 characters, unique per tenant (case-insensitive).
    pub username: String,
    /// Optional e-mail, unique among the tenant's accounts; a claim, never verified.
    pub email: Option<String>,
    /// 1 to 1024 characters.
    pub password: String,
    /// The contact's display name (default: the username).
    pub name: Option<String>,
}

impl Engine {
    pub(super) fn passwords(&self) -> Result<&Arc<dyn PasswordHasher>> {
        self.inner.passwords.as_ref().ok_or_else(|| {
            Error::storage_kind(
                crate::error::StorageKind::Unavailable,
                "no password hasher configured",
            )
        })
    }

    fn accounts(&self) -> Result<&Arc<dyn Credentials>> {
        self.inner.credentials.as_ref().ok_or_else(|| {
            Error::storage_kind(
                crate::error::StorageKind::Unavailable,
                "no credential store configured",
            )
        })
    }

    /// Signs a customer up: a new contact and its account. Only the system (the server on
    /// behalf of a sign-up form) and admins may. A taken username or e-mail is
    /// [`Error::Validation`] on `username` or `email` with "already registered".
    pub async fn sign_up(
        &self,
        actor: &Actor,
        input: SignUp,
    ) -> Result<(Account, crate::model::Contact)> {
        self.may_administer_accounts(actor).await?;
        let tenant = actor.tenant();
        let username = login_name(&input.username)?;
        let email = match input.email.as_deref() {
            Some(e) => valid_email("email", e)?,
            None => None,
        };
        check_password("password", &input.password)?;
        let accounts = self.accounts()?;
        let taken = || Error::validation("username", "already registered");
        let email_taken = || Error::validation("email", "already registered");
        if accounts.account_by_name(tenant, username).await?.is_some() {
            return Err(taken());
        }
        if let Some(e) = &email
            && accounts.account_by_email(tenant, e).await?.is_some()
        {
            return Err(email_taken());
        }
        let hash = self.passwords()?.hash(&input.password).await?;
        let contact = self.contact_from(
            tenant,
            ContactInput {
                name: Some(input.name.unwrap_or_else(|| username.to_owned())),
                email: email.clone(),
                external_id: Some(username.to_owned()),
                ..ContactInput::default()
            },
            false,
        )?;
        let now = self.now();
        let account = Account {
            tenant_id: tenant,
            contact_id: contact.id,
            username: username.to_owned(),
            email,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        match accounts.create_account(&contact, &account, &hash).await {
            Ok(()) => Ok((account, contact)),
            // A sign-up with the same name or e-mail committed first: say which.
            Err(Error::Conflict(_)) => {
                if accounts.account_by_name(tenant, username).await?.is_some() {
                    Err(taken())
                } else {
                    Err(email_taken())
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Checks a login name and password. `None` for an unknown name, a wrong password or
    /// a disabled account, all after the same work (a decoy check for unknown names).
    /// Authentication comes before there is an actor, so this takes a tenant.
    pub async fn log_in(
        &self,
        tenant: TenantId,
        name: &str,
        password: &str,
    ) -> Result<Option<(Account, crate::model::Contact)>> {
        let accounts = self.accounts()?;
        let account = match name.trim() {
            "" => None,
            n => accounts.account_by_name(tenant, n).await?,
        };
        let hash = match &account {
            Some(a) => accounts.account_password_hash(tenant, a.contact_id).await?,
            None => None,
        };
        let valid = self.passwords()?.verify(password, hash.as_deref()).await?;
        let Some(account) = account.filter(|a| valid && hash.is_some() && !a.disabled) else {
            return Ok(None);
        };
        let contact = self
            .inner
            .store
            .contact(tenant, account.contact_id)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        Ok(Some((account, contact)))
    }

    /// Changes an account's password; the current one is required, even from the system.
    /// Every visitor token of the contact is revoked, so a stolen session ends here: the
    /// caller logs in again. A wrong current password is [`Error::Forbidden`].
    pub async fn change_account_password(
        &self,
        actor: &Actor,
        contact: ContactId,
        current: &str,
        new: &str,
    ) -> Result<()> {
        let own = match self.resolve(actor).await? {
            Resolved::Customer { contact: me, .. } => me == contact,
            Resolved::System => true,
            _ => false,
        };
        if !own {
            return Err(Error::NotFound("account"));
        }
        check_password("new_password", new)?;
        let tenant = actor.tenant();
        let accounts = self.accounts()?;
        let account = accounts
            .account(tenant, contact)
            .await?
            .filter(|a| !a.disabled)
            .ok_or(Error::NotFound("account"))?;
        let hash = accounts
            .account_password_hash(tenant, account.contact_id)
            .await?;
        if !self.passwords()?.verify(current, hash.as_deref()).await? || hash.is_none() {
            return Err(Error::Forbidden("the current password is wrong"));
        }
        let hash = self.passwords()?.hash(new).await?;
        let event = accounts
            .set_account_password(tenant, contact, &hash, self.now())
            .await?;
        self.credential_change_logged(event);
        Ok(())
    }

    /// Disables or enables an account (admins and the system). Disabling revokes every
    /// visitor token of the contact; its conversations stay.
    pub async fn set_account_disabled(
        &self,
        actor: &Actor,
        contact: ContactId,
        disabled: bool,
    ) -> Result<Account> {
        self.may_administer_accounts(actor).await?;
        let (account, event) = self
            .accounts()?
            .set_account_disabled(actor.tenant(), contact, disabled, self.now())
            .await?;
        self.credential_change_logged(event);
        Ok(account)
    }

    /// Gives an account another login name (admins and the system), e.g. a customer
    /// number beside the phone number it signed up with. A taken name is
    /// [`Error::Validation`] on `name`.
    pub async fn add_account_name(
        &self,
        actor: &Actor,
        contact: ContactId,
        name: &str,
    ) -> Result<()> {
        self.may_administer_accounts(actor).await?;
        let name = login_name(name)
            .map_err(|_| Error::validation("name", "must be 1 to 64 characters"))?;
        let accounts = self.accounts()?;
        if accounts.account(actor.tenant(), contact).await?.is_none() {
            return Err(Error::NotFound("account"));
        }
        match accounts
            .add_account_name(actor.tenant(), contact, name)
            .await
        {
            Err(Error::Conflict(_)) => Err(Error::validation("name", "already registered")),
            other => other,
        }
    }

    /// The account of a contact: the customer its own, staff and the system any.
    pub async fn account(&self, actor: &Actor, contact: ContactId) -> Result<Account> {
        let visible = match self.resolve(actor).await? {
            Resolved::Customer { contact: me, .. } => me == contact,
            Resolved::Staff(_) | Resolved::System => true,
            Resolved::Bot => false,
        };
        if !visible {
            return Err(Error::NotFound("account"));
        }
        self.accounts()?
            .account(actor.tenant(), contact)
            .await?
            .ok_or(Error::NotFound("account"))
    }

    /// The account with this login name (staff and the system).
    pub async fn find_account(&self, actor: &Actor, name: &str) -> Result<Option<Account>> {
        match self.resolve(actor).await? {
            Resolved::Staff(_) | Resolved::System => {}
            _ => return Err(Error::Forbidden("look accounts up")),
        }
        match name.trim() {
            "" => Ok(None),
            n => self.accounts()?.account_by_name(actor.tenant(), n).await,
        }
    }

    async fn may_administer_accounts(&self, actor: &Actor) -> Result<()> {
        match self.resolve(actor).await? {
            Resolved::System => Ok(()),
            Resolved::Staff(me) if me.role == Role::Admin => Ok(()),
            _ => Err(Error::Forbidden("administer customer accounts")),
        }
    }
}

/// A login name: trimmed, 1 to 64 characters.
fn login_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(Error::validation("username", "must be 1 to 64 characters"));
    }
    Ok(name)
}

fn check_password(field: &'static str, password: &str) -> Result<()> {
    // Characters, as JSON Schema's maxLength counts them (at most 4 KiB to hash).
    if password.is_empty() || password.chars().count() > 1024 {
        return Err(Error::validation(field, "must be 1 to 1024 characters"));
    }
    Ok(())
}
