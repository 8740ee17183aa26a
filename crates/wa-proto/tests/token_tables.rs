//! The token tables embedded in the crate (`src/token/dictionary.rs`) equal
//! `fixtures/wire/tokens.json`.
//!
//! To regenerate the embedded file after the fixture changes:
//! `WA_PROTO_REGENERATE_TOKENS=1 cargo test -p wa-proto --test token_tables`.

mod common;

use std::fmt::Write as _;

use serde_json::Value;
use wa_proto::token::{self, tag};

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("token string").to_owned())
        .collect()
}

#[test]
fn embedded_tables_equal_the_fixture() {
    let doc = common::read_json(&common::wire_dir().join("tokens.json"));
    assert_eq!(doc["format"], "wa-binary-tokens/1");
    assert_eq!(
        doc["dictionary_version"].as_u64(),
        Some(u64::from(token::DICTIONARY_VERSION))
    );
    let single = strings(&doc["single_byte"]);
    let double: Vec<Vec<String>> = doc["double_byte"]
        .as_array()
        .expect("double_byte")
        .iter()
        .map(strings)
        .collect();

    if std::env::var_os("WA_PROTO_REGENERATE_TOKENS").is_some() {
        regenerate(&single, &double);
        return;
    }

    assert_eq!(token::single_byte_tokens(), single.as_slice());
    assert_eq!(token::double_byte_tokens().len(), double.len());
    for (d, (ours, theirs)) in token::double_byte_tokens().iter().zip(&double).enumerate() {
        assert_eq!(&ours[..], theirs.as_slice(), "double-byte dictionary {d}");
    }
}

#[test]
fn tag_bytes_equal_the_fixture() {
    let doc = common::read_json(&common::wire_dir().join("tokens.json"));
    let tags = doc["tags"].as_object().expect("tags");
    let ours: &[(&str, u8)] = &[
        ("LIST_EMPTY", tag::LIST_EMPTY),
        ("DICTIONARY_0", tag::DICTIONARY_0),
        ("DICTIONARY_1", tag::DICTIONARY_1),
        ("DICTIONARY_2", tag::DICTIONARY_2),
        ("DICTIONARY_3", tag::DICTIONARY_3),
        ("INTEROP_JID", tag::INTEROP_JID),
        ("FB_JID", tag::FB_JID),
        ("AD_JID", tag::AD_JID),
        ("LIST_8", tag::LIST_8),
        ("LIST_16", tag::LIST_16),
        ("JID_PAIR", tag::JID_PAIR),
        ("HEX_8", tag::HEX_8),
        ("BINARY_8", tag::BINARY_8),
        ("BINARY_20", tag::BINARY_20),
        ("BINARY_32", tag::BINARY_32),
        ("NIBBLE_8", tag::NIBBLE_8),
    ];
    for (name, byte) in ours {
        assert_eq!(tags[*name].as_u64(), Some(u64::from(*byte)), "{name}");
    }
    assert_eq!(tags["PACKED_MAX"].as_u64(), Some(token::PACKED_MAX as u64));
    // Every tag in the fixture is known here.
    assert_eq!(tags.len(), ours.len() + 1);
}

fn regenerate(single: &[String], double: &[Vec<String>]) {
    let lit = |s: &str| serde_json::to_string(s).expect("string literal");
    let mut out = String::new();
    out.push_str(
        "// @generated from fixtures/wire/tokens.json (format wa-binary-tokens/1, dictionary version 3).\n\
         // Do not edit: `WA_PROTO_REGENERATE_TOKENS=1 cargo test -p wa-proto --test token_tables`\n\
         // rewrites this file from the fixture, and that test fails whenever the two differ.\n\n",
    );
    out.push_str(
        "/// Single-byte tokens: byte `i` (1..=235) stands for `SINGLE_BYTE[i]`; index 0 is the empty string.\n",
    );
    let _ = writeln!(
        out,
        "pub(crate) static SINGLE_BYTE: [&str; {}] = [",
        single.len()
    );
    for s in single {
        let _ = writeln!(out, "    {},", lit(s));
    }
    out.push_str("];\n\n");
    out.push_str("/// Double-byte tokens: bytes `236 + d, i` stand for `DOUBLE_BYTE[d][i]`.\n");
    let _ = writeln!(
        out,
        "pub(crate) static DOUBLE_BYTE: [[&str; 256]; {}] = [",
        double.len()
    );
    for dict in double {
        assert_eq!(dict.len(), 256, "a double-byte dictionary has 256 entries");
        out.push_str("    [\n");
        for s in dict {
            let _ = writeln!(out, "        {},", lit(s));
        }
        out.push_str("    ],\n");
    }
    out.push_str("];\n");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/token/dictionary.rs");
    std::fs::write(&path, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    eprintln!("regenerated {}", path.display());
}
