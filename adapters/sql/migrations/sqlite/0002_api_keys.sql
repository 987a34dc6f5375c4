-- API keys: the hash of each key, never the key. `quotas` is JSON text of the key's
-- limits that replace the configured defaults.
CREATE TABLE api_keys (
    name       TEXT    NOT NULL PRIMARY KEY,
    key_hash   TEXT    NOT NULL UNIQUE,
    admin      INTEGER NOT NULL,
    quotas     TEXT    NOT NULL,
    created_at TEXT    NOT NULL
) STRICT;
