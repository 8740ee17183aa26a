//! Noise benchmarks: the client side of a full handshake, and transport throughput.
//!
//! Run with `cargo bench -p wa-signal --bench noise`; figures go to `docs/benchmarks.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use wa_signal::curve::KeyPair;
use wa_signal::noise::{
    ClientConfig, ClientHandshake, FrameDecoder, LENGTH_PREFIX_LEN, NoiseTransport, ServerConfig,
    ServerHandshake, UnixTime,
};
use wa_signal::provider::TestProvider;

/// A PKI and responder configuration shared by every iteration.
struct Setup {
    config: ClientConfig,
    server: ServerConfig,
    noise_key: KeyPair,
    payload: Vec<u8>,
}

fn setup(rng: &mut TestProvider) -> Setup {
    let (server, root_key) = ServerConfig::generate(rng, 0, u64::MAX);
    Setup {
        config: ClientConfig {
            root_key,
            routing_info: Some(vec![8, 5, 8, 8, 0x8c, 0x64, 0x89, 0x4e, 5, 0x31]),
            ..ClientConfig::default()
        },
        server,
        noise_key: KeyPair::generate(rng),
        // About the size of a login ClientPayload.
        payload: vec![0x42; 110],
    }
}

const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);

/// The responder's state and answer to a client hello (intro + first frame), read as a server
/// reads its stream.
fn respond(
    rng: &mut TestProvider,
    server: &ServerConfig,
    hello: &[u8],
) -> (wa_signal::noise::AwaitingClientFinish, Vec<u8>) {
    let mut reader = FrameDecoder::expecting_intro();
    reader.push(hello);
    let frame = reader.next_frame().expect("frame").expect("whole frame");
    let intro = reader.intro().expect("whole intro");
    ServerHandshake::new(server, rng)
        .read_client_hello(intro, &frame)
        .expect("client hello")
}

fn handshake(c: &mut Criterion) {
    let rng = &mut TestProvider::new(1);
    let s = setup(rng);
    let mut group = c.benchmark_group("noise/handshake");
    // Client work only: ephemeral key generation, client hello, reading the server hello
    // (3 X25519, 2 XEdDSA verifications), client finish and split. The responder's work
    // between the two client steps is excluded from the timing.
    group.bench_function("client", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let (client, hello) =
                    ClientHandshake::start(&s.config, s.noise_key.clone(), rng).expect("start");
                total += start.elapsed();
                let (_, server_hello) = respond(rng, &s.server, &hello);
                let start = Instant::now();
                let mut reader = FrameDecoder::new();
                reader.push(&server_hello);
                let frame = reader.next_frame().expect("frame").expect("whole");
                let accepted = client.read_server_hello(&frame, NOW).expect("accepted");
                let (finish, transport) = accepted.finish(&s.payload).expect("finish");
                total += start.elapsed();
                black_box((finish, transport));
            }
            total
        });
    });
    // Both sides, for reference (what an in-process fake server costs a test).
    group.bench_function("client+responder", |b| {
        b.iter(|| {
            let (client, hello) =
                ClientHandshake::start(&s.config, s.noise_key.clone(), rng).expect("start");
            let (server, server_hello) = respond(rng, &s.server, &hello);
            let (finish, transport) = client
                .read_server_hello(&server_hello[LENGTH_PREFIX_LEN..], NOW)
                .expect("accepted")
                .finish(&s.payload)
                .expect("finish");
            let done = server
                .read_client_finish(&finish[LENGTH_PREFIX_LEN..])
                .expect("finish");
            black_box((transport, done));
        });
    });
    group.finish();
}

fn transports() -> (NoiseTransport, NoiseTransport) {
    let rng = &mut TestProvider::new(2);
    let s = setup(rng);
    let (client, hello) =
        ClientHandshake::start(&s.config, s.noise_key.clone(), rng).expect("start");
    let (server, server_hello) = respond(rng, &s.server, &hello);
    let (finish, client) = client
        .read_server_hello(&server_hello[LENGTH_PREFIX_LEN..], NOW)
        .expect("accepted")
        .finish(&s.payload)
        .expect("finish");
    let server = server
        .read_client_finish(&finish[LENGTH_PREFIX_LEN..])
        .expect("finish");
    (client, server.transport)
}

fn transport(c: &mut Criterion) {
    let mut group = c.benchmark_group("noise/transport");
    for (label, size) in [("1KiB", 1024usize), ("64KiB", 64 * 1024)] {
        let plaintext = vec![0x5a; size];
        group.throughput(Throughput::Bytes(size as u64));

        let (mut client, _) = transports();
        group.bench_function(format!("encrypt/{label}"), |b| {
            b.iter(|| {
                black_box(
                    client
                        .encrypt_frame(black_box(&plaintext))
                        .expect("encrypt"),
                )
            });
        });

        let (client, server) = transports();
        let (mut send, _) = client.into_split();
        let (_, mut receive) = server.into_split();
        group.bench_function(format!("decrypt/{label}"), |b| {
            // Frames are produced in order by the setup and consumed in the same order, so
            // every decryption uses the counter its frame was sealed with.
            b.iter_batched(
                || send.encrypt_frame(&plaintext).expect("encrypt")[LENGTH_PREFIX_LEN..].to_vec(),
                |body| black_box(receive.decrypt(&body).expect("decrypt")),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, handshake, transport);
criterion_main!(benches);
