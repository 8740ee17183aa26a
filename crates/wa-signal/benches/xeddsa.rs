//! Curve benchmarks: XEdDSA sign and verify, X25519 agreement.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wa_signal::KeyPair;

fn bench(c: &mut Criterion) {
    let pair = KeyPair::generate();
    let other = KeyPair::generate();
    let message = pair.public.serialize();
    let signature = pair.sign(&message);
    c.bench_function("xeddsa/sign (33 B)", |b| {
        b.iter(|| pair.sign(black_box(&message)))
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
    c.bench_function("x25519/generate key pair", |b| b.iter(KeyPair::generate));
}

criterion_group!(benches, bench);
criterion_main!(benches);
