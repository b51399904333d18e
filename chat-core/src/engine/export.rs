//! The tenant export ([`crate::export`]) through the engine: who may take one, and with
//! what in it.

use super::Engine;
use crate::error::{Error, Result};
use crate::export::{ExportOptions, ExportSink};
use crate::policy::{Actor, Resolved};

impl Engine {
    /// Streams everything the actor's tenant owns into `out` as JSON Lines (see
    /// [`crate::export`]); returns the number of row lines. Admins and the system only.
    ///
    /// Secrets (password hashes, token digests, webhook secrets) only for the system
    /// actor, the operator's tool on the machine: an admin's export is handed over a
    /// network and kept in places a database file is not, so it never carries them
    /// ([`Error::Forbidden`] if asked).
    pub async fn export_tenant(
        &self,
        actor: &Actor,
        options: ExportOptions,
        out: ExportSink,
    ) -> Result<u64> {
        let who = self.admin_only(actor, "export the tenant").await?;
        if options.secrets && !matches!(who, Resolved::System) {
            return Err(Error::Forbidden("export secrets"));
        }
        self.inner
            .store
            .export_tenant(actor.tenant(), options, out)
            .await
    }
}
