//! The claim both outboxes make (`mail_outbox`, `webhook_deliveries`): lock the due rows
//! no other node holds, push their `next_attempt_ns` to the lease's end in the same
//! statement, and return them with the due time they had.
//!
//! `FOR UPDATE SKIP LOCKED`: two nodes claiming at once take different rows, and a row
//! claimed is not due again until its lease lapses (a dead worker's claim), or its attempt
//! is recorded.

use chat_core::Result;
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::codec::{limit, ns};
use crate::error::Db;
use crate::store::PostgresStore;

/// What one outbox's claim is made of.
pub(crate) struct Claim<'a> {
    /// The table.
    pub table: &'a str,
    /// Its alias in `due` (`d`), which `due_when` and `order` use.
    pub alias: &'a str,
    /// The primary key's columns.
    pub key: &'a [&'a str],
    /// What makes a row due besides `state = 'pending' AND next_attempt_ns <= now`.
    pub also_when: Option<&'a str>,
    /// The order rows are claimed in (the oldest due first).
    pub order: &'a str,
    /// The columns returned, unqualified, comma-separated.
    pub columns: &'a str,
}

impl Claim<'_> {
    /// The statement: `$1` now, `$2` the lease's end, `$3` the most rows.
    fn statement(&self) -> String {
        let Claim {
            table,
            alias: a,
            key,
            also_when,
            order,
            columns,
        } = self;
        let picked = key.iter().map(|k| format!("{a}.{k}")).collect::<Vec<_>>();
        let joined = key
            .iter()
            .map(|k| format!("{a}.{k} = due.{k}"))
            .collect::<Vec<_>>();
        let returned = columns
            .split(',')
            .map(|c| format!("{a}.{}", c.trim()))
            .collect::<Vec<_>>();
        let also = also_when.map(|w| format!(" AND {w}")).unwrap_or_default();
        format!(
            "WITH due AS ( \
                 SELECT {picked}, {a}.next_attempt_ns AS was FROM {table} {a} \
                 WHERE {a}.state = 'pending' AND {a}.next_attempt_ns <= $1{also} \
                 ORDER BY {order} LIMIT $3 FOR UPDATE OF {a} SKIP LOCKED \
             ) UPDATE {table} {a} SET next_attempt_ns = $2 FROM due \
             WHERE {joined} RETURNING {returned}, due.was",
            picked = picked.join(", "),
            joined = joined.join(" AND "),
            returned = returned.join(", "),
        )
    }

    /// The column index of the due time the row had before the claim (after `columns`).
    pub fn was_index(&self) -> usize {
        self.columns.split(',').count()
    }
}

impl PostgresStore {
    /// Claims up to `max` due rows until `lease_until`; each row ends with the due time it
    /// had (at [`Claim::was_index`]).
    pub(crate) async fn claim_outbox(
        &self,
        claim: &Claim<'_>,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        max: usize,
    ) -> Result<Vec<Row>> {
        let client = self.client().await?;
        client
            .query(
                &claim.statement(),
                &[&ns(now)?, &ns(lease_until)?, &limit(max)],
            )
            .await
            .db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_locks_due_rows_and_returns_their_old_due_time() {
        let claim = Claim {
            table: "mail_outbox",
            alias: "m",
            key: &["id"],
            also_when: None,
            order: "m.next_attempt_ns, m.id",
            columns: "id, state",
        };
        assert_eq!(
            claim
                .statement()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            "WITH due AS ( SELECT m.id, m.next_attempt_ns AS was FROM mail_outbox m \
             WHERE m.state = 'pending' AND m.next_attempt_ns <= $1 \
             ORDER BY m.next_attempt_ns, m.id LIMIT $3 FOR UPDATE OF m SKIP LOCKED ) \
             UPDATE mail_outbox m SET next_attempt_ns = $2 FROM due WHERE m.id = due.id \
             RETURNING m.id, m.state, due.was"
        );
        assert_eq!(claim.was_index(), 2);
    }
}
