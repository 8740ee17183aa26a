//! Record encode/decode benchmarks: a session record after some traffic (with archived
//! sessions and skipped keys) and a sender-key record with kept message keys.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use wa_signal::keys::{generate_pre_keys, generate_signed_pre_key};
use wa_signal::provider::TestProvider;
use wa_signal::record::{PreKeyId, SignedPreKeyId};
use wa_signal::session::{PreKeyBundle, process_bundle};
use wa_signal::store::InMemoryStore;
use wa_signal::{
    KeyPair, SenderKeyName, SenderKeyRecord, SessionRecord, SignalAddress, cipher, group,
};

fn session_record() -> SessionRecord {
    let a = SignalAddress::new("alice", 0).unwrap();
    let b = SignalAddress::new("bob", 0).unwrap();
    let p = &mut TestProvider::new(1);
    let mut alice = InMemoryStore::new(KeyPair::generate(p), 1);
    let mut bob = InMemoryStore::new(KeyPair::generate(p), 2);
    for round in 0..3u32 {
        let spk = generate_signed_pre_key(p, bob.identity(), SignedPreKeyId(round + 1), 0);
        let opk = generate_pre_keys(p, PreKeyId(round + 1), 1).remove(0);
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
        block_on(process_bundle(&mut alice, p, &b, &bundle)).unwrap();
        let mut msgs = Vec::new();
        for _ in 0..10 {
            msgs.push(block_on(cipher::encrypt(&mut alice, p, &b, b"x")).unwrap());
        }
        // Deliver every other message: the rest stay as skipped keys.
        for m in msgs.iter().step_by(2) {
            block_on(cipher::decrypt(&mut bob, p, &a, m)).unwrap();
        }
        for _ in 0..3 {
            let r = block_on(cipher::encrypt(&mut bob, p, &a, b"y")).unwrap();
            block_on(cipher::decrypt(&mut alice, p, &b, &r)).unwrap();
            let m = block_on(cipher::encrypt(&mut alice, p, &b, b"z")).unwrap();
            block_on(cipher::decrypt(&mut bob, p, &a, &m)).unwrap();
        }
    }
    bob.session(&a).unwrap().clone()
}

fn sender_key_record() -> SenderKeyRecord {
    let name = SenderKeyName::new("g@g.us", SignalAddress::new("alice", 0).unwrap());
    let p = &mut TestProvider::new(2);
    let mut alice = InMemoryStore::new(KeyPair::generate(p), 1);
    let mut bob = InMemoryStore::new(KeyPair::generate(p), 2);
    let skdm = block_on(group::create_distribution_message(&mut alice, p, &name)).unwrap();
    block_on(group::process_distribution_message(&mut bob, &name, &skdm)).unwrap();
    let mut last = None;
    for _ in 0..20 {
        last = Some(block_on(group::encrypt(&mut alice, p, &name, b"x")).unwrap());
    }
    block_on(group::decrypt(&mut bob, &name, last.unwrap().serialized())).unwrap();
    bob.sender_key(&name).unwrap().clone()
}

fn bench(c: &mut Criterion) {
    let session = session_record();
    let bytes = session.encode();
    c.bench_function(
        &format!(
            "records/session encode ({} B, {} archived)",
            bytes.len(),
            session.previous_session_count()
        ),
        |b| b.iter(|| black_box(&session).encode()),
    );
    c.bench_function(
        &format!("records/session decode ({} B)", bytes.len()),
        |b| b.iter(|| SessionRecord::decode(black_box(&bytes)).unwrap()),
    );
    let sender = sender_key_record();
    let bytes = sender.encode();
    c.bench_function(
        &format!("records/sender key encode ({} B)", bytes.len()),
        |b| b.iter(|| black_box(&sender).encode()),
    );
    c.bench_function(
        &format!("records/sender key decode ({} B)", bytes.len()),
        |b| b.iter(|| SenderKeyRecord::decode(black_box(&bytes)).unwrap()),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
