-- Schema version 5: full-text search moves out of this file.
--
-- The FTS5 index of version 2 was kept by triggers, so every posted message paid for
-- tokenizing and segment writes inside the one writer's transaction (about half of its
-- cost). The index now lives in its own file beside this one (`<file>-search`), kept by an
-- indexer thread that follows the `events` table by rowid; it is a derived cache, rebuilt
-- from `messages` whenever it is missing or does not match this database.
--
-- `store_meta` names this database: a random `store_id`, made once here and kept by
-- copies and backups, which the search file records so that a different database put in
-- this one's place is noticed (and indexed afresh) instead of being searched through an
-- index of another.

DROP TRIGGER message_search_insert;
DROP TRIGGER message_search_update;
DROP TRIGGER message_search_delete;
DROP TABLE message_search;

CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO store_meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))));
