//! Stored records meet untrusted messages: a session or sender-key record (decoded from input
//! bytes, or built from input with fixed keys and edge-case counters, which gets much further
//! than raw bytes) is put in an in-memory store, then used to encrypt and to decrypt the rest
//! of the input as a `msg`, `pkmsg`, `skmsg` or SKDM.
//!
//! Must never panic (debug assertions are on, so counter overflow counts). Whatever the
//! protocol stores after each step decodes back to itself; what it encrypts parses; and a group
//! message encrypted with a consistent sender-key state decrypts, with the state as it was
//! before, to the plaintext.

#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use wa_signal::message::{PreKeySignalMessage, SenderKeyMessage, SignalMessage};
use wa_signal::provider::TestProvider;
use wa_signal::record::{
    PreKeyId, PreKeyRecord, SenderKeyRecord, SessionRecord, SignedPreKeyId, SignedPreKeyRecord,
};
use wa_signal::store::InMemoryStore;
use wa_signal::{CiphertextMessage, SenderKeyName, SignalAddress, cipher, group};
use wa_signal_fuzz::{assert_round_trip, block_on, key_pair, sender_key_state, session_state};

const PLAINTEXT: &[u8] = b"fuzz plaintext";

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut u = Unstructured::new(rest);
    if control & 1 == 0 {
        sessions(control, &mut u);
    } else {
        sender_keys(control, &mut u);
    }
});

fn store() -> InMemoryStore {
    let mut store = InMemoryStore::new(key_pair(1), 1);
    let signed = key_pair(2);
    store.add_signed_pre_key(SignedPreKeyRecord {
        id: SignedPreKeyId(1),
        signature: key_pair(1).sign(&mut TestProvider::new(1), &signed.public.serialize()),
        key_pair: signed,
        timestamp: 0,
    });
    store.add_pre_key(PreKeyRecord {
        id: PreKeyId(1),
        key_pair: key_pair(3),
    });
    store
}

/// A record from `u`: decoded from a length-prefixed slice when `raw`, else built.
fn take_record<R>(
    u: &mut Unstructured<'_>,
    raw: bool,
    decode: impl Fn(&[u8]) -> wa_signal::Result<R>,
    build: impl Fn(&mut Unstructured<'_>) -> libfuzzer_sys::arbitrary::Result<R>,
) -> Option<R> {
    if raw {
        let len = u.arbitrary::<u16>().ok()?;
        let bytes = u.bytes(usize::from(len).min(u.len())).ok()?;
        decode(bytes).ok()
    } else {
        build(u).ok()
    }
}

fn sessions(control: u8, u: &mut Unstructured<'_>) {
    let provider = &mut TestProvider::new(u64::from(control));
    let address = SignalAddress::new("15550001111", 1).expect("address");
    let record = take_record(u, control & 2 != 0, SessionRecord::decode, |u| {
        let current = if u.ratio(7u8, 8)? {
            Some(session_state(u)?)
        } else {
            None
        };
        let mut previous = Vec::new();
        for _ in 0..u.int_in_range(0..=2)? {
            previous.push(session_state(u)?);
        }
        Ok(SessionRecord::from_parts(current, previous))
    });
    let Some(record) = record else {
        return;
    };
    assert_round_trip(&record, SessionRecord::encode, SessionRecord::decode);
    let message = u.bytes(u.len()).unwrap_or_default();

    let mut store = store();
    store.put_session(address.clone(), record);
    let stored_round_trips = |store: &InMemoryStore| {
        if let Some(record) = store.session(&address) {
            assert_round_trip(record, SessionRecord::encode, SessionRecord::decode);
        }
    };

    if control & 4 != 0
        && let Ok(sent) = block_on(cipher::encrypt(&mut store, provider, &address, PLAINTEXT))
    {
        match &sent {
            CiphertextMessage::PreKey(m) => {
                assert_eq!(
                    &PreKeySignalMessage::parse(m.serialized()).expect("parses"),
                    m
                );
            }
            CiphertextMessage::Whisper(m) => {
                assert_eq!(&SignalMessage::parse(m.serialized()).expect("parses"), m);
            }
        }
        stored_round_trips(&store);
    }
    let _ = if control & 8 != 0 {
        block_on(cipher::decrypt_pre_key_message(
            &mut store, provider, &address, message,
        ))
    } else {
        block_on(cipher::decrypt_message(
            &mut store, provider, &address, message,
        ))
    };
    stored_round_trips(&store);
}

fn sender_keys(control: u8, u: &mut Unstructured<'_>) {
    let provider = &mut TestProvider::new(u64::from(control));
    let name = SenderKeyName::new(
        "120363000000000000@g.us",
        SignalAddress::new("15550001111", 0).expect("address"),
    );
    let record = take_record(u, control & 2 != 0, SenderKeyRecord::decode, |u| {
        let mut states = Vec::new();
        for _ in 0..u.int_in_range(1..=6)? {
            states.push(sender_key_state(u)?);
        }
        Ok(SenderKeyRecord::from_states(states))
    });
    let Some(record) = record else {
        return;
    };
    assert_round_trip(&record, SenderKeyRecord::encode, SenderKeyRecord::decode);
    let message = u.bytes(u.len()).unwrap_or_default();

    let mut store = store();
    store.put_sender_key(name.clone(), record.clone());
    let stored_round_trips = |store: &InMemoryStore| {
        if let Some(record) = store.sender_key(&name) {
            assert_round_trip(record, SenderKeyRecord::encode, SenderKeyRecord::decode);
        }
    };

    if control & 4 != 0
        && let Ok(sent) = block_on(group::encrypt(&mut store, provider, &name, PLAINTEXT))
    {
        assert_eq!(
            SenderKeyMessage::parse(sent.serialized()).expect("parses"),
            sent
        );
        stored_round_trips(&store);
        // The sending state, as it was, decrypts its own message when it is the one state
        // with its id and its signing halves match.
        let newest = record.newest().expect("encrypt needs a state");
        let consistent = newest
            .signing_private
            .as_ref()
            .is_some_and(|private| private.public_key() == newest.signing_public);
        let unique = record
            .states()
            .iter()
            .filter(|s| s.key_id == newest.key_id)
            .count()
            == 1;
        if consistent && unique {
            let mut receiver = InMemoryStore::new(key_pair(4), 2);
            receiver.put_sender_key(name.clone(), record.clone());
            let plaintext = block_on(group::decrypt(&mut receiver, &name, sent.serialized()))
                .expect("own message decrypts");
            assert_eq!(plaintext, PLAINTEXT);
        }
    }
    let _ = if control & 8 != 0 {
        block_on(group::process_distribution_bytes(
            &mut store, &name, message,
        ))
    } else {
        block_on(group::decrypt(&mut store, &name, message)).map(drop)
    };
    stored_round_trips(&store);
    if store.sender_key(&name).is_some_and(|r| !r.is_empty()) {
        let _ = block_on(group::create_distribution_message(
            &mut store, provider, &name,
        ));
    }
}
