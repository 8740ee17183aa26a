//! A Signal conversation survives a restart: the device's state is reopened from disk and the
//! ratchet continues where it stopped, with no re-pairing and no lost session.
//!
//! ```sh
//! cargo run -p wa --example restart_survival
//! ```

mod common;

use wa::signal::SignalAddress;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path().join("device");
    let us = SignalAddress::new("15550100001", 17)?;

    // First run: a contact opens a session and we talk.
    let state = wa::native::use_native_file_auth_state(&dir).await?;
    let identity = state.creds().signed_identity_key.public;
    let mut peer = common::Peer::meet(&state, &us).await?;
    let (kind, bytes) = peer.send(&us, "before the restart").await?;
    let got = state.decrypt_message(&peer.address, kind, &bytes).await?;
    println!(
        "run 1 received {:?}",
        String::from_utf8_lossy(&got.plaintext)
    );
    let reply = state.encrypt_message(&peer.address, b"ack 1").await?;
    println!(
        "run 1 peer read {:?}",
        peer.receive(&us, reply.serialized(), false).await?
    );
    drop(state); // the process stops; the store's lock is released

    // Second run: reopen from disk and continue the same session.
    let state = wa::native::use_native_file_auth_state(&dir).await?;
    assert_eq!(
        state.creds().signed_identity_key.public,
        identity,
        "same identity after restart"
    );
    for text in ["after the restart", "still the same session"] {
        let (kind, bytes) = peer.send(&us, text).await?;
        let got = state.decrypt_message(&peer.address, kind, &bytes).await?;
        println!(
            "run 2 received {:?} ({kind:?})",
            String::from_utf8_lossy(&got.plaintext)
        );
    }
    let reply = state.encrypt_message(&peer.address, b"ack 2").await?;
    println!(
        "run 2 peer read {:?}",
        peer.receive(&us, reply.serialized(), false).await?
    );
    println!("the conversation survived the restart");
    Ok(())
}
