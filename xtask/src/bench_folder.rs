//! `cargo xtask bench-folder DIR [SESSIONS] [PRE_KEYS]`: writes the synthetic Baileys 7 folder
//! the `migrate` benchmark uses (creds, SESSIONS sessions from `wa_auth::sample::session`,
//! PRE_KEYS pre-keys; default 10,000 and 1,000), for timing `wa-auth-state migrate` itself.

use std::path::PathBuf;

use wa_auth::{AuthCreds, KeyKind, KeyValue, Persistence, WriteBatch, sample};
use wa_signal::{KeyPair, PreKeyId, PreKeyRecord};
use wa_store_compat::{CompatStore, CompatStoreOptions};

/// Entry point.
pub fn main(args: &[String]) -> Result<(), String> {
    let dir = PathBuf::from(
        args.first()
            .ok_or("usage: cargo xtask bench-folder DIR [SESSIONS] [PRE_KEYS]")?,
    );
    let number = |i: usize, default: u32| -> Result<u32, String> {
        args.get(i).map_or(Ok(default), |n| {
            n.parse().map_err(|e| format!("{n:?}: {e}"))
        })
    };
    let (sessions, pre_keys) = (number(1, 10_000)?, number(2, 1_000)?);
    if dir.exists() {
        return Err(format!("{} exists; give a new folder", dir.display()));
    }
    let mut batch = WriteBatch::new();
    let mut creds = AuthCreds::generate();
    creds.next_pre_key_id = pre_keys + 1;
    creds.first_unuploaded_pre_key_id = pre_keys + 1;
    batch.set_creds(creds);
    for i in 0..sessions {
        let value = KeyValue::Session(sample::session(i as u8));
        batch.put(KeyKind::Session, format!("49151{i:08}.0"), value);
    }
    let mut provider = wa_auth::SystemProvider::new();
    for id in 1..=pre_keys {
        let record = PreKeyRecord {
            id: PreKeyId(id),
            key_pair: KeyPair::generate(&mut provider),
        };
        batch.put(KeyKind::PreKey, id.to_string(), KeyValue::PreKey(record));
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime
        .block_on(async {
            let store =
                CompatStore::open_with(&dir, CompatStoreOptions::default().fsync(false)).await?;
            store.commit(batch).await?;
            store.close().await
        })
        .map_err(|e| e.to_string())?;
    println!("{}", dir.display());
    Ok(())
}
