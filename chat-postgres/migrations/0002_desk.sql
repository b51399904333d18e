-- Schema version 2: the desk's daily tools, canned responses and mentions (the layout of
-- chat-sqlite's 0008_desk.sql).
--
-- `owner_key` is the owning agent's id, or the nil uuid for a shared response, so one
-- unique index keeps shortcuts unique among the shared responses and among each agent's
-- own (NULLs would never collide). `shortcut_lc` and `title_lc` are lower-cased by Rust
-- (`str::to_lowercase`) for the picker's prefix search, whatever the database's locale.
CREATE TABLE canned_responses (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    owner_key   uuid NOT NULL,
    shortcut_lc text NOT NULL,
    title_lc    text NOT NULL,
    data        jsonb NOT NULL
);
CREATE UNIQUE INDEX canned_responses_shortcut
    ON canned_responses (tenant_id, owner_key, shortcut_lc);

-- Mentions of agents in internal notes; `read_at_ns` NULL while unread. One row per agent
-- and note, so a repeated mention is one notification. Times are Unix nanoseconds, as in
-- 0001_init.sql.
CREATE TABLE mentions (
    message_id uuid NOT NULL,
    agent_id   uuid NOT NULL,
    tenant_id  uuid NOT NULL,
    at_ns      bigint NOT NULL,
    read_at_ns bigint,
    data       jsonb NOT NULL,
    PRIMARY KEY (message_id, agent_id)
);
CREATE INDEX mentions_agent ON mentions (tenant_id, agent_id, at_ns, message_id);
CREATE INDEX mentions_unread ON mentions (tenant_id, agent_id) WHERE read_at_ns IS NULL;
