-- The mail outbox (the layout of chat-sqlite's 0016_mail.sql): e-mails the desk sends
-- (transcripts, replies to e-mail customers), one row each until the relay took it, then the mail log. The text is rendered when the mail
-- is asked for; it goes with its conversation (erasure, deletion). `refs` is the
-- References header's ids, space-separated.
CREATE TABLE mail_outbox (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    kind            text NOT NULL,
    requested_by    text NOT NULL,
    recipient       text NOT NULL,
    subject         text NOT NULL,
    text_body       text NOT NULL,
    html_body       text,
    message_id      text NOT NULL,
    refs            text NOT NULL,
    state           text NOT NULL,
    attempts        bigint NOT NULL,
    next_attempt_ns bigint NOT NULL,
    last_error      text,
    created_ns      bigint NOT NULL,
    sent_ns         bigint
);
-- The worker's scan: pending ones by due time.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_ns) WHERE state = 'pending';
-- The log, newest first, and "was this transcript mailed lately?".
CREATE INDEX mail_outbox_tenant ON mail_outbox (tenant_id, created_ns);
CREATE INDEX mail_outbox_conversation ON mail_outbox (conversation_id, kind, requested_by, created_ns);
