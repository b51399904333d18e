-- Who a contact is. A visitor's typed e-mail is a claim that may repeat; only a verified
-- e-mail identifies a contact, so only verified e-mails are unique.
DROP INDEX contacts_email;
ALTER TABLE contacts ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
CREATE INDEX contacts_email ON contacts (tenant_id, email_lc);
CREATE UNIQUE INDEX contacts_verified_email ON contacts (tenant_id, email_lc)
    WHERE email_verified = 1;

-- Visitor tokens are revoked per contact (password change, disabled account, merge).
ALTER TABLE visitor_tokens ADD COLUMN tenant_id BLOB;
ALTER TABLE visitor_tokens ADD COLUMN contact_id BLOB;
CREATE INDEX visitor_tokens_contact ON visitor_tokens (tenant_id, contact_id);

-- Customer accounts, out of contact metadata and the token table. The hash has a column
-- of its own and is never part of `data`, so no contact or account read carries it.
CREATE TABLE accounts (
    contact_id    BLOB PRIMARY KEY NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    tenant_id     BLOB NOT NULL,
    email_lc      TEXT,
    password_hash TEXT NOT NULL,
    data          TEXT NOT NULL
);
CREATE UNIQUE INDEX accounts_email ON accounts (tenant_id, email_lc) WHERE email_lc IS NOT NULL;

-- Login names (usernames and aliases), lower-case; one namespace per tenant.
CREATE TABLE account_names (
    tenant_id  BLOB NOT NULL,
    name_lc    TEXT NOT NULL,
    contact_id BLOB NOT NULL REFERENCES accounts (contact_id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, name_lc)
) WITHOUT ROWID;

-- Login names of schema 5 that cannot be read back (they were stored as a digest of the
-- name): still found by that digest, so an upgraded desk keeps every login working.
CREATE TABLE account_name_digests (
    digest     TEXT PRIMARY KEY NOT NULL,
    contact_id BLOB NOT NULL REFERENCES accounts (contact_id) ON DELETE CASCADE
) WITHOUT ROWID;
