//! The statements of a fleet's flusher: the single-account statements of [`crate::sql`] with
//! the instance (and owner and epoch) as array parameters, so that one statement serves every
//! account of a flush or a renewal.

use crate::schema::SchemaName;

/// Multi-account statements for one schema.
#[derive(Clone, Debug)]
pub(crate) struct FleetStatements {
    /// The lease check of many accounts: `$1` instances, `$2` owners, `$3` epochs (parallel
    /// arrays), `$4` ttl in ms, `$5` whether it is a flush (notes `last_flush_at`). Locks and
    /// renews the lease rows that are still ours and not locked by another transaction
    /// (`SKIP LOCKED`: a row held by a takeover in progress, or by anything else, holds up
    /// neither this statement nor the other accounts); returns their instance ids. The locks
    /// last until the transaction ends, so no takeover can interleave with the writes that
    /// follow for those accounts.
    pub guard: String,
    /// The guard and a whole round's writes in one statement (see `flush_at_once`), for a
    /// round whose rows fit in one statement of each kind: one round trip instead of two.
    pub flush_at_once: String,
    /// The leases of `$1` instances: `(instance_id, owner_id, epoch, ms until expiry)`.
    pub holders: String,
    /// Releases many leases (`$1` instances, `$2` owners, `$3` epochs): returns those that
    /// were ours.
    pub release: String,
    /// Upserts keys of many accounts: `$1` instances, `$2` kinds, `$3` ids, `$4` JSON texts,
    /// `$5` epochs.
    pub upsert_keys: String,
    /// Upserts keys whose JSON value is a string: `$4` holds the strings themselves.
    pub upsert_text_keys: String,
    /// Deletes keys of many accounts: `$1` instances, `$2` kinds, `$3` ids.
    pub delete_keys: String,
    /// Upserts the creds of many accounts: `$1` instances, `$2` JSON texts, `$3` epochs.
    pub upsert_creds: String,
}

/// The lease check of [`FleetStatements::guard`], as a statement of its own or as the first
/// part of [`FleetStatements::flush_at_once`].
const GUARD: &str = "UPDATE {schema}.leases AS l
    SET expires_at = now() + $4::float8 * interval '1 millisecond',
        renewed_at = now(),
        last_flush_at = CASE WHEN $5 THEN now() ELSE l.last_flush_at END
    FROM (SELECT x.instance_id FROM {schema}.leases AS x
          JOIN unnest($1::text[], $2::text[], $3::int8[]) AS w(instance_id, owner_id, epoch)
            ON x.instance_id = w.instance_id AND x.owner_id = w.owner_id
               AND x.epoch = w.epoch
          FOR UPDATE OF x SKIP LOCKED) AS mine
    WHERE l.instance_id = mine.instance_id
    RETURNING l.instance_id";

/// Within [`FleetStatements::flush_at_once`]: only the rows of accounts whose check matched.
const CONFIRMED: &str = "t.instance_id IN (SELECT instance_id FROM confirmed)";

/// `WHERE` (or `AND`, after other conditions) [`CONFIRMED`] when `only_confirmed`.
fn filter(only_confirmed: bool, keyword: &str) -> String {
    if only_confirmed {
        format!("{keyword} {CONFIRMED}")
    } else {
        String::new()
    }
}

/// `$a::text[], $b::text[], ...`: the parameters from `first` on, of the given types.
fn params(first: usize, types: &[&str]) -> String {
    let list: Vec<String> = (first..)
        .zip(types)
        .map(|(n, ty)| format!("${n}::{ty}[]"))
        .collect();
    list.join(", ")
}

/// Upserts rows `(instance_id, kind, key_id, data, epoch)` given as arrays from parameter
/// `first` on, storing `value` (an expression of `t.data`); `only_confirmed` as in [`filter`].
fn upsert_keys(value: &str, first: usize, only_confirmed: bool) -> String {
    let unnest = params(first, &["text", "text", "text", "text", "int8"]);
    let filter = filter(only_confirmed, "WHERE");
    format!(
        "INSERT INTO {{schema}}.keys AS k
            (instance_id, kind, key_id, data, updated_at, written_epoch)
        SELECT t.instance_id, t.kind, t.key_id, {value}, now(), t.epoch
        FROM unnest({unnest}) AS t(instance_id, kind, key_id, data, epoch)
        {filter}
        ON CONFLICT (instance_id, kind, key_id) DO UPDATE SET
            data = EXCLUDED.data,
            updated_at = EXCLUDED.updated_at,
            written_epoch = EXCLUDED.written_epoch"
    )
}

/// Deletes keys `(instance_id, kind, key_id)` given as arrays from parameter `first` on.
fn delete_keys(first: usize, only_confirmed: bool) -> String {
    let unnest = params(first, &["text", "text", "text"]);
    let filter = filter(only_confirmed, "AND");
    format!(
        "DELETE FROM {{schema}}.keys AS k
        USING unnest({unnest}) AS t(instance_id, kind, key_id)
        WHERE k.instance_id = t.instance_id AND k.kind = t.kind AND k.key_id = t.key_id
        {filter}"
    )
}

/// Upserts creds `(instance_id, data, epoch)` given as arrays from parameter `first` on.
fn upsert_creds(first: usize, only_confirmed: bool) -> String {
    let unnest = params(first, &["text", "text", "int8"]);
    let filter = filter(only_confirmed, "WHERE");
    format!(
        "INSERT INTO {{schema}}.creds AS c
            (instance_id, data, updated_at, written_epoch)
        SELECT t.instance_id, t.data::jsonb, now(), t.epoch
        FROM unnest({unnest}) AS t(instance_id, data, epoch)
        {filter}
        ON CONFLICT (instance_id) DO UPDATE SET
            data = EXCLUDED.data,
            updated_at = EXCLUDED.updated_at,
            written_epoch = EXCLUDED.written_epoch"
    )
}

/// The lease check and every write of a flush round as one statement (data-modifying CTEs
/// that see the check's result): parameters `$1`..`$5` as [`GUARD`]'s, then the text upserts
/// (`$6`..`$10`), the JSON upserts (`$11`..`$15`), the deletes (`$16`..`$18`) and the creds
/// (`$19`..`$21`). Returns the instance ids whose check matched.
fn flush_at_once() -> String {
    format!(
        "WITH confirmed AS ({GUARD}),
        text_keys AS ({}),
        json_keys AS ({}),
        deleted AS ({}),
        creds AS ({})
        SELECT instance_id FROM confirmed",
        upsert_keys("to_jsonb(t.data)", 6, true),
        upsert_keys("t.data::jsonb", 11, true),
        delete_keys(16, true),
        upsert_creds(19, true),
    )
}

impl FleetStatements {
    pub(crate) fn new(schema: &SchemaName) -> Self {
        let s = |sql: &str| schema.render(sql);
        Self {
            guard: s(GUARD),
            flush_at_once: s(&flush_at_once()),
            holders: s("SELECT instance_id, owner_id, epoch,
                    (extract(epoch FROM (expires_at - now())) * 1000)::float8
                FROM {schema}.leases WHERE instance_id = ANY($1::text[])"),
            release: s("UPDATE {schema}.leases AS l
                SET owner_id = NULL, expires_at = now(), renewed_at = now()
                FROM unnest($1::text[], $2::text[], $3::int8[]) AS w(instance_id, owner_id, epoch)
                WHERE l.instance_id = w.instance_id AND l.owner_id = w.owner_id
                  AND l.epoch = w.epoch
                RETURNING l.instance_id"),
            upsert_keys: s(&upsert_keys("t.data::jsonb", 1, false)),
            upsert_text_keys: s(&upsert_keys("to_jsonb(t.data)", 1, false)),
            delete_keys: s(&delete_keys(1, false)),
            upsert_creds: s(&upsert_creds(1, false)),
        }
    }
}
