-- Commerce: catalog, warehouses and stock, orders, payments, fulfilment,
-- events, audit, jobs. Money is BIGINT minor units with a currency column.
-- Keep this file and its PostgreSQL twin in step.

CREATE TABLE products (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('draft', 'active', 'archived')),
    available_at BIGINT,
    early_access_emails TEXT NOT NULL DEFAULT '[]',
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX products_brand ON products (brand_id, id);
CREATE INDEX products_brand_status ON products (brand_id, status, id);
CREATE INDEX products_organization ON products (organization_id);

CREATE TABLE variants (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    product_id TEXT NOT NULL REFERENCES products (id),
    sku TEXT NOT NULL,
    title TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    price_amount BIGINT NOT NULL CHECK (price_amount >= 0),
    currency TEXT NOT NULL,
    position BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (brand_id, sku)
);
CREATE INDEX variants_product ON variants (product_id, position);
CREATE INDEX variants_organization ON variants (organization_id);

CREATE TABLE warehouses (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    code TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (organization_id, code)
);

-- Which warehouses serve a brand, in allocation priority order (lowest first).
CREATE TABLE brand_warehouses (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    warehouse_id TEXT NOT NULL REFERENCES warehouses (id),
    priority BIGINT NOT NULL DEFAULT 100,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (brand_id, warehouse_id)
);
CREATE INDEX brand_warehouses_warehouse ON brand_warehouses (warehouse_id);

-- organization_id is the warehouse's owner; brand_id the variant's brand.
CREATE TABLE stock_levels (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    variant_id TEXT NOT NULL REFERENCES variants (id),
    warehouse_id TEXT NOT NULL REFERENCES warehouses (id),
    on_hand BIGINT NOT NULL DEFAULT 0,
    reserved BIGINT NOT NULL DEFAULT 0,
    unsellable BIGINT NOT NULL DEFAULT 0,
    safety_stock BIGINT NOT NULL DEFAULT 0,
    incoming BIGINT NOT NULL DEFAULT 0,
    low_stock_threshold BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (variant_id, warehouse_id),
    CHECK (on_hand >= 0),
    CHECK (reserved >= 0 AND reserved <= on_hand),
    CHECK (unsellable >= 0 AND safety_stock >= 0 AND incoming >= 0)
);
CREATE INDEX stock_levels_warehouse ON stock_levels (warehouse_id);
CREATE INDEX stock_levels_brand ON stock_levels (brand_id);
CREATE INDEX stock_levels_organization ON stock_levels (organization_id);

-- The stock ledger: every change of on_hand, with why and who.
CREATE TABLE stock_movements (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    variant_id TEXT NOT NULL REFERENCES variants (id),
    warehouse_id TEXT NOT NULL REFERENCES warehouses (id),
    delta BIGINT NOT NULL,
    on_hand_after BIGINT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    reference TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX stock_movements_variant ON stock_movements (variant_id, id);
CREATE INDEX stock_movements_warehouse ON stock_movements (warehouse_id, id);
CREATE INDEX stock_movements_organization ON stock_movements (organization_id);

CREATE TABLE order_counters (
    brand_id TEXT PRIMARY KEY REFERENCES brands (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    last_number BIGINT NOT NULL
);

CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    number BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'open', 'completed', 'cancelled', 'expired')),
    payment_status TEXT NOT NULL CHECK (payment_status IN ('unpaid', 'authorized', 'paid', 'partially_refunded', 'refunded', 'failed')),
    fulfillment_status TEXT NOT NULL CHECK (fulfillment_status IN ('unfulfilled', 'partially_shipped', 'shipped', 'delivered', 'returned')),
    customer_name TEXT NOT NULL,
    customer_email TEXT NOT NULL,
    customer_phone TEXT,
    shipping_address TEXT NOT NULL,
    currency TEXT NOT NULL,
    subtotal BIGINT NOT NULL,
    discount_total BIGINT NOT NULL DEFAULT 0,
    shipping_total BIGINT NOT NULL DEFAULT 0,
    tax_total BIGINT NOT NULL DEFAULT 0,
    total BIGINT NOT NULL,
    paid BIGINT NOT NULL DEFAULT 0,
    refunded BIGINT NOT NULL DEFAULT 0,
    refund_due BIGINT NOT NULL DEFAULT 0,
    payment_provider TEXT NOT NULL DEFAULT 'manual',
    access_token_hash TEXT,
    reservation_expires_at BIGINT,
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (brand_id, number)
);
CREATE INDEX orders_brand ON orders (brand_id, id);
CREATE INDEX orders_brand_status ON orders (brand_id, status, id);
CREATE INDEX orders_brand_payment_status ON orders (brand_id, payment_status, id);
CREATE INDEX orders_brand_fulfillment_status ON orders (brand_id, fulfillment_status, id);
CREATE INDEX orders_brand_created ON orders (brand_id, created_at);
CREATE INDEX orders_brand_email ON orders (brand_id, customer_email);
CREATE INDEX orders_expiry ON orders (reservation_expires_at);
CREATE INDEX orders_organization ON orders (organization_id, id);
CREATE UNIQUE INDEX orders_access_token ON orders (access_token_hash);

CREATE TABLE order_items (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    variant_id TEXT NOT NULL REFERENCES variants (id),
    sku TEXT NOT NULL,
    title TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_price BIGINT NOT NULL,
    total BIGINT NOT NULL,
    price_source TEXT NOT NULL,
    position BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX order_items_order ON order_items (order_id, position);
CREATE INDEX order_items_organization ON order_items (organization_id);

-- Stock held for an order item in one warehouse.
CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    order_item_id TEXT NOT NULL REFERENCES order_items (id),
    variant_id TEXT NOT NULL REFERENCES variants (id),
    warehouse_id TEXT NOT NULL REFERENCES warehouses (id),
    quantity BIGINT NOT NULL CHECK (quantity >= 0),
    status TEXT NOT NULL CHECK (status IN ('active', 'released', 'consumed')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX reservations_order ON reservations (order_id);
CREATE INDEX reservations_item ON reservations (order_item_id);
CREATE INDEX reservations_organization ON reservations (organization_id);

CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    provider TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('payment', 'refund')),
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    reference TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX payments_organization ON payments (organization_id);

CREATE TABLE order_notes (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    body TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX order_notes_order ON order_notes (order_id);
CREATE INDEX order_notes_organization ON order_notes (organization_id);

CREATE TABLE fulfillment_orders (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    warehouse_id TEXT NOT NULL REFERENCES warehouses (id),
    status TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'shipped', 'closed', 'on_hold', 'scheduled', 'cancelled')),
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (order_id, warehouse_id)
);
CREATE INDEX fulfillment_orders_warehouse ON fulfillment_orders (warehouse_id, status);
CREATE INDEX fulfillment_orders_organization ON fulfillment_orders (organization_id);

CREATE TABLE fulfillment_order_items (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    fulfillment_order_id TEXT NOT NULL REFERENCES fulfillment_orders (id),
    order_item_id TEXT NOT NULL REFERENCES order_items (id),
    variant_id TEXT NOT NULL REFERENCES variants (id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    shipped_quantity BIGINT NOT NULL DEFAULT 0,
    CHECK (shipped_quantity >= 0 AND shipped_quantity <= quantity)
);
CREATE INDEX fulfillment_order_items_fo ON fulfillment_order_items (fulfillment_order_id);
CREATE INDEX fulfillment_order_items_organization ON fulfillment_order_items (organization_id);

CREATE TABLE shipments (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    fulfillment_order_id TEXT NOT NULL REFERENCES fulfillment_orders (id),
    status TEXT NOT NULL CHECK (status IN ('draft', 'ready', 'in_transit', 'delivered', 'cancelled', 'exception')),
    carrier TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    tracking_url TEXT,
    address TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX shipments_order ON shipments (order_id);
CREATE INDEX shipments_fulfillment_order ON shipments (fulfillment_order_id);
CREATE INDEX shipments_organization ON shipments (organization_id);

CREATE TABLE shipment_items (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    shipment_id TEXT NOT NULL REFERENCES shipments (id),
    fulfillment_order_item_id TEXT NOT NULL REFERENCES fulfillment_order_items (id),
    order_item_id TEXT NOT NULL REFERENCES order_items (id),
    quantity BIGINT NOT NULL CHECK (quantity > 0)
);
CREATE INDEX shipment_items_shipment ON shipment_items (shipment_id);
CREATE INDEX shipment_items_organization ON shipment_items (organization_id);

-- Domain events, written in the same transaction as the change (outbox).
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT,
    type TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_aggregate ON events (aggregate_id, id);
CREATE INDEX events_brand ON events (brand_id, id);
CREATE INDEX events_organization ON events (organization_id, id);
CREATE INDEX events_type ON events (type, id);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT,
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    before_state TEXT,
    after_state TEXT,
    ip TEXT,
    user_agent TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_log_entity ON audit_log (entity_id, id);
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
CREATE INDEX audit_log_organization ON audit_log (organization_id, id);

-- The job queue: enqueued in business transactions, claimed by workers.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'dead')),
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL DEFAULT 10,
    run_at BIGINT NOT NULL,
    locked_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_ready ON jobs (status, run_at);
