//! Binary node encode/decode throughput on realistic stanzas.
//!
//! `cargo bench -p wa-proto --bench node_codec`; figures go in `docs/benchmarks.md`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wa_proto::jid::{Jid, Server};
use wa_proto::{Node, codec};

/// Deterministic filler bytes (no RNG dependency; content does not affect the codec's speed
/// except through its length).
fn bytes(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The `iq` a linked device sends to upload 30 one-time pre-keys plus its signed pre-key.
fn pre_key_upload(count: u32) -> Node {
    let keys = (1..=count).map(|id| {
        Node::new("key").with_children([
            Node::new("id").with_bytes(id.to_be_bytes()[1..].to_vec()),
            Node::new("value").with_bytes(bytes(id, 32)),
        ])
    });
    Node::new("iq")
        .with_attr("xmlns", "encrypt")
        .with_attr("type", "set")
        .with_attr("to", Jid::server_jid(Server::Pn))
        .with_attr("id", "54321.12345-7")
        .with_children([
            Node::new("registration").with_bytes(177u32.to_be_bytes().to_vec()),
            Node::new("type").with_bytes(vec![5]),
            Node::new("identity").with_bytes(bytes(1000, 32)),
            Node::new("list").with_children(keys),
            Node::new("skey").with_children([
                Node::new("id").with_bytes(vec![0, 0, 1]),
                Node::new("value").with_bytes(bytes(1001, 32)),
                Node::new("signature").with_bytes(bytes(1002, 64)),
            ]),
        ])
}

/// A group message fanned out to 8 devices (pkmsg/msg `enc` per device), with the sender-key
/// message and the device identity.
fn group_message() -> Node {
    let participants = (0..8u16).map(|i| {
        let jid = if i % 2 == 0 {
            Jid::pn(format!("49151123456{i:02}")).map(|j| j.with_device(i))
        } else {
            Jid::lid(format!("2109876543210{i:02}")).map(|j| j.with_device(i))
        }
        .expect("valid bench JID");
        Node::new("to")
            .with_attr("jid", jid)
            .with_children([Node::new("enc")
                .with_attr("v", "2")
                .with_attr("type", if i < 2 { "pkmsg" } else { "msg" })
                .with_bytes(bytes(u32::from(i), if i < 2 { 420 } else { 150 }))])
    });
    Node::new("message")
        .with_attr("id", "3EB0C7A1B2C3D4E5F6")
        .with_attr("type", "text")
        .with_attr("to", "120363025246125888@g.us")
        .with_attr("phash", "2:Zm9vYmFy")
        .with_children([
            Node::new("participants").with_children(participants),
            Node::new("enc")
                .with_attr("v", "2")
                .with_attr("type", "skmsg")
                .with_bytes(bytes(99, 160)),
            Node::new("device-identity").with_bytes(bytes(98, 140)),
        ])
}

/// A receipt for three messages: many short attributes, tokens and packed strings.
fn receipt() -> Node {
    Node::new("receipt")
        .with_attr("id", "3EB0BBBB2222")
        .with_attr("to", "4915112345678@s.whatsapp.net")
        .with_attr("participant", "210987654321098:3@lid")
        .with_attr("type", "read")
        .with_attr("t", "1712345678")
        .with_children([Node::new("list").with_children(
            ["3EB0CCCC3333", "3EB0DDDD4444", "3EB0EEEE5555"]
                .map(|id| Node::new("item").with_attr("id", id)),
        )])
}

/// An `enc` carrying a 1 MiB payload (media-sized binary content).
fn large_binary() -> Node {
    Node::new("enc")
        .with_attr("v", "2")
        .with_attr("type", "msg")
        .with_bytes(bytes(7, 1 << 20))
}

fn codec_throughput(c: &mut Criterion) {
    let stanzas = [
        ("pre-key-upload-30", pre_key_upload(30)),
        ("group-message-8-enc", group_message()),
        ("receipt", receipt()),
        ("enc-1MiB", large_binary()),
    ];
    let mut group = c.benchmark_group("node_codec");
    for (name, node) in &stanzas {
        let encoded = codec::encode(node).expect("bench nodes encode");
        group.throughput(Throughput::Bytes(encoded.len() as u64));
        let mut buf = Vec::with_capacity(encoded.len());
        group.bench_with_input(BenchmarkId::new("encode", name), node, |b, node| {
            b.iter(|| {
                buf.clear();
                codec::encode_into(black_box(node), &mut buf).expect("encode");
                black_box(buf.len())
            });
        });
        group.bench_with_input(BenchmarkId::new("decode", name), &encoded, |b, bytes| {
            b.iter(|| codec::decode(black_box(bytes)).expect("decode"));
        });
    }
    group.finish();

    let mut compressed = c.benchmark_group("node_codec_compressed");
    let node = group_message();
    let frame = codec::encode_compressed(&node, 6).expect("compress");
    let plain_len = codec::encode(&node).expect("encode").len();
    compressed.throughput(Throughput::Bytes(plain_len as u64));
    compressed.bench_function("decode/group-message-8-enc", |b| {
        b.iter(|| codec::decode(black_box(&frame)).expect("decode"));
    });
    compressed.finish();
}

criterion_group!(benches, codec_throughput);
criterion_main!(benches);
