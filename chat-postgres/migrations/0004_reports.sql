-- Schema version 4: what the reports aggregate, in columns with their indexes (the layout
-- of chat-sqlite's 0009_reports.sql; see chat_core::report for what each figure counts).
--
-- Every write of a conversation writes these columns from the same value as `data`. Rows
-- from before this version get them from `data` here, to the microsecond (PostgreSQL's
-- timestamps stop there; new writes keep nanoseconds). A reopen clears `closed_at`, so
-- reopens are marks of their own, one row per reopen, filled here from the event log.

ALTER TABLE conversations
    ADD COLUMN created_at_ns bigint,
    ADD COLUMN first_response_at_ns bigint,
    ADD COLUMN closed_at_ns bigint,
    ADD COLUMN rated_at_ns bigint,
    ADD COLUMN rating_score smallint;

UPDATE conversations SET
    created_at_ns = (extract(epoch FROM (data->>'created_at')::timestamptz) * 1000000)::bigint * 1000,
    first_response_at_ns =
        (extract(epoch FROM (data->>'first_response_at')::timestamptz) * 1000000)::bigint * 1000,
    closed_at_ns = (extract(epoch FROM (data->>'closed_at')::timestamptz) * 1000000)::bigint * 1000,
    rated_at_ns =
        (extract(epoch FROM (data->'rating'->>'rated_at')::timestamptz) * 1000000)::bigint * 1000,
    rating_score = (data->'rating'->>'score')::smallint;

ALTER TABLE conversations ALTER COLUMN created_at_ns SET NOT NULL;

CREATE INDEX conversations_created ON conversations (tenant_id, created_at_ns);
CREATE INDEX conversations_closed ON conversations (tenant_id, closed_at_ns)
    WHERE closed_at_ns IS NOT NULL;
CREATE INDEX conversations_rated ON conversations (tenant_id, rated_at_ns)
    WHERE rated_at_ns IS NOT NULL;

CREATE TABLE conversation_reopens (
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL,
    at_ns           bigint NOT NULL
);
CREATE INDEX conversation_reopens_at ON conversation_reopens (tenant_id, at_ns);
CREATE INDEX conversation_reopens_conversation ON conversation_reopens (conversation_id);

INSERT INTO conversation_reopens (conversation_id, tenant_id, at_ns)
SELECT e.conversation_id, e.tenant_id,
       (extract(epoch FROM (e.data->>'at')::timestamptz) * 1000000)::bigint * 1000
FROM events e JOIN conversations c ON c.id = e.conversation_id
WHERE e.data @? '$.** ? (@.change == "reopened")';
