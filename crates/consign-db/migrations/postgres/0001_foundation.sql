-- Foundation: organizations, users, memberships, brands, sessions, API keys,
-- idempotency keys. Times are microseconds since the Unix epoch (BIGINT),
-- ids are UUID v7 text. Keep this file and its PostgreSQL twin in step:
-- the schema_parity test compares them.

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('threepl', 'merchant')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    platform_admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE org_memberships (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL CHECK (role IN ('org_admin', 'org_member')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX org_memberships_user ON org_memberships (user_id);

CREATE TABLE brands (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    currency TEXT NOT NULL,
    reservation_ttl_seconds BIGINT NOT NULL DEFAULT 900,
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX brands_organization ON brands (organization_id);

CREATE TABLE brand_memberships (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL CHECK (role IN ('brand_admin', 'brand_member')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (brand_id, user_id)
);
CREATE INDEX brand_memberships_user ON brand_memberships (user_id);
CREATE INDEX brand_memberships_organization ON brand_memberships (organization_id);

-- A 3PL organization that fulfils for a brand it does not own.
CREATE TABLE brand_fulfillers (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (brand_id, organization_id)
);
CREATE INDEX brand_fulfillers_organization ON brand_fulfillers (organization_id);

-- Refresh tokens, stored as SHA-256. A session is one family of rotations.
CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    token_hash TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_brand ON api_keys (brand_id);
CREATE INDEX api_keys_organization ON api_keys (organization_id);

-- Idempotency-Key records, per tenant scope, kept 24 hours.
CREATE TABLE idempotency_keys (
    scope_key TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    response_status BIGINT,
    response_content_type TEXT,
    response_body BYTEA,
    locked_until BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope_key, idempotency_key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- Installation-wide secrets shared by every instance (the JWT signing key).
CREATE TABLE instance_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
