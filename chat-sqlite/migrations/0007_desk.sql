-- The desk's daily tools: canned responses.
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
