//! The SQL the store runs, rendered once per schema. Every statement names its instance, so
//! instances sharing a database never see each other's rows.

use crate::schema::SchemaName;

/// Statements for one schema.
#[derive(Clone, Debug)]
pub(crate) struct Statements {
    /// Takes a free or (with `$4`) expired lease: `$1` instance, `$2` owner, `$3` ttl in ms,
    /// `$4` whether expired leases of others may be taken. Returns the new epoch, or no row.
    pub acquire: String,
    /// The current holder: `(owner_id, epoch, ms until expiry)`.
    pub holder: String,
    /// Renews our lease (`$1` instance, `$2` owner, `$3` epoch, `$4` ttl ms): returns 1 row, or
    /// none when fenced.
    pub renew: String,
    /// The fencing check of a flush: renews our lease and notes the flush, under the row lock
    /// held until the flush transaction ends.
    pub flush_lease: String,
    /// Releases our lease (owner NULL, expired now), keeping the epoch: 1 row when it was ours.
    pub release: String,
    /// Upserts keys: `$1` instance, `$2` kinds, `$3` ids, `$4` JSON texts, `$5` epoch.
    pub upsert_keys: String,
    /// Upserts keys whose JSON value is a string: `$4` holds the strings themselves.
    pub upsert_text_keys: String,
    /// Deletes keys: `$1` instance, `$2` kinds, `$3` ids.
    pub delete_keys: String,
    /// Upserts the creds: `$1` instance, `$2` JSON text, `$3` epoch.
    pub upsert_creds: String,
    /// The creds as JSON text.
    pub load_creds: String,
    /// Every key of an instance: `(kind, key_id, is_string, text)`, where `text` is the string
    /// itself for JSON strings (no escaping on the server, no JSON parsing on the client) and
    /// the JSON text otherwise.
    pub load_keys: String,
    /// [`load_keys`](Self::load_keys) without the kinds `$2` (budgeted mode's cold start).
    pub load_pinned_keys: String,
    /// Keys `$3` of kind `$2`: `(key_id, is_string, text)` as in `load_keys` (budgeted mode).
    pub get_keys: String,
    /// The ids of kind `$2` (budgeted mode).
    pub list_ids: String,
}

impl Statements {
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = |sql: &str| schema.render(sql);
        Self {
            acquire: s("INSERT INTO {schema}.leases AS l
                    (instance_id, owner_id, epoch, expires_at, acquired_at, renewed_at)
                VALUES ($1, $2, 1, now() + $3::float8 * interval '1 millisecond', now(), now())
                ON CONFLICT (instance_id) DO UPDATE SET
                    owner_id = EXCLUDED.owner_id,
                    epoch = l.epoch + 1,
                    expires_at = EXCLUDED.expires_at,
                    acquired_at = now(),
                    renewed_at = now()
                WHERE l.owner_id IS NULL OR ($4 AND l.expires_at < now())
                RETURNING epoch"),
            holder: s("SELECT owner_id, epoch,
                    (extract(epoch FROM (expires_at - now())) * 1000)::float8
                FROM {schema}.leases WHERE instance_id = $1"),
            renew: s("UPDATE {schema}.leases
                SET expires_at = now() + $4::float8 * interval '1 millisecond', renewed_at = now()
                WHERE instance_id = $1 AND owner_id = $2 AND epoch = $3
                RETURNING epoch"),
            flush_lease: s("UPDATE {schema}.leases
                SET expires_at = now() + $4::float8 * interval '1 millisecond',
                    renewed_at = now(), last_flush_at = now()
                WHERE instance_id = $1 AND owner_id = $2 AND epoch = $3"),
            release: s("UPDATE {schema}.leases
                SET owner_id = NULL, expires_at = now(), renewed_at = now()
                WHERE instance_id = $1 AND owner_id = $2 AND epoch = $3
                RETURNING epoch"),
            upsert_keys: s("INSERT INTO {schema}.keys AS k
                    (instance_id, kind, key_id, data, updated_at, written_epoch)
                SELECT $1, t.kind, t.key_id, t.data::jsonb, now(), $5
                FROM unnest($2::text[], $3::text[], $4::text[]) AS t(kind, key_id, data)
                ON CONFLICT (instance_id, kind, key_id) DO UPDATE SET
                    data = EXCLUDED.data,
                    updated_at = EXCLUDED.updated_at,
                    written_epoch = EXCLUDED.written_epoch"),
            upsert_text_keys: s("INSERT INTO {schema}.keys AS k
                    (instance_id, kind, key_id, data, updated_at, written_epoch)
                SELECT $1, t.kind, t.key_id, to_jsonb(t.data), now(), $5
                FROM unnest($2::text[], $3::text[], $4::text[]) AS t(kind, key_id, data)
                ON CONFLICT (instance_id, kind, key_id) DO UPDATE SET
                    data = EXCLUDED.data,
                    updated_at = EXCLUDED.updated_at,
                    written_epoch = EXCLUDED.written_epoch"),
            delete_keys: s("DELETE FROM {schema}.keys AS k
                USING unnest($2::text[], $3::text[]) AS t(kind, key_id)
                WHERE k.instance_id = $1 AND k.kind = t.kind AND k.key_id = t.key_id"),
            upsert_creds: s("INSERT INTO {schema}.creds AS c
                    (instance_id, data, updated_at, written_epoch)
                VALUES ($1, $2::text::jsonb, now(), $3)
                ON CONFLICT (instance_id) DO UPDATE SET
                    data = EXCLUDED.data,
                    updated_at = EXCLUDED.updated_at,
                    written_epoch = EXCLUDED.written_epoch"),
            load_creds: s("SELECT data::text FROM {schema}.creds WHERE instance_id = $1"),
            load_keys: s("SELECT kind, key_id, jsonb_typeof(data) = 'string',
                    CASE WHEN jsonb_typeof(data) = 'string' THEN data #>> '{}' ELSE data::text END
                FROM {schema}.keys WHERE instance_id = $1"),
            load_pinned_keys: s("SELECT kind, key_id, jsonb_typeof(data) = 'string',
                    CASE WHEN jsonb_typeof(data) = 'string' THEN data #>> '{}' ELSE data::text END
                FROM {schema}.keys WHERE instance_id = $1 AND kind <> ALL($2::text[])"),
            get_keys: s("SELECT key_id, jsonb_typeof(data) = 'string',
                    CASE WHEN jsonb_typeof(data) = 'string' THEN data #>> '{}' ELSE data::text END
                FROM {schema}.keys
                WHERE instance_id = $1 AND kind = $2 AND key_id = ANY($3::text[])"),
            list_ids: s("SELECT key_id FROM {schema}.keys WHERE instance_id = $1 AND kind = $2"),
        }
    }
}
