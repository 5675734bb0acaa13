-- Notifications: what Consign tells customers (order events, staff replies
-- written in the app) and staff (new customer messages, as a digest).
-- Sent by jobs, never by the request that caused them.

-- A brand's own wording per kind and channel. A missing row means the
-- built-in template (email on, SMS and WhatsApp off).
CREATE TABLE notification_templates (
    brand_id TEXT NOT NULL REFERENCES brands (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    kind TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'whatsapp')),
    enabled BOOLEAN NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (brand_id, kind, channel)
);
CREATE INDEX notification_templates_organization ON notification_templates (organization_id);

-- A brand's notification settings. A missing row means the defaults.
CREATE TABLE notification_settings (
    brand_id TEXT PRIMARY KEY REFERENCES brands (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    staff_digest_seconds BIGINT NOT NULL CHECK (staff_digest_seconds BETWEEN 1 AND 86400),
    updated_at BIGINT NOT NULL
);
CREATE INDEX notification_settings_organization ON notification_settings (organization_id);

-- The delivery log: one row per notification per recipient and channel.
-- `dedupe_key` makes a retried job find its row instead of sending twice.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    kind TEXT NOT NULL,
    audience TEXT NOT NULL CHECK (audience IN ('customer', 'staff')),
    user_id TEXT REFERENCES users (id),
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'whatsapp')),
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    provider_message_id TEXT,
    dedupe_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX notifications_order ON notifications (order_id, created_at);
CREATE INDEX notifications_organization ON notifications (organization_id);

-- Customer messages up to this time were in a staff digest.
ALTER TABLE message_threads ADD COLUMN staff_notified_at BIGINT;
