-- API keys. The key itself is never stored: only an HMAC-SHA-256 of it under the server's
-- hash_secret (digest), a public id and a display hint. Times are Unix milliseconds; lists
-- (scopes, origins, cidrs) and metadata are JSON text.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    scopes TEXT NOT NULL,
    origins TEXT NOT NULL,
    cidrs TEXT NOT NULL,
    expires_at INTEGER,
    rate_limit TEXT,
    uses_remaining INTEGER,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER,
    revoked_reason TEXT,
    rotated_from TEXT,
    replaced_by TEXT
);
CREATE INDEX api_keys_created ON api_keys (created_at, id);
