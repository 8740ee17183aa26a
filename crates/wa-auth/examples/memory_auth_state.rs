//! The in-memory auth state, end to end: fresh creds, a transaction that commits keys and
//! creds as one batch, a failing transaction that leaves no trace, and the creds event.
//!
//! Run with `cargo run --example memory_auth_state -p wa-auth`.

use std::sync::Arc;

use wa_auth::encoding::b64_encode;
use wa_auth::{
    AuthError, AuthEvent, AuthState, KeyId, KeyKind, KeyValue, MemoryStore, PersistenceExt,
    Transaction,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), AuthError> {
    let store = MemoryStore::new();
    let state = AuthState::load(Arc::new(store.clone())).await?;
    let mut events = state.subscribe();

    let creds = state.creds();
    println!("fresh account");
    println!("  registration id   {}", creds.registration_id);
    println!(
        "  identity key      {}",
        b64_encode(creds.signed_identity_key.public.as_bytes())
    );
    println!(
        "  signed pre-key    #{} (signature valid: {})",
        creds.signed_pre_key.key_id,
        creds
            .signed_pre_key
            .verify(&creds.signed_identity_key.public)
    );

    // One transaction: a LID mapping, a device list and a creds change, committed as ONE batch.
    let lock = state
        .lock_key_for(&wa_signal::SignalAddress::new("4915112345678", 0).unwrap())
        .await?;
    state
        .transaction(lock, async |tx: &mut Transaction<'_>| {
            tx.put(
                KeyKind::LidMapping,
                "4915112345678",
                KeyValue::LidMapping("123456789012345".into()),
            );
            tx.put(
                KeyKind::LidMapping,
                "123456789012345_reverse",
                KeyValue::LidMapping("4915112345678".into()),
            );
            tx.put(
                KeyKind::DeviceList,
                "4915112345678",
                KeyValue::DeviceList(vec!["0".into(), "5".into()]),
            );
            tx.update_creds(|c| c.next_pre_key_id = 31).await?;
            Ok::<_, AuthError>(())
        })
        .await?;
    if let Ok(AuthEvent::CredsUpdated(creds)) = events.try_recv() {
        println!(
            "creds updated: next pre-key id is now {}",
            creds.next_pre_key_id
        );
    }

    // The PN address now shares its lock with the LID address.
    let pn = state
        .lock_key_for(&wa_signal::SignalAddress::new("4915112345678", 5).unwrap())
        .await?;
    println!("lock key of 4915112345678.5 is {pn}");

    // A transaction that fails writes nothing.
    let failed = state
        .transaction("demo", async |tx: &mut Transaction<'_>| {
            tx.delete(KeyKind::DeviceList, "4915112345678");
            Err::<(), _>(AuthError::invalid("demo", "changed my mind"))
        })
        .await;
    println!("failed transaction: {}", failed.unwrap_err());
    let devices = state
        .get_one(&KeyKind::DeviceList, &KeyId::from("4915112345678"))
        .await?;
    println!("device list still there: {devices:?}");

    let snapshot = store.load_all().await?;
    println!(
        "store holds creds: {}, keys per kind: {:?}",
        snapshot.creds.is_some(),
        snapshot
            .counts()
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
    );
    Ok(())
}
