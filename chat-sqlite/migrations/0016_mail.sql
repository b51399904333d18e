-- The mail outbox: e-mails the desk sends (transcripts, replies to e-mail customers), one
-- row each until the relay took it, then the mail log. The text is rendered when the mail
-- is asked for; it goes with its conversation (erasure, deletion). `refs` is the
-- References header's ids, space-separated.
CREATE TABLE mail_outbox (
    id              BLOB PRIMARY KEY NOT NULL,
    tenant_id       BLOB NOT NULL,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT,
    message_id      TEXT NOT NULL,
    refs            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_ns INTEGER NOT NULL,
    last_error      TEXT,
    created_ns      INTEGER NOT NULL,
    sent_ns         INTEGER
);
-- The worker's scan: pending ones by due time.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_ns) WHERE state = 'pending';
-- The log, newest first, and "was this transcript mailed lately?".
CREATE INDEX mail_outbox_tenant ON mail_outbox (tenant_id, created_ns);
CREATE INDEX mail_outbox_conversation ON mail_outbox (conversation_id, kind, requested_by, created_ns);
