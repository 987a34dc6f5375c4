-- API keys: the hash of each key, never the key. `quotas` holds the key's limits that
-- replace the configured defaults.
CREATE TABLE api_keys (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    key_hash   TEXT        NOT NULL UNIQUE,
    admin      BOOLEAN     NOT NULL,
    quotas     JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
