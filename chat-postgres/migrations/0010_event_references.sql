-- References, not copies (chat-sqlite's 0014_event_references.sql): a `message_created`
-- event is the message as posted, and the message's row is exactly that until the message
-- is edited or deleted or its conversation deleted. So while it is, the event's row holds
-- no copy: `data` is `{}` and `message_id` names the message, whose row a read joins to
-- rebuild the event. Before anything changes or deletes the row, the store writes the
-- event out in full again in the same transaction (src/events.rs).
--
-- The partial index is how an edit finds the message's event. No foreign key: its checks
-- would run on every post and every deleted message.
ALTER TABLE events ADD COLUMN message_id uuid;
CREATE INDEX events_message ON events (message_id) WHERE message_id IS NOT NULL;

-- Existing events are slimmed in place by the statement that follows this file in
-- src/migrations.rs (`events::slim_logged!`, which a copy from SQLite runs too).
