use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{ContactId, TenantId};

/// The customer. Known by e-mail where one is given, so their history follows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// Id.
    pub id: ContactId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Display name.
    pub name: Option<String>,
    /// E-mail, unique per tenant when present (stored lower-case).
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Postal address.
    pub address: Option<String>,
    /// The embedding site's own id for a logged-in customer.
    pub external_id: Option<String>,
    /// Free metadata: user agent, IP, page URL, referrer, anything the site knows.
    pub metadata: BTreeMap<String, String>,
    /// When first seen.
    #[serde(with = "super::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "super::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What the caller knows about a contact when opening a conversation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactInput {
    /// Display name.
    pub name: Option<String>,
    /// E-mail; an existing contact with it is reused.
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
