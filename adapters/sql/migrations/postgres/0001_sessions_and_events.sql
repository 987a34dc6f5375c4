-- Session records and their event logs.
-- Ids use the "C" collation so that ordering and cursors follow byte order, the same
-- order as every other store, whatever the database's locale.
CREATE TABLE sessions (
    id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    owner            TEXT        NOT NULL,
    agent_type       TEXT        NOT NULL,
    status           TEXT        NOT NULL,
    metadata         JSONB       NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    last_activity_at TIMESTAMPTZ NOT NULL,
    last_seq         BIGINT      NOT NULL,
    agent_session_id TEXT,
    usage            JSONB       NOT NULL,
    error            JSONB,
    version          BIGINT      NOT NULL
);

-- Listing by owner walks this index in id order.
CREATE INDEX sessions_owner_id ON sessions (owner, id);

-- `data` is TEXT, not JSONB: the payload is kept byte for byte as received.
CREATE TABLE events (
    session_id TEXT COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        BIGINT      NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    kind       TEXT        NOT NULL,
    data       TEXT        NOT NULL,
    PRIMARY KEY (session_id, seq)
);
