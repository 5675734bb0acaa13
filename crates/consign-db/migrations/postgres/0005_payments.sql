-- Payments: provider credentials (sealed), payment attempts, the refund
-- columns of the payments ledger, and the webhook event log.
-- Keep this file and its PostgreSQL twin in step.

-- A brand's credentials for one provider, sealed with AES-256-GCM under a
-- master key (key_id names which); public_id is the non-secret part.
CREATE TABLE payment_provider_credentials (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    provider TEXT NOT NULL CHECK (provider IN ('stripe', 'razorpay', 'paypal')),
    public_id TEXT,
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (brand_id, provider)
);
CREATE INDEX payment_provider_credentials_organization ON payment_provider_credentials (organization_id);
CREATE INDEX payment_provider_credentials_key ON payment_provider_credentials (key_id);

-- One try at paying an order through a provider; its id is the provider
-- idempotency key.
CREATE TABLE payment_attempts (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    provider TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'requires_action', 'succeeded', 'failed')),
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    provider_reference TEXT,
    client_data TEXT,
    failure TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX payment_attempts_order ON payment_attempts (order_id, id);
CREATE UNIQUE INDEX payment_attempts_reference ON payment_attempts (provider, provider_reference);
CREATE INDEX payment_attempts_organization ON payment_attempts (organization_id);

-- The payments ledger gains refunds through providers: a refund names the
-- captured payment it refunds (parent_id), and a provider's id of a capture
-- or refund is recorded once (the unique index makes webhooks idempotent).
ALTER TABLE payments ADD COLUMN parent_id TEXT;
ALTER TABLE payments ADD COLUMN attempt_id TEXT;
ALTER TABLE payments ADD COLUMN provider_reference TEXT;
ALTER TABLE payments ADD COLUMN reason TEXT;
ALTER TABLE payments ADD COLUMN failure TEXT;
ALTER TABLE payments ADD COLUMN updated_at BIGINT;
CREATE UNIQUE INDEX payments_provider_reference ON payments (provider, kind, provider_reference);
CREATE INDEX payments_parent ON payments (parent_id);

-- Every accepted provider webhook, stored raw before it is applied.
-- outcome: pending (not yet processed), waiting (needs an event that has
-- not arrived, such as the capture a refund refunds), applied, ignored
-- (nothing to do, a duplicate in effect), parked (can never apply; staff
-- look at it).
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    processed_at BIGINT,
    outcome TEXT NOT NULL CHECK (outcome IN ('pending', 'waiting', 'applied', 'ignored', 'parked')),
    waiting_on TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    detail TEXT,
    UNIQUE (provider, event_id)
);
CREATE INDEX webhook_events_outcome ON webhook_events (outcome, id);
CREATE INDEX webhook_events_waiting ON webhook_events (provider, waiting_on);
CREATE INDEX webhook_events_brand ON webhook_events (brand_id, id);
CREATE INDEX webhook_events_organization ON webhook_events (organization_id);
