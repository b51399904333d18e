use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{ContactId, TenantId};

/// The customer.
///
/// Who a contact is can be known two ways, and only one of them joins contacts:
/// - an e-mail a visitor typed (or a phone number, which is never verified) is a *claim*:
///   it is stored and shown to staff, with `email_verified = false`, and finds nothing;
/// - an e-mail proven by the embedding site's signed identity or by a staff merge sets
///   `email_verified`: a later verified open with the same e-mail lands on this contact,
///   so the customer's history follows them. A verified e-mail is unique per tenant.
///
/// A customer account (sign-up, login) is a contact too, with its login kept apart in
/// the credential store ([`Account`](crate::credentials::Account)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contact {
    /// Id.
    pub id: ContactId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Display name.
    pub name: Option<String>,
    /// E-mail (stored lower-case): a claim unless `email_verified`.
    pub email: Option<String>,
    /// Whether `email` was proven (a signed identity, a staff merge). Unique per tenant
    /// among verified contacts; only a verified e-mail ever finds this contact again.
    #[serde(default)]
    pub email_verified: bool,
    /// Phone number: always a claim.
    pub phone: Option<String>,
    /// Postal address.
    pub address: Option<String>,
    /// The embedding site's own id for a logged-in customer.
    pub external_id: Option<String>,
    /// Free metadata: user agent, IP, page URL, referrer, anything the site knows.
    /// Staff only: the customer's view leaves it out.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub metadata: BTreeMap<String, String>,
    /// When first seen.
    #[serde(with = "super::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "super::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Contact {
    /// This contact with every personal field gone: what an erasure leaves, so that the
    /// id keeps answering (a repeated erasure finds it and has nothing to do) while
    /// nothing of the person remains. Only the id, tenant and first-seen time stay.
    pub fn erased(&self, at: OffsetDateTime) -> Self {
        Self {
            id: self.id,
            tenant_id: self.tenant_id,
            name: None,
            email: None,
            email_verified: false,
            phone: None,
            address: None,
            external_id: None,
            metadata: BTreeMap::new(),
            created_at: self.created_at,
            updated_at: at,
        }
    }

    /// Whether the contact holds no personal field at all.
    pub fn is_blank(&self) -> bool {
        self.name.is_none()
            && self.email.is_none()
            && self.phone.is_none()
            && self.address.is_none()
            && self.external_id.is_none()
            && self.metadata.is_empty()
    }
}

/// What the caller says about a new contact when opening a conversation: claims only.
/// Nothing here ever finds or changes an existing contact.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ContactInput {
    /// Display name.
    pub name: Option<String>,
    /// E-mail, kept as an unverified claim.
    /// Checked loosely (trimmed, an `@`, no space); empty: none.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 254, pattern = r"^\s*(\S*@\S*)?\s*$")
    )]
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// The embedding site's id for this customer.
    pub external_id: Option<String>,
    /// Free metadata.
    pub metadata: BTreeMap<String, String>,
}
