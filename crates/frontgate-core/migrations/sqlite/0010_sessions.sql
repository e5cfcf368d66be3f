-- OIDC browser sessions (issue 4). Keyed by the SHA-256 of the cookie value; the session
-- itself (tokens, claims) is sealed with AES-256-GCM. Times are Unix seconds.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    sid TEXT,
    absolute_expires_at BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    refresh_lock_until BIGINT NOT NULL DEFAULT 0,
    sealed BLOB NOT NULL
);
CREATE INDEX sessions_subject ON sessions (subject);
CREATE INDEX sessions_sid ON sessions (sid);
CREATE INDEX sessions_absolute ON sessions (absolute_expires_at);

-- Started logins (state -> nonce, PKCE verifier, return_to; sealed) and seen logout-token
-- jtis: single-use entries with a deadline.
CREATE TABLE oidc_pending (
    key TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL,
    sealed BLOB NOT NULL
);
CREATE INDEX oidc_pending_expires ON oidc_pending (expires_at);
