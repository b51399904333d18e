-- Schema version 1: every entity of the desk, its credentials and the event log.
--
-- Each entity keeps its full serde form in `data` (jsonb, the truth when it is read back);
-- the other columns exist only to filter, sort and enforce uniqueness, and are written
-- from the same value in the same statement. Times used for sorting are Unix nanoseconds
-- (bigint), because `timestamptz` keeps microseconds and list cursors carry nanoseconds.
-- Searched fields (titles, contact names and e-mails, message bodies) have a `tsvector` of
-- their words and, when that cannot hold them exactly, a word list (`*_list`), both made
-- by Rust with chat-core's rule (see src/search.rs), so the text filter agrees with
-- chat-core's `TextQuery` to the letter whatever the database's locale.

CREATE TABLE tenants (
    id            uuid PRIMARY KEY,
    created_at_ns bigint NOT NULL,
    data          jsonb NOT NULL
);

-- The newest event sequence of each tenant. A write takes its sequences by updating this
-- row in the transaction that inserts the events: the row lock serializes the tenant's
-- event writers until commit, so events commit in sequence order and a reader never sees
-- event N+1 before N (a PostgreSQL `SEQUENCE` would hand out numbers that commit out of
-- order and leave holes on rollback).
CREATE TABLE event_heads (
    tenant_id uuid PRIMARY KEY,
    last_seq  bigint NOT NULL
);

-- The event log outlives deleted conversations, so no foreign key here.
CREATE TABLE events (
    tenant_id       uuid NOT NULL,
    seq             bigint NOT NULL,
    conversation_id uuid,
    data            jsonb NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE contacts (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    email_lc       text, -- ASCII lower-case, as chat-core compares e-mails
    email_verified boolean NOT NULL,
    name_words     tsvector NOT NULL,
    name_list      text,
    email_words    tsvector NOT NULL,
    email_list     text,
    data           jsonb NOT NULL
);
CREATE INDEX contacts_name_words ON contacts USING gin (name_words);
CREATE INDEX contacts_email_words ON contacts USING gin (email_words);
CREATE INDEX contacts_email ON contacts (tenant_id, email_lc);
-- Only a verified e-mail identifies a contact; claims may repeat.
CREATE UNIQUE INDEX contacts_verified_email ON contacts (tenant_id, email_lc)
    WHERE email_verified;

CREATE TABLE agents (
    id        uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name      text NOT NULL,
    email_lc  text NOT NULL,
    active    boolean NOT NULL,
    data      jsonb NOT NULL
);
CREATE UNIQUE INDEX agents_email ON agents (tenant_id, email_lc);
CREATE INDEX agents_name ON agents (tenant_id, name COLLATE "C", id);

CREATE TABLE conversations (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL,
    contact_id        uuid NOT NULL REFERENCES contacts (id),
    channel           text NOT NULL,
    mode              text NOT NULL,
    priority          smallint NOT NULL, -- 0 low .. 3 urgent, so the queue can sort on it
    department        text,
    assigned_agent_id uuid,
    participants      uuid[] NOT NULL,
    tags              text[] NOT NULL,
    pinned            boolean NOT NULL,
    title_words       tsvector NOT NULL,
    title_list        text,
    updated_at_ns     bigint NOT NULL,
    queued_at_ns      bigint,
    version           bigint NOT NULL,
    data              jsonb NOT NULL
);
CREATE INDEX conversations_updated ON conversations (tenant_id, updated_at_ns, id);
CREATE INDEX conversations_mode_updated ON conversations (tenant_id, mode, updated_at_ns, id);
CREATE INDEX conversations_assigned ON conversations (tenant_id, assigned_agent_id, mode);
CREATE INDEX conversations_department ON conversations (tenant_id, department, mode);
CREATE INDEX conversations_contact ON conversations (contact_id);
CREATE INDEX conversations_queue ON conversations (tenant_id, priority DESC, queued_at_ns, id)
    WHERE mode = 'queued';
CREATE INDEX conversations_participants ON conversations USING gin (participants);
CREATE INDEX conversations_tags ON conversations USING gin (tags);
CREATE INDEX conversations_title_words ON conversations USING gin (title_words);

-- `words` holds the body's words as lexemes with their positions, taken verbatim (cut by
-- Rust with chat-core's rule: see src/search.rs), so the GIN index answers a text search,
-- phrases included, without PostgreSQL's parser or locale; `word_list` is there only for
-- a body a tsvector cannot hold exactly. A deleted message has no words.
CREATE TABLE messages (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL,
    conversation_id   uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq               bigint NOT NULL,
    sender            text NOT NULL, -- customer | bot | system | agent:<uuid>
    kind              text NOT NULL,
    client_message_id text,
    deleted           boolean NOT NULL,
    words             tsvector NOT NULL,
    word_list         text,
    data              jsonb NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, sender, client_message_id)
    WHERE client_message_id IS NOT NULL;
CREATE INDEX messages_words ON messages USING gin (words);

CREATE TABLE read_cursors (
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    reader          text NOT NULL, -- customer | agent:<uuid>
    seq             bigint NOT NULL,
    data            jsonb NOT NULL,
    PRIMARY KEY (conversation_id, reader)
);

-- Secrets the server authenticates with. Tokens are stored as digests only.
CREATE TABLE credentials (
    agent_id      uuid PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    password_hash text,
    token_version bigint NOT NULL
);

CREATE TABLE visitor_tokens (
    digest          text PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    contact_id      uuid NOT NULL,
    conversation_id uuid,
    data            jsonb NOT NULL
);
CREATE INDEX visitor_tokens_contact ON visitor_tokens (tenant_id, contact_id);

CREATE TABLE bot_tokens (
    digest        text PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    created_at_ns bigint NOT NULL,
    data          jsonb NOT NULL
);
CREATE INDEX bot_tokens_tenant ON bot_tokens (tenant_id, created_at_ns);

-- Customer accounts. The hash has a column of its own and is never part of `data`, so no
-- contact or account read carries it.
CREATE TABLE accounts (
    contact_id    uuid PRIMARY KEY REFERENCES contacts (id) ON DELETE CASCADE,
    tenant_id     uuid NOT NULL,
    email_lc      text,
    password_hash text NOT NULL,
    data          jsonb NOT NULL
);
CREATE UNIQUE INDEX accounts_email ON accounts (tenant_id, email_lc) WHERE email_lc IS NOT NULL;

-- Login names (usernames and aliases), trimmed and lower-case; one namespace per tenant.
CREATE TABLE account_names (
    tenant_id  uuid NOT NULL,
    name_lc    text NOT NULL,
    contact_id uuid NOT NULL REFERENCES accounts (contact_id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, name_lc)
);
