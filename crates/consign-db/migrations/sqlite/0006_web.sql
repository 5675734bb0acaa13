-- The web pages: staff page sessions and each brand's look on its
-- customer pages. Keep this file and its PostgreSQL twin in step.

-- A page session is a cookie bound to an auth session (`sessions`), so
-- logout, password resets and session revocation end it too. The cookie
-- value is never stored: `id` is its SHA-256. `csrf_token` is the
-- synchronizer token every form of the session carries.
CREATE TABLE web_sessions (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    csrf_token TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- Logo and colours shown on a brand's customer pages. One row per brand,
-- absent until staff set them (the pages then use neutral defaults).
CREATE TABLE brand_themes (
    brand_id TEXT PRIMARY KEY REFERENCES brands (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    logo_url TEXT,
    primary_color TEXT NOT NULL,
    accent_color TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX brand_themes_organization ON brand_themes (organization_id);
