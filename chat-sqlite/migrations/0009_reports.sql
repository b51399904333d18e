-- Schema version 9: what the reports aggregate, in columns with their indexes.
--
-- Reports count conversations opened, closed and rated in a period and the times between
-- (see chat_core::report). Those times lived only in `data`; here they get columns, written
-- by every full write of a conversation (a posted message never changes them), and one
-- index each on (tenant, time), so a report reads a range of an index rather than the
-- table. `created_at` is 0 only until the data step below fills it.
--
-- A reopen clears `closed_at`, so reopens are marks of their own: one row per reopen,
-- gone with the conversation. chat-sqlite fills both from `data` and from the event log's
-- `reopened` changes in the same transaction (src/migrations.rs): RFC 3339 times with
-- nanoseconds cannot be converted exactly in SQL.

ALTER TABLE conversations ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN closed_at INTEGER;
ALTER TABLE conversations ADD COLUMN rated_at INTEGER;
ALTER TABLE conversations ADD COLUMN rating_score INTEGER;

-- Each index carries the breakdown keys (and the figure's other time or score, and the id
-- the tags join on), so a
-- report reads the index alone, never the 1 KB rows (a report over all of them reads
-- 6 MB of index instead of 150 MB of table). A posted message writes
-- `first_response_at` only when it changes (src/write.rs), so holding it here costs the
-- first agent reply one index update, not every message.
CREATE INDEX conversations_created
    ON conversations (tenant_id, created_at, first_response_at, assigned_agent_id, department, channel, id);
CREATE INDEX conversations_closed
    ON conversations (tenant_id, closed_at, created_at, assigned_agent_id, department, channel, id)
    WHERE closed_at IS NOT NULL;
CREATE INDEX conversations_rated
    ON conversations (tenant_id, rated_at, rating_score, assigned_agent_id, department, channel, id)
    WHERE rated_at IS NOT NULL;

CREATE TABLE conversation_reopens (
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    tenant_id       BLOB NOT NULL,
    at              INTEGER NOT NULL
);
CREATE INDEX conversation_reopens_at ON conversation_reopens (tenant_id, at);
CREATE INDEX conversation_reopens_conversation ON conversation_reopens (conversation_id);
