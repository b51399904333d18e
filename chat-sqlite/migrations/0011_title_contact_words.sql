-- Word indexes for conversation titles and contact names and e-mails.
--
-- A text search finds conversations by their title, their contact's name or e-mail, or a
-- message. Messages are looked up in the search file's word index; titles and contacts were
-- tested one by one (an ASCII `LIKE`, then chat-core's test), which read all 100,000 titles
-- and contacts of a tenant twice per search (the page and the counts): about 30 ms each on
-- the growth bench, most of a search's time. These indexes hold their words instead, so a
-- search reads only the titles and contacts that hold the words, and chat-core's test
-- (`text_matches`) decides among those as it does for messages.
--
-- In the database itself, not the search file: titles and contacts change seldom (no posted
-- message touches them), so triggers keep the indexes in the writing transaction and they
-- are always exact for the snapshot that reads them. Contentless (the text lives in its
-- table), `unicode61` as the message index: the same words, diacritics folded.

CREATE VIRTUAL TABLE conversation_title_words USING fts5 (
    title,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61'
);

INSERT INTO conversation_title_words (rowid, title)
    SELECT rowid, title FROM conversations WHERE title IS NOT NULL;

CREATE TRIGGER conversation_title_words_insert AFTER INSERT ON conversations
WHEN new.title IS NOT NULL BEGIN
    INSERT INTO conversation_title_words (rowid, title) VALUES (new.rowid, new.title);
END;

CREATE TRIGGER conversation_title_words_update AFTER UPDATE OF title ON conversations BEGIN
    DELETE FROM conversation_title_words WHERE rowid = old.rowid;
    INSERT INTO conversation_title_words (rowid, title)
        SELECT new.rowid, new.title WHERE new.title IS NOT NULL;
END;

CREATE TRIGGER conversation_title_words_delete AFTER DELETE ON conversations BEGIN
    DELETE FROM conversation_title_words WHERE rowid = old.rowid;
END;

CREATE VIRTUAL TABLE contact_words USING fts5 (
    name,
    email,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61'
);

INSERT INTO contact_words (rowid, name, email)
    SELECT rowid, name, email_lc FROM contacts WHERE name IS NOT NULL OR email_lc IS NOT NULL;

CREATE TRIGGER contact_words_insert AFTER INSERT ON contacts
WHEN new.name IS NOT NULL OR new.email_lc IS NOT NULL BEGIN
    INSERT INTO contact_words (rowid, name, email) VALUES (new.rowid, new.name, new.email_lc);
END;

CREATE TRIGGER contact_words_update AFTER UPDATE OF name, email_lc ON contacts BEGIN
    DELETE FROM contact_words WHERE rowid = old.rowid;
    INSERT INTO contact_words (rowid, name, email)
        SELECT new.rowid, new.name, new.email_lc WHERE new.name IS NOT NULL OR new.email_lc IS NOT NULL;
END;

CREATE TRIGGER contact_words_delete AFTER DELETE ON contacts BEGIN
    DELETE FROM contact_words WHERE rowid = old.rowid;
END;
