-- Session records and their event logs.
-- Timestamps are RFC 3339 text in UTC with nine fractional digits, so they keep
-- nanoseconds and sort as text in time order. JSON columns hold serde_json text.
CREATE TABLE sessions (
    id               TEXT    NOT NULL PRIMARY KEY,
    owner            TEXT    NOT NULL,
    agent_type       TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    metadata         TEXT    NOT NULL,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    last_activity_at TEXT    NOT NULL,
    last_seq         INTEGER NOT NULL,
    agent_session_id TEXT,
    usage            TEXT    NOT NULL,
    error            TEXT,
    version          INTEGER NOT NULL
) STRICT;

-- Listing by owner walks this index in id order.
CREATE INDEX sessions_owner_id ON sessions (owner, id);

-- `data` is the event payload exactly as received (raw JSON text).
CREATE TABLE events (
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    at         TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    PRIMARY KEY (session_id, seq)
) STRICT;
