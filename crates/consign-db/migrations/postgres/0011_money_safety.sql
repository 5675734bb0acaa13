-- Money that must not be lost (issue #11).

-- Webhook de-duplication names the brand: brands sharing one provider
-- account each receive the account's events, with the same event ids, and
-- each brand must keep its own copy. Rebuilt as on SQLite (which cannot
-- drop a table constraint), so both engines keep one shape.
CREATE TABLE webhook_events_next (
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
    UNIQUE (brand_id, provider, event_id)
);
INSERT INTO webhook_events_next (id, organization_id, brand_id, provider, event_id, event_type, payload, received_at,
                                 processed_at, outcome, waiting_on, attempts, detail)
     SELECT id, organization_id, brand_id, provider, event_id, event_type, payload, received_at,
            processed_at, outcome, waiting_on, attempts, detail
       FROM webhook_events;
DROP TABLE webhook_events;
ALTER TABLE webhook_events_next RENAME TO webhook_events;
CREATE INDEX webhook_events_outcome ON webhook_events (outcome, id);
CREATE INDEX webhook_events_waiting ON webhook_events (brand_id, provider, waiting_on);
CREATE INDEX webhook_events_brand ON webhook_events (brand_id, id);
CREATE INDEX webhook_events_organization ON webhook_events (organization_id);

-- `partially_paid`: an order that took some of its total.
ALTER TABLE orders DROP CONSTRAINT orders_payment_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_payment_status_check
    CHECK (payment_status IN ('unpaid', 'authorized', 'paid', 'partially_paid', 'partially_refunded', 'refunded', 'failed'));

-- How long an unpaid order holds its stock when paid by bank transfer
-- (`manual`): transfers take days. Card providers use
-- `reservation_ttl_seconds`.
ALTER TABLE brands ADD COLUMN manual_reservation_ttl_seconds BIGINT NOT NULL DEFAULT 259200;

-- What staff must act on: a money job that gave up, money owed back that no
-- provider can return on its own. Shown on the dashboard until resolved.
-- A job that belongs to no tenant has no organization (the CLI lists it).
CREATE TABLE staff_alerts (
    id TEXT PRIMARY KEY,
    organization_id TEXT REFERENCES organizations (id),
    brand_id TEXT REFERENCES brands (id),
    kind TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    job_id TEXT,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE INDEX staff_alerts_brand ON staff_alerts (brand_id, resolved_at, id);
CREATE INDEX staff_alerts_organization ON staff_alerts (organization_id);
CREATE UNIQUE INDEX staff_alerts_open_subject ON staff_alerts (kind, subject_id) WHERE resolved_at IS NULL;
