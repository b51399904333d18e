-- Telegram inboxes in polling mode (the layout of chat-sqlite's 0018_inbox_polls.sql): the
-- offset of the next update to ask `getUpdates` for, and the one polling node's lease.
ALTER TABLE inboxes ADD COLUMN poll_offset bigint NOT NULL DEFAULT 0;
ALTER TABLE inboxes ADD COLUMN poll_node text;
ALTER TABLE inboxes ADD COLUMN poll_until_ns bigint;
