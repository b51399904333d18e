-- Secrets the server authenticates with. Tokens are stored as digests only.
CREATE TABLE credentials (
    agent_id      BLOB PRIMARY KEY NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    password_hash TEXT,
    token_version INTEGER NOT NULL
);

CREATE TABLE visitor_tokens (
    digest TEXT PRIMARY KEY NOT NULL,
    data   TEXT NOT NULL
);

CREATE TABLE bot_tokens (
    digest TEXT PRIMARY KEY NOT NULL,
    data   TEXT NOT NULL
);
