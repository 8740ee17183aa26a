-- Migration 2: which lease epoch wrote each row (NULL for rows written before), and when the
-- owner last flushed. For audits after a takeover and for lag dashboards.

ALTER TABLE {schema}.keys ADD COLUMN written_epoch BIGINT;
ALTER TABLE {schema}.creds ADD COLUMN written_epoch BIGINT;
ALTER TABLE {schema}.leases ADD COLUMN last_flush_at TIMESTAMPTZ;
