-- Migration 1: keys, creds and leases, one set of rows per instance (account).
-- Identifier columns use the "C" collation: byte-wise comparison, whatever the database's
-- locale (faster key lookups, and the same order everywhere).

CREATE TABLE {schema}.keys (
    instance_id TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    key_id      TEXT COLLATE "C" NOT NULL,
    data        JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, kind, key_id)
)
-- Values (a session is ~3 KB of JSON) stay in the heap row instead of being compressed and
-- moved to TOAST: faster flushes and loads; values above ~8 KB are still toasted.
WITH (toast_tuple_target = 8160);

CREATE TABLE {schema}.creds (
    instance_id TEXT COLLATE "C" PRIMARY KEY,
    data        JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- owner_id NULL: released (free for anyone). epoch: the fencing token, +1 on every acquisition.
CREATE TABLE {schema}.leases (
    instance_id TEXT COLLATE "C" PRIMARY KEY,
    owner_id    TEXT,
    epoch       BIGINT      NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    renewed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
