-- A `message_created` event refers to its message's row instead of copying it
-- (src/events.rs): `data` is '{}', `conversation_id` NULL and `message_pk` the row's `pk`.
-- The message was most of the log's bytes, and the log most of the database's.
-- Events written before are made slim by the migration's data step where the message's
-- row is still exactly the logged message; the others stay full.
ALTER TABLE events ADD COLUMN message_pk INTEGER;
-- Finds a message's slim event before its row is changed or deleted.
CREATE INDEX events_message ON events (message_pk) WHERE message_pk IS NOT NULL;
