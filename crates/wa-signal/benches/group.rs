//! Group (sender-key) benchmarks: encrypt and decrypt per message.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use wa_signal::provider::TestProvider;
use wa_signal::store::InMemoryStore;
use wa_signal::{KeyPair, SenderKeyName, SignalAddress, group};

fn bench(c: &mut Criterion) {
    let p = &mut TestProvider::new(1);
    let name = SenderKeyName::new(
        "120363000000000000@g.us",
        SignalAddress::new("alice", 0).unwrap(),
    );
    let mut alice = InMemoryStore::new(KeyPair::generate(p), 1);
    let mut bob = InMemoryStore::new(KeyPair::generate(p), 2);
    let skdm = block_on(group::create_distribution_message(&mut alice, p, &name)).unwrap();
    block_on(group::process_distribution_message(&mut bob, &name, &skdm)).unwrap();
    let plaintext = vec![0x42u8; 100];

    c.bench_function(
        "group/create distribution message (new sender key)",
        |bench| {
            let identity = KeyPair::generate(p);
            bench.iter_batched(
                || InMemoryStore::new(identity.clone(), 1),
                |mut store| {
                    block_on(group::create_distribution_message(&mut store, p, &name)).unwrap()
                },
                BatchSize::SmallInput,
            )
        },
    );

    let mut sender = alice.clone();
    c.bench_function("group/encrypt skmsg (100 B)", |bench| {
        bench.iter(|| {
            block_on(group::encrypt(&mut sender, p, &name, black_box(&plaintext))).unwrap()
        })
    });

    let msg = block_on(group::encrypt(&mut alice, p, &name, &plaintext)).unwrap();
    let bytes = msg.serialized().to_vec();
    c.bench_function("group/decrypt skmsg (100 B)", |bench| {
        bench.iter_batched(
            || bob.clone(),
            |mut store| block_on(group::decrypt(&mut store, &name, black_box(&bytes))).unwrap(),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
