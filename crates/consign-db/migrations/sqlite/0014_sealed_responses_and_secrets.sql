-- Secrets at rest are sealed with the master keyring (AES-256-GCM), like
-- provider credentials.
--
-- Idempotency keys are namespaced per caller (user, API key, order token)
-- rather than per organization, so the old rows could never be replayed
-- again: the table is made anew, and the old plaintext bodies go with it.
-- A stored response is sealed: `response_body` is the ciphertext when
-- `response_key_id` is set. A request that failed on our side leaves its
-- key `released` (its first claim time kept) for a retry to run again.
DROP TABLE idempotency_keys;
CREATE TABLE idempotency_keys (
    scope_key TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'released', 'done')),
    response_status BIGINT,
    response_content_type TEXT,
    response_body BLOB,
    response_key_id TEXT,
    response_nonce TEXT,
    locked_until BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope_key, idempotency_key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- Instance secrets (the JWT signing key, the order-token key, the
-- reply-address key): `value` is the ciphertext (hex) when `key_id` is
-- set; rows from before this are sealed on the next start.
ALTER TABLE instance_secrets ADD COLUMN key_id TEXT;
ALTER TABLE instance_secrets ADD COLUMN nonce TEXT;
