//! Conversions between domain values and column values.

use chat_core::{
    Account, Agent, Contact, Conversation, Error, Event, Message, Priority, ReadCursor, Reader,
    Result, Sender, Tenant,
};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use crate::error::corrupt_row;

/// Unix nanoseconds, the form every sorting time column uses.
pub(crate) fn ns(at: OffsetDateTime) -> Result<i64> {
    i64::try_from(at.unix_timestamp_nanos()).map_err(|_| {
        Error::validation(
            "time",
            format!("{at} is outside the years 1677-2262 the time columns hold"),
        )
    })
}

/// [`ns`] for optional times.
pub(crate) fn ns_opt(at: Option<OffsetDateTime>) -> Result<Option<i64>> {
    at.map(ns).transpose()
}

/// Counters and sequences are `u64` in the domain and `bigint` in PostgreSQL.
pub(crate) fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `LIMIT` from a `usize`.
pub(crate) fn limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The `sender` column: `customer`, `bot`, `system` or `agent:<uuid>`.
pub(crate) fn sender_key(sender: Sender) -> String {
    match sender {
        Sender::Agent(id) => format!("agent:{}", id.0),
        other => other.kind().to_owned(),
    }
}

/// The `reader` column: `customer` or `agent:<uuid>`.
pub(crate) fn reader_key(reader: Reader) -> String {
    match reader {
        Reader::Customer => "customer".to_owned(),
        Reader::Agent(id) => format!("agent:{}", id.0),
    }
}

/// 0 low .. 3 urgent, so the queue sorts on it.
pub(crate) fn priority_rank(p: Priority) -> i16 {
    match p {
        Priority::Low => 0,
        Priority::Medium => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

/// Reads column `index` of `row` as the JSON of a `T`.
pub(crate) fn json<T: DeserializeOwned>(row: &Row, index: usize, what: &str) -> Result<T> {
    row.try_get::<_, Json<T>>(index)
        .map(|j| j.0)
        .map_err(|e| corrupt_row(what, e))
}

/// Names the domain types whose rows [`json`] reads, for error messages.
pub(crate) trait Named {
    const NAME: &'static str;
}

macro_rules! named {
    ($($t:ty = $n:literal),*) => { $(impl Named for $t { const NAME: &'static str = $n; })* };
}
named!(
    Tenant = "tenant",
    Contact = "contact",
    Agent = "agent",
    Conversation = "conversation",
    Message = "message",
    Event = "event",
    ReadCursor = "read cursor",
    Account = "account",
    chat_core::VisitorToken = "visitor token",
    chat_core::BotToken = "bot token",
    chat_core::CannedResponse = "canned response",
    chat_core::Mention = "mention"
);

/// Reads column 0 of every row as a `T`.
pub(crate) fn all<T: DeserializeOwned + Named>(rows: &[Row]) -> Result<Vec<T>> {
    rows.iter().map(|r| json(r, 0, T::NAME)).collect()
}

/// Reads column 0 of an optional row as a `T`.
pub(crate) fn one<T: DeserializeOwned + Named>(row: Option<Row>) -> Result<Option<T>> {
    row.map(|r| json(&r, 0, T::NAME)).transpose()
}
