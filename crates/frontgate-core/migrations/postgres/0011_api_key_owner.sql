-- Self-service keys ([api_keys.self_service]): the signed-in user (the session's subject) who
-- minted a key. NULL for keys made by the admin API or the CLI, which no user can list or revoke.
ALTER TABLE api_keys ADD COLUMN owner TEXT;
CREATE INDEX api_keys_owner ON api_keys (owner, created_at);
