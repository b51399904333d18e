//! The component schemas derived from the types the server serializes and parses
//! (`utoipa::ToSchema`, chat-core's `openapi` feature), so the document follows a field
//! added, renamed or made optional in Rust instead of being copied by hand.

use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::{RefOr, Schema};

use chat_core::report::{Csat, Dimension, Durations, Feedback, Interval, ReportRow, SeriesPoint};
use chat_core::{
    Agent, Attachment, BusinessHours, CannedResponse, Channel, Contact, Conversation, EntityRef,
    Mention, Message, Mode, OpenRange, Priority, ReadCursor, TenantSettings,
};

/// Every derived schema by name, with the schemas they refer to.
pub(super) fn schemas() -> Map<String, Value> {
    let mut all: Vec<(String, RefOr<Schema>)> = crate::api::decode::body_schemas();
    all.extend(crate::api::decode::answer_schemas());
    add::<Conversation>(&mut all);
    add::<Message>(&mut all);
    add::<Attachment>(&mut all);
    add::<EntityRef>(&mut all);
    add::<ReadCursor>(&mut all);
    add::<Contact>(&mut all);
    add::<Agent>(&mut all);
    add::<Mention>(&mut all);
    add::<CannedResponse>(&mut all);
    add::<BusinessHours>(&mut all);
    add::<OpenRange>(&mut all);
    add::<TenantSettings>(&mut all);
    add::<Mode>(&mut all);
    add::<Priority>(&mut all);
    add::<Channel>(&mut all);
    add::<Durations>(&mut all);
    add::<Csat>(&mut all);
    add::<ReportRow>(&mut all);
    add::<SeriesPoint>(&mut all);
    add::<Feedback>(&mut all);
    add::<Dimension>(&mut all);
    add::<Interval>(&mut all);
    all.into_iter()
        .map(|(name, schema)| {
            let json = serde_json::to_value(schema).expect("schemas serialize");
            (name, json)
        })
        .collect()
}

/// The schema of one query parameter that a handler parses into `T`, as the body
/// schemas are derived: the enums the server reads with `FromStr` (`mode`, `priority`,
/// `channel`) are the same types and serialize to the same words.
pub(crate) fn query_schema<T: ToSchema>() -> Value {
    let mut all = Vec::new();
    add::<T>(&mut all);
    let (_, schema) = all.swap_remove(0);
    serde_json::to_value(schema).expect("schemas serialize")
}

fn add<T: ToSchema>(all: &mut Vec<(String, RefOr<Schema>)>) {
    all.push((T::name().into_owned(), T::schema()));
    T::schemas(all);
}
