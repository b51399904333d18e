-- Inboxes: channels customers write in through (an integration over the API). The token
-- is kept as a digest only; provider secrets are kept in clear, like webhook secrets,
-- because sending needs them. `settings` and `secrets` are JSON objects of strings.
CREATE TABLE inboxes (
    id           BLOB PRIMARY KEY NOT NULL,
    tenant_id    BLOB NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    token_digest TEXT NOT NULL,
    webhook_id   BLOB,
    settings     TEXT NOT NULL,
    secrets      TEXT NOT NULL,
    created_ns   INTEGER NOT NULL,
    updated_ns   INTEGER NOT NULL
);
CREATE INDEX inboxes_tenant ON inboxes (tenant_id, created_ns);

-- Which conversation an inbox's customer (the provider's id for them) writes in. Gone
-- with the inbox or the conversation, so the next message opens a new one.
CREATE TABLE inbox_threads (
    inbox_id        BLOB NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    external_id     TEXT NOT NULL,
    tenant_id       BLOB NOT NULL,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    PRIMARY KEY (inbox_id, external_id)
) WITHOUT ROWID;
CREATE INDEX inbox_threads_conversation ON inbox_threads (conversation_id);
