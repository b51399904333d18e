-- A `conversation_created` or `conversation_updated` event refers to its conversation's
-- row instead of copying it (src/events.rs): while the row's `data` is what the event's
-- transaction wrote, the event keeps only its type and change
-- (`{"payload":{"type":…,"change":…}}`, plus the fields that differ from `data` for a
-- conversation opened with its first messages) and `conversation_row` is 1. The copy was about
-- 1,000 bytes an event. Before `data` is written again or the row deleted, the event is
-- written out in full, so each conversation has at most one such event.
-- Events written before are made slim by the migration's data step where the row's
-- `data` is still exactly the logged conversation; the others stay full.
ALTER TABLE events ADD COLUMN conversation_row INTEGER;
-- Finds a conversation's slim event before its `data` is written again.
CREATE INDEX events_conversation ON events (conversation_id) WHERE conversation_row IS NOT NULL;
