-- Identity signatures already used (the layout of chat-sqlite's 0013), so a signed identity
-- opens one conversation on every node. Kept by digest until the signature would be
-- refused for its age anyway; expired rows are deleted as new ones are claimed.
CREATE TABLE identity_signatures (
    digest        text PRIMARY KEY,
    expires_at_ns bigint NOT NULL
);
CREATE INDEX identity_signatures_expiry ON identity_signatures (expires_at_ns);
