-- Conversation events refer to their rows (chat-sqlite's 0019_conversation_event_references.sql):
-- a `conversation_created` or `conversation_updated` event is the conversation as its
-- transaction wrote the row's `data`. A post or a moved read cursor rewrites `data` here,
-- but moves only the conversation's activity (counters, read sequences, last-message times
-- and preview, `updated_at`, `version`). So while the rest of `data` is what the event's
-- transaction wrote, the event's row keeps only its type, its change and that activity
-- (`{"payload":{"type":…,"change":…},"conversation":{…activity}}`) and `conversation_row`
-- is true; a read lays the activity over the row's `data` (src/events.rs). The copy was
-- about 1,000 bytes an event. Before anything else in `data` is written or the row
-- deleted, the store writes the event out in full in the same transaction, so each
-- conversation has at most one such event, its latest.
--
-- The partial index is how a write finds a conversation's slim event.
ALTER TABLE events ADD COLUMN conversation_row boolean;
CREATE INDEX events_conversation ON events (conversation_id) WHERE conversation_row;

-- Existing events are slimmed in place by the Rust step that follows this file in
-- src/migrations.rs (`events::slim_logged_conversations`, which a copy from SQLite runs too).
