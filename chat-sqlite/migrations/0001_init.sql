-- Schema version 1: every entity of the desk.
--
-- Ids are 16-byte UUID blobs, times are Unix nanoseconds (INTEGER). Each entity keeps its
-- full serde form in `data` (the source of truth when reading it back); the other columns
-- exist only to filter, sort and enforce uniqueness, and are written from the same value
-- in the same statement.

CREATE TABLE tenants (
    id   BLOB PRIMARY KEY NOT NULL,
    data TEXT NOT NULL
);

CREATE TABLE contacts (
    id        BLOB PRIMARY KEY NOT NULL,
    tenant_id BLOB NOT NULL,
    name      TEXT,
    email_lc  TEXT, -- ASCII lower-case, as chat-core compares e-mails
    data      TEXT NOT NULL
);
CREATE UNIQUE INDEX contacts_email ON contacts (tenant_id, email_lc) WHERE email_lc IS NOT NULL;

CREATE TABLE agents (
    id        BLOB PRIMARY KEY NOT NULL,
    tenant_id BLOB NOT NULL,
    name      TEXT NOT NULL,
    email_lc  TEXT NOT NULL,
    active    INTEGER NOT NULL,
    data      TEXT NOT NULL
);
CREATE UNIQUE INDEX agents_email ON agents (tenant_id, email_lc);
CREATE INDEX agents_name ON agents (tenant_id, name, id);

CREATE TABLE conversations (
    id                BLOB PRIMARY KEY NOT NULL,
    tenant_id         BLOB NOT NULL,
    contact_id        BLOB NOT NULL REFERENCES contacts (id),
    channel           TEXT NOT NULL,
    mode              TEXT NOT NULL,
    priority          INTEGER NOT NULL, -- 0 low .. 3 urgent, so the queue can sort on it
    department        TEXT,
    assigned_agent_id BLOB,
    pinned            INTEGER NOT NULL,
    title             TEXT,
    updated_at        INTEGER NOT NULL,
    queued_at         INTEGER,
    last_seq          INTEGER NOT NULL,
    version           INTEGER NOT NULL,
    data              TEXT NOT NULL
);
-- Every posted message moves `updated_at`, so only two indexes carry it: the inbox
-- (tenant, newest first) and the inbox of one mode.
CREATE INDEX conversations_updated ON conversations (tenant_id, updated_at, id);
CREATE INDEX conversations_mode_updated ON conversations (tenant_id, mode, updated_at, id);
CREATE INDEX conversations_assigned ON conversations (tenant_id, assigned_agent_id, mode);
CREATE INDEX conversations_department ON conversations (tenant_id, department, mode);
CREATE INDEX conversations_contact ON conversations (contact_id);
CREATE INDEX conversations_queue ON conversations (tenant_id, priority DESC, queued_at, id)
    WHERE mode = 'queued';

CREATE TABLE conversation_tags (
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    tag             TEXT NOT NULL,
    PRIMARY KEY (conversation_id, tag)
) WITHOUT ROWID;
CREATE INDEX conversation_tags_tag ON conversation_tags (tag, conversation_id);

CREATE TABLE conversation_participants (
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    agent_id        BLOB NOT NULL,
    PRIMARY KEY (conversation_id, agent_id)
) WITHOUT ROWID;
CREATE INDEX conversation_participants_agent ON conversation_participants (agent_id, conversation_id);

-- `pk` is the row id the search index (schema version 2) points at.
CREATE TABLE messages (
    pk                INTEGER PRIMARY KEY,
    id                BLOB NOT NULL,
    tenant_id         BLOB NOT NULL,
    conversation_id   BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq               INTEGER NOT NULL,
    sender            TEXT NOT NULL, -- customer | bot | system | agent:<uuid>
    kind              TEXT NOT NULL,
    body              TEXT NOT NULL,
    client_message_id TEXT,
    reply_to          BLOB,
    created_at        INTEGER NOT NULL,
    edited_at         INTEGER,
    deleted_at        INTEGER,
    extra             TEXT -- attachments, entities, metadata, revisions as JSON; NULL when all empty
);
CREATE UNIQUE INDEX messages_id ON messages (id);
CREATE UNIQUE INDEX messages_seq ON messages (conversation_id, seq);
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, sender, client_message_id)
    WHERE client_message_id IS NOT NULL;

CREATE TABLE read_cursors (
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    reader          TEXT NOT NULL, -- customer | agent:<uuid>
    seq             INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    data            TEXT NOT NULL,
    PRIMARY KEY (conversation_id, reader)
) WITHOUT ROWID;

-- The event log outlives deleted conversations, so no foreign key here.
CREATE TABLE events (
    tenant_id       BLOB NOT NULL,
    seq             INTEGER NOT NULL,
    conversation_id BLOB,
    data            TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
