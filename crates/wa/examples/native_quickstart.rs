//! Quickstart: a durable native auth state and a Signal conversation over it.
//!
//! ```sh
//! cargo run -p wa --example native_quickstart -- /tmp/my-device   # default: a temp directory
//! ```
//!
//! Opens (or creates) the native store in the directory, prints the account, then exchanges a
//! few messages with a simulated contact. Every decrypt and encrypt is one atomic, durable
//! commit; run it twice on the same directory and the account is the same.

mod common;

use wa::auth::encoding::b64_encode;
use wa::auth::{KeyKind, PersistenceExt};
use wa::signal::SignalAddress;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp;
    let dir = match std::env::args().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().join("device")
        }
    };
    let state = wa::native::use_native_file_auth_state(&dir).await?;
    let creds = state.creds();
    println!("auth state in {}", dir.display());
    println!("  registration id  {}", creds.registration_id);
    println!(
        "  identity key     {}",
        b64_encode(creds.signed_identity_key.public.as_bytes())
    );
    println!("  paired           {}", creds.is_paired());

    let us = SignalAddress::new("15550100001", 17)?;
    let mut peer = common::Peer::meet(&state, &us).await?;
    for text in ["hi, new device!", "second message", "third"] {
        let (kind, bytes) = peer.send(&us, text).await?;
        let received = state.decrypt_message(&peer.address, kind, &bytes).await?;
        println!(
            "received {:?} ({kind:?}, {} bytes)",
            String::from_utf8_lossy(&received.plaintext),
            bytes.len()
        );
    }
    let reply = state.encrypt_message(&peer.address, b"hello back").await?;
    println!(
        "peer read our reply: {:?}",
        peer.receive(&us, reply.serialized(), false).await?
    );

    let sessions = state.store().list(&KeyKind::Session).await?.len();
    let pre_keys = state.store().list(&KeyKind::PreKey).await?.len();
    println!("store now holds {sessions} session(s) and {pre_keys} unused pre-key(s)");
    let _ = state.store().load_all().await?; // everything decodes
    Ok(())
}
