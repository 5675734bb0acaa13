-- Invitations to join an organization (brand_id NULL, an org role) or one
-- of its brands (a brand role). The token is shown once to whoever
-- invited; only its SHA-256 is kept. Accepting creates the user if needed
-- and the membership, once: accepted_at is set by a conditional update.
CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT REFERENCES brands (id),
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('org_admin', 'org_member', 'brand_admin', 'brand_member')),
    token_hash TEXT NOT NULL UNIQUE,
    invited_by TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX invitations_organization ON invitations (organization_id);
CREATE INDEX invitations_brand ON invitations (brand_id);
