-- Identity signatures already used, so a signed identity opens one conversation on every
-- server sharing the database. Kept by digest until the signature would be refused for
-- its age anyway; expired rows are deleted as new ones are claimed.
CREATE TABLE identity_signatures (
    digest        TEXT PRIMARY KEY NOT NULL,
    expires_at_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX identity_signatures_expiry ON identity_signatures (expires_at_ns);
