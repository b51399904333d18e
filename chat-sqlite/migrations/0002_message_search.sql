-- Schema version 2: full-text search over message bodies.
--
-- The index holds words (`unicode61`): it narrows a text search to the messages holding
-- the words (or word prefixes) of the needle, and chat-core's exact test (a case-insensitive
-- substring, `contains_ci`) decides among those. A trigram index would serve any substring
-- but cost about three times as much per posted message (measured: see the crate README).
-- The index is contentless (the bodies live in `messages`) and keeps only messages that
-- are not deleted; triggers keep it in step with inserts, edits, soft deletes and hard
-- deletes.

CREATE VIRTUAL TABLE message_search USING fts5 (
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61'
);

INSERT INTO message_search (rowid, body) SELECT pk, body FROM messages WHERE deleted_at IS NULL;

CREATE TRIGGER message_search_insert AFTER INSERT ON messages WHEN new.deleted_at IS NULL
BEGIN
    INSERT INTO message_search (rowid, body) VALUES (new.pk, new.body);
END;

CREATE TRIGGER message_search_update AFTER UPDATE OF body, deleted_at ON messages
BEGIN
    DELETE FROM message_search WHERE rowid = old.pk AND old.deleted_at IS NULL;
    INSERT INTO message_search (rowid, body) SELECT new.pk, new.body WHERE new.deleted_at IS NULL;
END;

CREATE TRIGGER message_search_delete AFTER DELETE ON messages WHEN old.deleted_at IS NULL
BEGIN
    DELETE FROM message_search WHERE rowid = old.pk;
END;
