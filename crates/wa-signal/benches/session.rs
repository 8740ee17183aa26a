//! 1:1 session benchmarks: session setup (X3DH both sides), encrypt and decrypt per message.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use wa_signal::keys::{generate_pre_keys, generate_signed_pre_key};
use wa_signal::provider::TestProvider;
use wa_signal::record::{PreKeyId, SignedPreKeyId};
use wa_signal::session::{PreKeyBundle, process_bundle};
use wa_signal::store::InMemoryStore;
use wa_signal::{KeyPair, SignalAddress, cipher};

fn parties(p: &mut TestProvider) -> (InMemoryStore, InMemoryStore, PreKeyBundle) {
    let alice = InMemoryStore::new(KeyPair::generate(p), 1);
    let mut bob = InMemoryStore::new(KeyPair::generate(p), 2);
    let spk = generate_signed_pre_key(p, bob.identity(), SignedPreKeyId(1), 0);
    let opk = generate_pre_keys(p, PreKeyId(1), 1).remove(0);
    let bundle = PreKeyBundle {
        registration_id: 2,
        device_id: 0,
        pre_key: Some((opk.id, opk.key_pair.public)),
        signed_pre_key_id: spk.id,
        signed_pre_key: spk.key_pair.public,
        signed_pre_key_signature: spk.signature,
        identity_key: bob.identity().public,
    };
    bob.add_signed_pre_key(spk);
    bob.add_pre_key(opk);
    (alice, bob, bundle)
}

fn bench(c: &mut Criterion) {
    let a = SignalAddress::new("alice", 0).unwrap();
    let b = SignalAddress::new("bob", 0).unwrap();
    let plaintext = vec![0x42u8; 100];
    let p = &mut TestProvider::new(1);

    let (alice, bob, bundle) = parties(p);
    c.bench_function("session/process_bundle (X3DH initiator)", |bench| {
        bench.iter_batched(
            || alice.clone(),
            |mut store| block_on(process_bundle(&mut store, p, &b, black_box(&bundle))).unwrap(),
            BatchSize::SmallInput,
        )
    });

    let mut initiator = alice.clone();
    block_on(process_bundle(&mut initiator, p, &b, &bundle)).unwrap();
    let first = block_on(cipher::encrypt(&mut initiator, p, &b, &plaintext)).unwrap();
    c.bench_function(
        "session/decrypt pkmsg (X3DH responder + ratchet step)",
        |bench| {
            bench.iter_batched(
                || bob.clone(),
                |mut store| {
                    block_on(cipher::decrypt(&mut store, p, &a, black_box(&first))).unwrap()
                },
                BatchSize::SmallInput,
            )
        },
    );

    // An established session.
    let mut responder = bob.clone();
    block_on(cipher::decrypt(&mut responder, p, &a, &first)).unwrap();
    let reply = block_on(cipher::encrypt(&mut responder, p, &a, b"ok")).unwrap();
    block_on(cipher::decrypt(&mut initiator, p, &b, &reply)).unwrap();

    let mut sender = initiator.clone();
    c.bench_function("session/encrypt msg (100 B)", |bench| {
        bench.iter(|| block_on(cipher::encrypt(&mut sender, p, &b, black_box(&plaintext))).unwrap())
    });

    // Two messages on Alice's current chain; Bob has seen the first (and its ratchet step).
    let mut alice_chain = initiator.clone();
    let next = block_on(cipher::encrypt(&mut alice_chain, p, &b, &plaintext)).unwrap();
    let same_chain = block_on(cipher::encrypt(&mut alice_chain, p, &b, &plaintext)).unwrap();
    let mut bob_chain = responder.clone();
    block_on(cipher::decrypt(&mut bob_chain, p, &a, &next)).unwrap();
    c.bench_function("session/decrypt msg (100 B, same chain)", |bench| {
        bench.iter_batched(
            || bob_chain.clone(),
            |mut store| {
                block_on(cipher::decrypt(&mut store, p, &a, black_box(&same_chain))).unwrap()
            },
            BatchSize::SmallInput,
        )
    });

    // A message on a new ratchet key: the receiver does a DH ratchet step.
    let mut stepped = initiator.clone();
    let mut bob2 = responder.clone();
    let _ = block_on(cipher::decrypt(&mut bob2, p, &a, &next)).unwrap();
    let answer = block_on(cipher::encrypt(&mut bob2, p, &a, b"x")).unwrap();
    let _ = block_on(cipher::decrypt(&mut stepped, p, &b, &answer)).unwrap();
    let new_chain = block_on(cipher::encrypt(&mut stepped, p, &b, &plaintext)).unwrap();
    c.bench_function("session/decrypt msg (100 B, DH ratchet step)", |bench| {
        bench.iter_batched(
            || bob2.clone(),
            |mut store| {
                block_on(cipher::decrypt(&mut store, p, &a, black_box(&new_chain))).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
