//! Curve benchmarks: XEdDSA sign and verify, X25519 agreement.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wa_signal::KeyPair;
use wa_signal::provider::TestProvider;

fn bench(c: &mut Criterion) {
    let rng = &mut TestProvider::new(1);
    let pair = KeyPair::generate(rng);
    let other = KeyPair::generate(rng);
    let message = pair.public.serialize();
    let signature = pair.sign(rng, &message);
    c.bench_function("xeddsa/sign (33 B)", |b| {
        b.iter(|| pair.sign(rng, black_box(&message)))
    });
    c.bench_function("xeddsa/verify (33 B)", |b| {
        b.iter(|| {
            assert!(
                pair.public
                    .verify(black_box(&message), black_box(&signature))
            )
        })
    });
    c.bench_function("x25519/agree", |b| {
        b.iter(|| pair.agree(black_box(&other.public)))
    });
    c.bench_function("x25519/generate key pair", |b| {
        b.iter(|| KeyPair::generate(rng))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
