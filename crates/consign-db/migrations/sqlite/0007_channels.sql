-- Messaging channels: webhook tokens already seen, so a captured signed
-- request cannot be replayed (Mailgun signs a token and a timestamp, not
-- the body). Rows older than the signature tolerance are useless and may
-- be purged.
CREATE TABLE webhook_replays (
    provider TEXT NOT NULL,
    token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, token)
);
CREATE INDEX webhook_replays_created ON webhook_replays (created_at);
