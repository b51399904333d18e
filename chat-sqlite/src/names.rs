//! Customer-account login names as the store keys them: shared by the account methods
//! and by the schema-6 migration that moved accounts out of the token table.

use chat_core::TenantId;
use sha2::{Digest, Sha256};

/// How schema 5 keyed a login name in the visitor-token table (kept so names it stored
/// as a digest are still found after the upgrade).
pub(crate) fn legacy_name_digest(tenant: TenantId, name_lc: &str) -> String {
    let digest = Sha256::digest(format!("{tenant}:{name_lc}").as_bytes());
    format!("account:{}", hex::encode(digest))
}

/// Login names compare by Unicode lower case, after trimming, as in the reference store.
pub(crate) fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}
