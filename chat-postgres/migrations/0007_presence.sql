-- Presence leases and the routing turn (the layout of chat-sqlite's 0015_presence.sql).
-- A server (node) holds a lease on each agent connected to it and renews it; one that
-- expires belonged to a server that stopped, and a timer pass deletes it. Leases are
-- not tenant data: they are not exported.
CREATE TABLE presence_leases (
    agent_id   uuid NOT NULL,
    node       uuid NOT NULL,
    tenant_id  uuid NOT NULL,
    expires_ns bigint NOT NULL,
    PRIMARY KEY (agent_id, node)
);
CREATE INDEX presence_leases_expiry ON presence_leases (tenant_id, expires_ns);

-- Each tenant's round-robin turn: the agent its last turn-taking assignment went to,
-- moved (compare-and-swap) in the assignment's transaction.
CREATE TABLE routing_turns (
    tenant_id uuid PRIMARY KEY,
    agent_id  uuid NOT NULL
);
