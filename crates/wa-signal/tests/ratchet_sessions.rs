//! Two in-process parties over the in-memory store: session setup with and without a one-time
//! pre-key, random interleavings with reordering and loss, duplicates, bounds, tampering,
//! archived sessions and identity changes.

use futures::executor::block_on;
use proptest::prelude::*;
use wa_signal::keys::{generate_pre_keys, generate_signed_pre_key};
use wa_signal::provider::TestProvider;
use wa_signal::ratchet::{MAX_ARCHIVED_SESSIONS, MAX_JUMP, MAX_MESSAGE_KEYS_PER_CHAIN};
use wa_signal::record::{PreKeyId, SignedPreKeyId};
use wa_signal::session::{BundleOutcome, PreKeyBundle, process_bundle};
use wa_signal::store::{Direction, IdentityKeyStore, InMemoryStore};
use wa_signal::{CiphertextMessage, KeyPair, PublicKey, SignalAddress, SignalError, cipher};

/// One device: its store, its address, and the seeded provider its operations draw from (the
/// same seed gives the same identity and ratchet keys on every run).
struct Party {
    store: InMemoryStore,
    address: SignalAddress,
    provider: TestProvider,
}

fn party(name: &str, registration_id: u32, seed: u64) -> Party {
    let mut provider = TestProvider::new(seed);
    Party {
        store: InMemoryStore::new(KeyPair::generate(&mut provider), registration_id),
        address: SignalAddress::new(name, 1).unwrap(),
        provider,
    }
}

/// `from` starts a session with `to` from the bundle `b`.
fn start_session(
    from: &mut Party,
    to: &SignalAddress,
    b: &PreKeyBundle,
) -> wa_signal::Result<BundleOutcome> {
    block_on(process_bundle(&mut from.store, &mut from.provider, to, b))
}

/// Publishes a bundle for `bob` (adding the keys to his store).
fn bundle(bob: &mut Party, with_one_time: bool, pre_key_id: u32) -> PreKeyBundle {
    let rng = &mut bob.provider;
    let spk = generate_signed_pre_key(rng, bob.store.identity(), SignedPreKeyId(pre_key_id), 0);
    let opk = generate_pre_keys(rng, PreKeyId(pre_key_id), 1).remove(0);
    let bundle = PreKeyBundle {
        registration_id: bob.store.registration_id(),
        device_id: 1,
        pre_key: with_one_time.then_some((opk.id, opk.key_pair.public)),
        signed_pre_key_id: spk.id,
        signed_pre_key: spk.key_pair.public,
        signed_pre_key_signature: spk.signature,
        identity_key: bob.store.identity().public,
    };
    bob.store.add_signed_pre_key(spk);
    bob.store.add_pre_key(opk);
    bundle
}

fn send(from: &mut Party, to: &SignalAddress, text: &[u8]) -> CiphertextMessage {
    block_on(cipher::encrypt(
        &mut from.store,
        &mut from.provider,
        to,
        text,
    ))
    .expect("encrypt")
}

fn receive(
    to: &mut Party,
    from: &SignalAddress,
    msg: &CiphertextMessage,
) -> wa_signal::Result<Vec<u8>> {
    let d = block_on(cipher::decrypt(&mut to.store, &mut to.provider, from, msg))?;
    if let Some(id) = d.consumed_pre_key {
        to.store.remove_pre_key(id);
    }
    Ok(d.plaintext)
}

/// Alice and Bob with an established session (Alice initiated, Bob answered once).
fn established() -> (Party, Party) {
    let mut alice = party("alice", 11, 1);
    let mut bob = party("bob", 22, 2);
    let b = bundle(&mut bob, true, 1);
    start_session(&mut alice, &bob.address, &b).unwrap();
    let first = send(&mut alice, &bob.address, b"hello");
    assert_eq!(receive(&mut bob, &alice.address, &first).unwrap(), b"hello");
    let reply = send(&mut bob, &alice.address, b"hi");
    assert_eq!(receive(&mut alice, &bob.address, &reply).unwrap(), b"hi");
    (alice, bob)
}

#[test]
fn sessions_start_with_and_without_a_one_time_pre_key() {
    for with_one_time in [true, false] {
        let mut alice = party("alice", 11, 1);
        let mut bob = party("bob", 22, 2);
        let b = bundle(&mut bob, with_one_time, 7);
        start_session(&mut alice, &bob.address, &b).unwrap();
        let m1 = send(&mut alice, &bob.address, b"one");
        let m2 = send(&mut alice, &bob.address, b"two");
        assert_eq!(m1.wa_type(), "pkmsg");
        assert_eq!(m2.wa_type(), "pkmsg");
        // Delivered in reverse: both reuse the session of their base key.
        let d2 = block_on(cipher::decrypt(
            &mut bob.store,
            &mut bob.provider,
            &alice.address,
            &m2,
        ))
        .unwrap();
        assert_eq!(d2.plaintext, b"two");
        assert_eq!(d2.consumed_pre_key, with_one_time.then_some(PreKeyId(7)));
        assert!(
            bob.store.has_pre_key(PreKeyId(7)),
            "the protocol never deletes a pre-key"
        );
        let d1 = block_on(cipher::decrypt(
            &mut bob.store,
            &mut bob.provider,
            &alice.address,
            &m1,
        ))
        .unwrap();
        assert_eq!(d1.plaintext, b"one");
        assert_eq!(d1.consumed_pre_key, None);
        let r = send(&mut bob, &alice.address, b"reply");
        assert_eq!(r.wa_type(), "msg");
        assert_eq!(receive(&mut alice, &bob.address, &r).unwrap(), b"reply");
        assert_eq!(send(&mut alice, &bob.address, b"x").wa_type(), "msg");
    }
}

#[test]
fn bad_bundle_signature_is_rejected() {
    let mut alice = party("alice", 11, 1);
    let mut bob = party("bob", 22, 2);
    let mut b = bundle(&mut bob, true, 1);
    b.signed_pre_key_signature[3] ^= 1;
    let err = start_session(&mut alice, &bob.address, &b).unwrap_err();
    assert!(matches!(err, SignalError::InvalidSignature), "{err}");
}

#[test]
fn tampered_messages_fail_with_bad_mac_and_change_nothing() {
    let (mut alice, mut bob) = established();
    let msg = send(&mut alice, &bob.address, b"secret");
    let before = bob.store.session(&alice.address).cloned();
    let bytes = msg.serialized().to_vec();
    for position in [bytes.len() - 1, bytes.len() - 9, 5] {
        let mut tampered = bytes.clone();
        tampered[position] ^= 0x01;
        let err = block_on(cipher::decrypt_message(
            &mut bob.store,
            &mut bob.provider,
            &alice.address,
            &tampered,
        ));
        assert!(
            matches!(
                err,
                Err(SignalError::BadMac | SignalError::InvalidMessage(_))
            ),
            "byte {position}: {err:?}"
        );
        assert_eq!(bob.store.session(&alice.address).cloned(), before);
    }
    assert_eq!(receive(&mut bob, &alice.address, &msg).unwrap(), b"secret");
    let again = receive(&mut bob, &alice.address, &msg);
    assert!(
        matches!(again, Err(SignalError::DuplicateMessage { .. })),
        "{again:?}"
    );
}

#[test]
fn missing_session_and_unknown_pre_keys_are_typed_errors() {
    let (mut alice, bob) = established();
    let stranger = SignalAddress::new("nobody", 0).unwrap();
    let err = block_on(cipher::encrypt(
        &mut alice.store,
        &mut alice.provider,
        &stranger,
        b"x",
    ))
    .unwrap_err();
    assert!(matches!(err, SignalError::NoSession { .. }));
    let msg = send(&mut alice, &bob.address, b"x");
    let err = block_on(cipher::decrypt(
        &mut alice.store,
        &mut alice.provider,
        &stranger,
        &msg,
    ))
    .unwrap_err();
    assert!(matches!(err, SignalError::NoSession { .. }));

    let mut carol = party("carol", 33, 3);
    let mut dave = party("dave", 44, 4);
    let b = bundle(&mut dave, true, 9);
    start_session(&mut carol, &dave.address, &b).unwrap();
    let m = send(&mut carol, &dave.address, b"x");
    dave.store.remove_pre_key(PreKeyId(9));
    let err = block_on(cipher::decrypt(
        &mut dave.store,
        &mut dave.provider,
        &carol.address,
        &m,
    ))
    .unwrap_err();
    assert!(matches!(err, SignalError::InvalidPreKeyId(9)), "{err}");
}

#[test]
fn jumps_beyond_the_bound_are_refused_and_stored_keys_are_bounded() {
    let (mut alice, mut bob) = established();
    let mut last = None;
    for _ in 0..=MAX_JUMP + 1 {
        last = Some(send(&mut alice, &bob.address, b"x"));
    }
    let err = receive(&mut bob, &alice.address, &last.unwrap()).unwrap_err();
    assert!(matches!(err, SignalError::TooManySkipped { .. }), "{err}");

    // Exactly at the bound it works, and every skipped key is kept (within the cap).
    let (mut alice, mut bob) = established();
    let msgs: Vec<_> = (0..=MAX_JUMP)
        .map(|_| send(&mut alice, &bob.address, b"y"))
        .collect();
    assert_eq!(
        receive(&mut bob, &alice.address, msgs.last().unwrap()).unwrap(),
        b"y"
    );
    let record = bob.store.session(&alice.address).unwrap();
    let kept: usize = record
        .current()
        .unwrap()
        .receiver_chains
        .iter()
        .map(|c| c.chain.message_keys.len())
        .sum();
    assert_eq!(kept, MAX_JUMP as usize);
    assert!(kept <= MAX_MESSAGE_KEYS_PER_CHAIN);
    assert_eq!(receive(&mut bob, &alice.address, &msgs[0]).unwrap(), b"y");
}

#[test]
fn archived_sessions_still_decrypt_late_messages() {
    let (mut alice, mut bob) = established();
    let late = send(&mut alice, &bob.address, b"late on the old session");
    // Alice starts over (e.g. reinstall keeps identity): a new bundle, a new session.
    let b = bundle(&mut bob, true, 2);
    start_session(&mut alice, &bob.address, &b).unwrap();
    let fresh = send(&mut alice, &bob.address, b"new session");
    assert_eq!(fresh.wa_type(), "pkmsg");
    assert_eq!(
        receive(&mut bob, &alice.address, &fresh).unwrap(),
        b"new session"
    );
    let record = bob.store.session(&alice.address).unwrap();
    assert_eq!(record.previous_session_count(), 1);
    assert!(record.previous()[0].closed.is_some());
    assert_eq!(
        receive(&mut bob, &alice.address, &late).unwrap(),
        b"late on the old session"
    );
    // The new session stays current.
    let r = send(&mut bob, &alice.address, b"on new");
    assert_eq!(receive(&mut alice, &bob.address, &r).unwrap(), b"on new");
}

#[test]
fn archives_are_bounded() {
    let mut alice = party("alice", 11, 1);
    let mut bob = party("bob", 22, 2);
    for i in 0..(MAX_ARCHIVED_SESSIONS as u32 + 5) {
        let b = bundle(&mut bob, false, i + 1);
        start_session(&mut alice, &bob.address, &b).unwrap();
    }
    let record = alice.store.session(&bob.address).unwrap();
    assert_eq!(record.previous_session_count(), MAX_ARCHIVED_SESSIONS);
}

#[test]
fn identity_changes_are_reported() {
    let (_alice, mut bob) = established();
    // Someone else now speaks as "alice" with a new identity.
    let mut impostor = party("alice", 11, 5);
    let b = bundle(&mut bob, true, 5);
    let outcome = start_session(&mut impostor, &bob.address, &b).unwrap();
    assert!(!outcome.identity_changed);
    let m = send(&mut impostor, &bob.address, b"new identity");
    let d = block_on(cipher::decrypt(
        &mut bob.store,
        &mut bob.provider,
        &impostor.address,
        &m,
    ))
    .unwrap();
    assert!(d.identity_changed);
    assert_eq!(d.plaintext, b"new identity");
}

/// A store that trusts no identity.
struct Distrustful(InMemoryStore);

#[async_trait::async_trait]
impl wa_signal::store::SessionStore for Distrustful {
    async fn load_session(
        &mut self,
        a: &SignalAddress,
    ) -> wa_signal::Result<Option<wa_signal::SessionRecord>> {
        self.0.load_session(a).await
    }
    async fn store_session(
        &mut self,
        a: &SignalAddress,
        r: &wa_signal::SessionRecord,
    ) -> wa_signal::Result<()> {
        self.0.store_session(a, r).await
    }
}

#[async_trait::async_trait]
impl IdentityKeyStore for Distrustful {
    async fn identity_key_pair(&mut self) -> wa_signal::Result<KeyPair> {
        self.0.identity_key_pair().await
    }
    async fn local_registration_id(&mut self) -> wa_signal::Result<u32> {
        self.0.local_registration_id().await
    }
    async fn get_identity(&mut self, a: &SignalAddress) -> wa_signal::Result<Option<PublicKey>> {
        self.0.get_identity(a).await
    }
    async fn save_identity(&mut self, a: &SignalAddress, k: &PublicKey) -> wa_signal::Result<bool> {
        self.0.save_identity(a, k).await
    }
    async fn is_trusted_identity(
        &mut self,
        _: &SignalAddress,
        _: &PublicKey,
        _: Direction,
    ) -> wa_signal::Result<bool> {
        Ok(false)
    }
}

#[test]
fn untrusted_identities_are_refused() {
    let mut provider = TestProvider::new(1);
    let mut alice = Distrustful(InMemoryStore::new(KeyPair::generate(&mut provider), 1));
    let mut bob = party("bob", 22, 2);
    let b = bundle(&mut bob, true, 1);
    let err = block_on(process_bundle(&mut alice, &mut provider, &bob.address, &b)).unwrap_err();
    assert!(
        matches!(err, SignalError::UntrustedIdentity { .. }),
        "{err}"
    );
}

#[derive(Clone, Debug)]
enum Step {
    AliceSends,
    BobSends,
    /// Deliver the pending message at this position (modulo the queue length).
    Deliver(usize),
    /// Drop a pending message (lost in transit).
    Lose(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::AliceSends),
        3 => Just(Step::BobSends),
        5 => any::<usize>().prop_map(Step::Deliver),
        1 => any::<usize>().prop_map(Step::Lose),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random interleavings of sends, out-of-order deliveries and losses between two parties:
    /// every delivered message decrypts to what was sent, exactly once.
    #[test]
    fn random_interleavings_decrypt(steps in proptest::collection::vec(step(), 1..60), with_one_time in any::<bool>()) {
        let mut alice = party("alice", 11, 1);
        let mut bob = party("bob", 22, 2);
        let b = bundle(&mut bob, with_one_time, 3);
        start_session(&mut alice, &bob.address, &b).unwrap();
        // Bob cannot send before the first message from Alice arrives.
        let first = send(&mut alice, &bob.address, b"first");
        prop_assert_eq!(receive(&mut bob, &alice.address, &first).unwrap(), b"first".to_vec());

        // (to_bob, plaintext, message)
        let mut queue: Vec<(bool, Vec<u8>, CiphertextMessage)> = Vec::new();
        let mut counter = 0u32;
        for step in steps {
            match step {
                Step::AliceSends | Step::BobSends => {
                    counter += 1;
                    let to_bob = matches!(step, Step::AliceSends);
                    let text = format!("m{counter}").into_bytes();
                    let msg = if to_bob {
                        send(&mut alice, &bob.address, &text)
                    } else {
                        send(&mut bob, &alice.address, &text)
                    };
                    queue.push((to_bob, text, msg));
                }
                Step::Deliver(i) if !queue.is_empty() => {
                    let (to_bob, text, msg) = queue.remove(i % queue.len());
                    let got = if to_bob {
                        receive(&mut bob, &alice.address, &msg)
                    } else {
                        receive(&mut alice, &bob.address, &msg)
                    };
                    prop_assert_eq!(got.unwrap(), text);
                    // A replay is refused.
                    let replay = if to_bob {
                        receive(&mut bob, &alice.address, &msg)
                    } else {
                        receive(&mut alice, &bob.address, &msg)
                    };
                    prop_assert!(replay.is_err());
                }
                Step::Lose(i) if !queue.is_empty() => {
                    queue.remove(i % queue.len());
                }
                _ => {}
            }
        }
        // Everything still in flight arrives, in reverse order.
        while let Some((to_bob, text, msg)) = queue.pop() {
            let got = if to_bob {
                receive(&mut bob, &alice.address, &msg)
            } else {
                receive(&mut alice, &bob.address, &msg)
            };
            prop_assert_eq!(got.unwrap(), text);
        }
        // Records survive their encoding at the end.
        for store in [&alice.store, &bob.store] {
            for (_, record) in store.sessions() {
                prop_assert_eq!(&wa_signal::SessionRecord::decode(&record.encode()).unwrap(), record);
            }
        }
    }
}
