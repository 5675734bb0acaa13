-- Inbound email whose sender no provider check vouches for (no SPF or DKIM
-- pass) is kept in the inbox, marked unverified for staff to judge.
ALTER TABLE inbox_items ADD COLUMN sender_verified BOOLEAN NOT NULL DEFAULT TRUE;

-- Order access tokens can be rotated: the token is derived from the order
-- id and this version (0: the original token, so existing links hold).
ALTER TABLE orders ADD COLUMN access_token_version BIGINT NOT NULL DEFAULT 0;

-- The clean-up of uploads never sent in a message walks them oldest first.
CREATE INDEX attachments_unsent ON attachments (created_at) WHERE message_id IS NULL;

-- The brand's storage quota sums its files' sizes on every upload.
CREATE INDEX attachments_brand ON attachments (brand_id);
