-- Telegram inboxes in polling mode: the offset of the next update to ask `getUpdates` for
-- (durable, so a restart neither repeats nor skips updates), and the lease of the one
-- node that polls the inbox (its id and when the lease lapses, in ns).
ALTER TABLE inboxes ADD COLUMN poll_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inboxes ADD COLUMN poll_node TEXT;
ALTER TABLE inboxes ADD COLUMN poll_until_ns INTEGER;
