-- Schema version 4: what a posted message changes on its conversation, in columns.
--
-- Before this version every message rewrote the conversation's whole JSON (`data`, about
-- 1.2 KB) to move a few counters. Now a message writes only these columns, and they are the
-- truth for those fields when a conversation is read back; the same fields inside `data`
-- are as of the last full write and are ignored. `updated_at`, `last_seq` and `version`
-- already had columns (version 1) and join this role. Times are Unix nanoseconds; the
-- preview of the last message is its sender key (as in `messages.sender`), its first
-- characters and its time, all NULL when there is none.
--
-- chat-sqlite fills the new columns of existing rows from `data` in the same transaction
-- (src/migrations.rs), because RFC 3339 times with nanoseconds cannot be converted exactly
-- in SQL.

ALTER TABLE conversations ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN unread_for_agent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN unread_for_customer INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN first_response_at INTEGER;
ALTER TABLE conversations ADD COLUMN last_message_at INTEGER;
ALTER TABLE conversations ADD COLUMN last_customer_message_at INTEGER;
ALTER TABLE conversations ADD COLUMN last_agent_message_at INTEGER;
ALTER TABLE conversations ADD COLUMN preview_sender TEXT;
ALTER TABLE conversations ADD COLUMN preview_body TEXT;
ALTER TABLE conversations ADD COLUMN preview_at INTEGER;
