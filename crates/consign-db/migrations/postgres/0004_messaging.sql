-- Messaging: one thread per order, immutable messages, read receipts,
-- canned responses, attachments, outbound deliveries, the unmatched inbox,
-- and the commit-ordered position of events for the live feed.

-- Events get a position (txid, seq) that readers can follow without gaps.
-- Here txid is the writing transaction's id and seq a sequence; a reader
-- only reads rows of transactions older than every running one (the
-- snapshot's xmin), which are final, in (txid, seq) order. A trigger wakes
-- every instance's listener on commit.
CREATE SEQUENCE events_seq;
ALTER TABLE events ADD COLUMN seq BIGINT NOT NULL DEFAULT nextval('events_seq');
ALTER TABLE events ADD COLUMN txid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
ALTER TABLE events ADD COLUMN order_id TEXT;
CREATE FUNCTION consign_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('consign_events', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION consign_events_notify();
CREATE INDEX events_position ON events (txid, seq);
CREATE INDEX events_order ON events (order_id, txid, seq);

CREATE TABLE message_threads (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL UNIQUE REFERENCES orders (id),
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    assignee_id TEXT REFERENCES users (id),
    last_customer_channel TEXT,
    first_customer_message_at BIGINT,
    first_response_at BIGINT,
    resolved_at BIGINT,
    last_message_at BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX message_threads_brand ON message_threads (brand_id, status, last_message_at);
CREATE INDEX message_threads_assignee ON message_threads (assignee_id, status, last_message_at);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    thread_id TEXT NOT NULL REFERENCES message_threads (id),
    body TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('in_app', 'email', 'whatsapp', 'sms')),
    sender_role TEXT NOT NULL CHECK (sender_role IN ('customer', 'brand', 'threepl', 'platform', 'system')),
    sender_id TEXT,
    internal BOOLEAN NOT NULL DEFAULT FALSE,
    attachments TEXT NOT NULL DEFAULT '[]',
    external_id TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (channel, external_id)
);
CREATE INDEX messages_thread ON messages (thread_id, id);
CREATE INDEX messages_brand ON messages (brand_id, id);
CREATE INDEX messages_order ON messages (order_id, id);

-- Full-text index over message bodies (SQLite uses FTS5 with porter
-- stemming to match).
CREATE INDEX messages_body_search ON messages USING GIN (to_tsvector('english', body));

CREATE TABLE message_reads (
    message_id TEXT NOT NULL REFERENCES messages (id),
    reader_id TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    thread_id TEXT NOT NULL REFERENCES message_threads (id),
    role TEXT NOT NULL,
    read_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, reader_id)
);
CREATE INDEX message_reads_reader ON message_reads (reader_id, thread_id);

CREATE TABLE canned_responses (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (brand_id, name)
);

CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    message_id TEXT REFERENCES messages (id),
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    storage_key TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX attachments_order ON attachments (order_id);
CREATE INDEX attachments_message ON attachments (message_id);

-- Outbound sends of a message on email, WhatsApp or SMS. Kept apart from the
-- immutable message: only the delivery moves (queued -> sent -> delivered,
-- or failed), driven by the provider's status callbacks.
CREATE TABLE message_deliveries (
    message_id TEXT PRIMARY KEY REFERENCES messages (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'delivered', 'failed')),
    provider_message_id TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at BIGINT NOT NULL,
    UNIQUE (channel, provider_message_id)
);

-- Inbound messages that matched no order, until staff link them.
CREATE TABLE inbox_items (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    channel TEXT NOT NULL,
    sender TEXT NOT NULL,
    subject TEXT,
    body TEXT NOT NULL,
    external_id TEXT,
    linked_message_id TEXT REFERENCES messages (id),
    created_at BIGINT NOT NULL,
    UNIQUE (channel, external_id)
);
CREATE INDEX inbox_items_brand ON inbox_items (brand_id, linked_message_id, id);
