-- Presence leases: a server (node) holds one on each agent connected to it, renews it
-- while the agent stays and deletes it when the agent leaves. One that expires belonged
-- to a server that stopped (a crash): a timer pass deletes it, and an agent left with no
-- live lease goes offline. Not tenant data: leases are not exported.
CREATE TABLE presence_leases (
    agent_id   BLOB NOT NULL,
    node       BLOB NOT NULL,
    tenant_id  BLOB NOT NULL,
    expires_ns INTEGER NOT NULL,
    PRIMARY KEY (agent_id, node)
) WITHOUT ROWID;
CREATE INDEX presence_leases_expiry ON presence_leases (tenant_id, expires_ns);

-- The round-robin turn of each tenant: the agent its last turn-taking assignment went
-- to, moved in the assignment's transaction (several servers take one turn each).
CREATE TABLE routing_turns (
    tenant_id BLOB PRIMARY KEY NOT NULL,
    agent_id  BLOB NOT NULL
) WITHOUT ROWID;
