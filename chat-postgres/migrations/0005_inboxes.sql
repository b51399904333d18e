-- Inboxes and their customers' threads (the layout of chat-sqlite's 0013_inboxes.sql).
-- The token is kept as a digest; provider secrets in clear, like webhook secrets, because
-- sending needs them. `settings` and `secrets` are JSON objects of strings.
CREATE TABLE inboxes (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    name         text NOT NULL,
    kind         text NOT NULL,
    token_digest text NOT NULL,
    webhook_id   uuid,
    settings     text NOT NULL,
    secrets      text NOT NULL,
    created_ns   bigint NOT NULL,
    updated_ns   bigint NOT NULL
);
CREATE INDEX inboxes_tenant ON inboxes (tenant_id, created_ns);

CREATE TABLE inbox_threads (
    inbox_id        uuid NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    external_id     text NOT NULL,
    tenant_id       uuid NOT NULL,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    PRIMARY KEY (inbox_id, external_id)
);
CREATE INDEX inbox_threads_conversation ON inbox_threads (conversation_id);
