-- Event webhooks and their outbox.
--
-- `kinds` is the followed event kinds, space-separated with a space at both ends, or empty
-- for every kind, so the event's insert finds the followers with one `instr`. The secret is
-- kept in clear: signing needs it (like a password hash could not be).
CREATE TABLE webhooks (
    id               BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL,
    url              TEXT NOT NULL,
    kinds            TEXT NOT NULL,
    secret           TEXT NOT NULL,
    state            TEXT NOT NULL,
    failing_since_ns INTEGER,
    created_ns       INTEGER NOT NULL,
    updated_ns       INTEGER NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, created_ns);

-- One row per event and webhook that follows it, written in the event's transaction: the
-- outbox while pending, the delivery log after. No foreign key to `events`: the log may be
-- erased before a delivery is (the worker then fails it).
CREATE TABLE webhook_deliveries (
    webhook_id      BLOB NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    tenant_id       BLOB NOT NULL,
    conversation_id BLOB,
    kind            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_ns INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    response_ms     INTEGER,
    created_ns      INTEGER NOT NULL,
    delivered_ns    INTEGER,
    PRIMARY KEY (webhook_id, seq)
) WITHOUT ROWID;
-- The worker's scan: pending ones by due time.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ns)
    WHERE state = 'pending';
-- "Is there an older pending one of this conversation?"
CREATE INDEX webhook_deliveries_conversation
    ON webhook_deliveries (webhook_id, conversation_id, seq) WHERE state = 'pending';
