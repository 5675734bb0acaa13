-- Rate limits shared by every instance on the database: one counter per
-- key (bucket and subject, such as `signup_ip:203.0.113.7`) and fixed
-- window, bumped by one upsert; the hourly maintenance job deletes the
-- counters of windows that have passed.
CREATE TABLE rate_limits (
    key TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_limits_expiry ON rate_limits (expires_at);

-- An operator's approval of a brand's outbound messaging: until then the
-- brand cannot enable SMS or WhatsApp (unless the installation allows every
-- brand to), and its customized templates wait for a real order.
ALTER TABLE brands ADD COLUMN messaging_approved_at BIGINT;
