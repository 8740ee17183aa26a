//! Sender keys between in-process parties: distribution, out-of-order and late delivery,
//! duplicates, bounds, signatures, state limits.

use futures::executor::block_on;
use proptest::prelude::*;
use wa_signal::group;
use wa_signal::provider::TestProvider;
use wa_signal::ratchet::MAX_JUMP;
use wa_signal::record::MAX_SENDER_KEY_STATES;
use wa_signal::store::InMemoryStore;
use wa_signal::{KeyPair, SenderKeyName, SignalAddress, SignalError};

/// Alice (the sender) and Bob, who processed Alice's distribution message, with the provider
/// (seeded: every run draws the same keys) their operations use.
fn setup() -> (InMemoryStore, InMemoryStore, SenderKeyName, TestProvider) {
    let mut provider = TestProvider::new(1);
    let name = SenderKeyName::new(
        "120363000000000000@g.us",
        SignalAddress::new("alice", 3).unwrap(),
    );
    let mut alice = InMemoryStore::new(KeyPair::generate(&mut provider), 1);
    let mut bob = InMemoryStore::new(KeyPair::generate(&mut provider), 2);
    let skdm = block_on(group::create_distribution_message(
        &mut alice,
        &mut provider,
        &name,
    ))
    .unwrap();
    block_on(group::process_distribution_bytes(
        &mut bob,
        &name,
        skdm.serialized(),
    ))
    .unwrap();
    (alice, bob, name, provider)
}

fn encrypt(
    store: &mut InMemoryStore,
    provider: &mut TestProvider,
    name: &SenderKeyName,
    text: &[u8],
) -> Vec<u8> {
    block_on(group::encrypt(store, provider, name, text))
        .unwrap()
        .serialized()
        .to_vec()
}

#[test]
fn tampering_and_duplicates_are_typed_errors() {
    let (mut alice, mut bob, name, mut provider) = setup();
    let msg = encrypt(&mut alice, &mut provider, &name, b"hi");
    for position in [msg.len() - 1, msg.len() - 65, msg.len() - 70] {
        let mut tampered = msg.clone();
        tampered[position] ^= 1;
        let err = block_on(group::decrypt(&mut bob, &name, &tampered)).unwrap_err();
        assert!(
            matches!(err, SignalError::InvalidSignature),
            "byte {position}: {err}"
        );
    }
    assert_eq!(
        block_on(group::decrypt(&mut bob, &name, &msg)).unwrap(),
        b"hi"
    );
    let err = block_on(group::decrypt(&mut bob, &name, &msg)).unwrap_err();
    assert!(
        matches!(err, SignalError::DuplicateMessage { counter: 0 }),
        "{err}"
    );

    let other = SenderKeyName::new(
        "120363000000000000@g.us",
        SignalAddress::new("carol", 1).unwrap(),
    );
    let err = block_on(group::decrypt(&mut bob, &other, &msg)).unwrap_err();
    assert!(matches!(err, SignalError::NoSenderKeyState { .. }), "{err}");
    let err = block_on(group::encrypt(&mut bob, &mut provider, &name, b"x")).unwrap_err();
    assert!(
        matches!(err, SignalError::InvalidState(_)),
        "received keys cannot send: {err}"
    );
}

#[test]
fn forward_jumps_are_bounded() {
    let (mut alice, mut bob, name, mut provider) = setup();
    let mut last = Vec::new();
    for _ in 0..=MAX_JUMP + 1 {
        last = encrypt(&mut alice, &mut provider, &name, b"x");
    }
    let err = block_on(group::decrypt(&mut bob, &name, &last)).unwrap_err();
    assert!(matches!(err, SignalError::TooManySkipped { .. }), "{err}");
}

#[test]
fn reprocessing_a_distribution_message_does_not_rewind_and_states_are_capped() {
    let (mut alice, mut bob, name, mut provider) = setup();
    let skdm = block_on(group::create_distribution_message(
        &mut alice,
        &mut provider,
        &name,
    ))
    .unwrap();
    let m0 = encrypt(&mut alice, &mut provider, &name, b"zero");
    assert_eq!(
        block_on(group::decrypt(&mut bob, &name, &m0)).unwrap(),
        b"zero"
    );
    block_on(group::process_distribution_message(&mut bob, &name, &skdm)).unwrap();
    assert!(
        block_on(group::decrypt(&mut bob, &name, &m0)).is_err(),
        "replay after re-processing"
    );
    assert_eq!(bob.sender_key(&name).unwrap().state_count(), 1);

    // New sender keys (e.g. after a membership change) stack up to the cap.
    for _ in 0..MAX_SENDER_KEY_STATES + 2 {
        let mut fresh = InMemoryStore::new(KeyPair::generate(&mut provider), 1);
        let skdm = block_on(group::create_distribution_message(
            &mut fresh,
            &mut provider,
            &name,
        ))
        .unwrap();
        block_on(group::process_distribution_message(&mut bob, &name, &skdm)).unwrap();
    }
    assert_eq!(
        bob.sender_key(&name).unwrap().state_count(),
        MAX_SENDER_KEY_STATES
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any delivery order of any subset decrypts, each message exactly once, and the record
    /// survives its encoding.
    #[test]
    fn out_of_order_delivery(count in 1usize..40, order in proptest::collection::vec(any::<usize>(), 0..40)) {
        let (mut alice, mut bob, name, mut provider) = setup();
        let mut pending: Vec<(usize, Vec<u8>)> = (0..count)
            .map(|i| (i, encrypt(&mut alice, &mut provider, &name, format!("g{i}").as_bytes())))
            .collect();
        for pick in order {
            if pending.is_empty() {
                break;
            }
            let (i, msg) = pending.remove(pick % pending.len());
            prop_assert_eq!(block_on(group::decrypt(&mut bob, &name, &msg)).unwrap(), format!("g{i}").into_bytes());
            prop_assert!(block_on(group::decrypt(&mut bob, &name, &msg)).is_err());
        }
        let record = bob.sender_key(&name).unwrap().clone();
        prop_assert_eq!(wa_signal::SenderKeyRecord::decode(&record.encode()).unwrap(), record);
    }
}
