-- Event webhooks and their outbox (the layout of chat-sqlite's 0010_webhooks.sql).
--
-- `kinds` is the followed event kinds, space-separated with a space at both ends, or empty
-- for every kind, so the events' insert finds the followers with one `strpos`. The secret
-- is kept in clear: signing needs it. Times are Unix nanoseconds, as in 0001_init.sql.
CREATE TABLE webhooks (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    url              text NOT NULL,
    kinds            text NOT NULL,
    secret           text NOT NULL,
    state            text NOT NULL,
    failing_since_ns bigint,
    created_ns       bigint NOT NULL,
    updated_ns       bigint NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, created_ns);

-- One row per event and webhook that follows it, written in the event's transaction: the
-- outbox while pending, the delivery log after.
CREATE TABLE webhook_deliveries (
    webhook_id      uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    seq             bigint NOT NULL,
    tenant_id       uuid NOT NULL,
    conversation_id uuid,
    kind            text NOT NULL,
    state           text NOT NULL,
    attempts        integer NOT NULL,
    next_attempt_ns bigint NOT NULL,
    last_status     integer,
    last_error      text,
    response_ms     bigint,
    created_ns      bigint NOT NULL,
    delivered_ns    bigint,
    PRIMARY KEY (webhook_id, seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ns)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_conversation
    ON webhook_deliveries (webhook_id, conversation_id, seq) WHERE state = 'pending';
