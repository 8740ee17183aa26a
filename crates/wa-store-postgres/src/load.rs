//! Loading an instance into memory at open: the creds row, then every key in ONE streamed
//! query (`query_raw`: rows are taken as they arrive, never buffered as a whole result).
//!
//! Keys are kept in their stored form and decoded when read (see [`crate::memory`]). Rows are
//! handed in chunks to tokio's blocking pool, which parses kinds and copies values out, so the
//! executor's threads keep serving other tasks and this overlaps with receiving the next rows.

use futures::TryStreamExt;
use std::collections::VecDeque;
use tokio::task::JoinHandle;

use tokio_postgres::{Client, Row};
use tracing::debug;
use wa_auth::{AuthCreds, AuthError, CorruptItem, KeyId, KeyKind, Result};

use crate::error::backend;
use crate::memory::{CredsSlot, Memory, Slot};
use crate::queue::Data;
use crate::sql::Statements;

/// Rows per decoding chunk.
const CHUNK: usize = 2048;
/// Chunks being decoded at once (bounds the raw rows held in memory).
const IN_FLIGHT: usize = 4;

type Decoded = Result<Vec<(KeyKind, KeyId, Slot)>>;

/// Loads the creds and every key of `instance` but those of the kinds `skip` (budgeted mode's
/// cached kinds, see [`crate::budget`]).
pub(crate) async fn load(
    client: &Client,
    statements: &Statements,
    instance: &str,
    skip: &[String],
) -> Result<Memory> {
    let mut memory = Memory::default();
    if let Some(row) = client
        .query_opt(&statements.load_creds, &[&instance])
        .await
        .map_err(backend)?
    {
        let text: &str = row.try_get(0).map_err(backend)?;
        memory.creds = Some(match serde_json::from_str::<AuthCreds>(text) {
            Ok(creds) => CredsSlot::Value(Box::new(creds)),
            Err(e) => CredsSlot::Corrupt(AuthError::corrupt(
                CorruptItem::Creds,
                format!("PostgreSQL instance {instance}"),
                e,
            )),
        });
    }

    let rows = if !skip.is_empty() {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&instance, &skip];
        client
            .query_raw(&statements.load_pinned_keys, params)
            .await
            .map_err(backend)?
    } else {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&instance];
        client
            .query_raw(&statements.load_keys, params)
            .await
            .map_err(backend)?
    };
    futures::pin_mut!(rows);
    let started = std::time::Instant::now();
    let mut count = 0usize;
    // Rows go to the decoder as they are (no copy); it reads their columns.
    let mut chunk: Vec<Row> = Vec::with_capacity(CHUNK);
    let mut decoding: VecDeque<JoinHandle<Decoded>> = VecDeque::new();
    while let Some(row) = rows.try_next().await.map_err(backend)? {
        count += 1;
        chunk.push(row);
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            let instance = instance.to_owned();
            decoding.push_back(tokio::task::spawn_blocking(move || {
                decode_chunk(&instance, full)
            }));
            if decoding.len() >= IN_FLIGHT
                && let Some(oldest) = decoding.pop_front()
            {
                insert(&mut memory, oldest.await)?;
            }
        }
    }
    let received = started.elapsed();
    if !chunk.is_empty() {
        let instance = instance.to_owned();
        decoding.push_back(tokio::task::spawn_blocking(move || {
            decode_chunk(&instance, chunk)
        }));
    }
    while let Some(next) = decoding.pop_front() {
        insert(&mut memory, next.await)?;
    }
    debug!(
        instance,
        rows = count,
        received_ms = received.as_millis() as u64,
        decoded_ms = started.elapsed().as_millis() as u64,
        "loaded keys"
    );
    Ok(memory)
}

fn insert(
    memory: &mut Memory,
    decoded: std::result::Result<Decoded, tokio::task::JoinError>,
) -> Result<()> {
    let decoded =
        decoded.map_err(|e| crate::error::backend_msg(format!("decoder task failed: {e}")))??;
    for (kind, id, slot) in decoded {
        memory.insert_loaded(kind, id, slot);
    }
    Ok(())
}

/// Takes the rows' kinds, ids and values. A kind name that cannot be a kind at all fails the
/// load, naming the row (no writer of ours produces one; the row is left as it is).
fn decode_chunk(instance: &str, rows: Vec<Row>) -> Decoded {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let kind_name: &str = row.try_get(0).map_err(backend)?;
        let id: &str = row.try_get(1).map_err(backend)?;
        let is_string: bool = row.try_get(2).map_err(backend)?;
        let text: &str = row.try_get(3).map_err(backend)?;
        let kind = KeyKind::from_name(kind_name).map_err(|e| {
            AuthError::corrupt(
                CorruptItem::Store,
                format!("key row ({instance:?}, {kind_name:?}, {id:?})"),
                format!("invalid kind name: {e}"),
            )
        })?;
        let data = if is_string {
            Data::Text(text.to_owned())
        } else {
            Data::Json(text.to_owned())
        };
        out.push((kind, KeyId::new(id), Slot::Stored(data)));
    }
    Ok(out)
}
