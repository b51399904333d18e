-- The desk's daily tools: canned responses and mentions.
--
-- `owner_key` is the owning agent's id, or an empty blob for a shared response, so one
-- unique index keeps shortcuts unique among the shared responses and among each agent's
-- own (NULLs would never collide). `shortcut_lc` and `title_lc` are lower-cased by Rust
-- (SQLite's lower() only folds ASCII) for the picker's prefix search.
CREATE TABLE canned_responses (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL,
    owner_key   BLOB NOT NULL,
    shortcut_lc TEXT NOT NULL,
    title_lc    TEXT NOT NULL,
    data        TEXT NOT NULL
);
CREATE UNIQUE INDEX canned_responses_shortcut
    ON canned_responses (tenant_id, owner_key, shortcut_lc);

-- Mentions of agents in internal notes; `read_at` NULL while unread. One row per agent
-- and note, so a repeated mention is one notification.
CREATE TABLE mentions (
    message_id BLOB NOT NULL,
    agent_id   BLOB NOT NULL,
    tenant_id  BLOB NOT NULL,
    at         INTEGER NOT NULL,
    read_at    INTEGER,
    data       TEXT NOT NULL,
    PRIMARY KEY (message_id, agent_id)
);
CREATE INDEX mentions_agent ON mentions (tenant_id, agent_id, at);
CREATE INDEX mentions_unread ON mentions (tenant_id, agent_id) WHERE read_at IS NULL;
