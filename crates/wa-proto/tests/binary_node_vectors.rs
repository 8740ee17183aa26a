//! Golden vectors from Baileys 7 (`fixtures/wire/binary-nodes*.json`, the pre-key upload of
//! `client-payloads.json`, the transport plaintexts of `noise-handshake.json`): every node
//! encodes to Baileys' bytes exactly and decodes back to what Baileys decodes.

mod common;

use common::{Failures, b64, node_from_json, read_json, same_bytes, wire_dir, wire_files};
use wa_proto::Node;
use wa_proto::codec::{self, DecodeLimits};

/// Encode `node` and compare with `expected`; decode `expected` and compare with `decoded`.
fn check_both_ways(node: &Node, expected: &[u8], decoded: &Node) -> Result<(), String> {
    let encoded = codec::encode(node).map_err(|e| format!("encode failed: {e}"))?;
    same_bytes("encoding", &encoded, expected)?;
    let back = codec::decode(expected).map_err(|e| format!("decode failed: {e}"))?;
    if back != *decoded {
        return Err(format!("decoded\n  {back}\nexpected\n  {decoded}"));
    }
    Ok(())
}

#[test]
fn every_binary_node_vector_encodes_and_decodes_byte_for_byte() {
    let mut failures = Failures::default();
    for file in wire_files("binary-nodes") {
        let doc = read_json(&file);
        assert_eq!(
            doc["format"],
            "wa-binary-node-vectors/1",
            "{}",
            file.display()
        );
        assert_eq!(doc["leading_flag_byte"], true);
        let vectors = doc["vectors"].as_array().expect("vectors[]");
        for v in vectors {
            let name = v["name"].as_str().expect("name");
            let node = node_from_json(&v["node"]);
            let bytes = b64(&v["encoded_b64"]);
            let result = (|| {
                if Some(bytes.len() as u64) != v["encoded_len"].as_u64() {
                    return Err(format!("encoded_len says {}", v["encoded_len"]));
                }
                let decoded = if v["decoded_back_equals"] == true {
                    node.clone()
                } else {
                    let decoded = node_from_json(&v["decoded"]);
                    // A lossy vector really is lossy: otherwise it tests nothing more.
                    if decoded == node {
                        return Err("decoded_back_equals is false but decoded == node".into());
                    }
                    decoded
                };
                check_both_ways(&node, &bytes, &decoded)
            })();
            failures.check(name, result);
        }
    }
    failures.finish("binary node vectors");
}

#[test]
fn every_compressed_vector_decodes() {
    let mut failures = Failures::default();
    for file in wire_files("binary-nodes") {
        let doc = read_json(&file);
        let Some(vectors) = doc["compressed_decode_only"].as_array() else {
            continue;
        };
        for v in vectors {
            let name = v["name"].as_str().expect("name");
            let result = (|| {
                let frame = b64(&v["frame_b64"]);
                let plain = b64(&v["uncompressed_b64"]);
                let expected = node_from_json(&v["decoded"]);
                if Some(u64::from(frame[0])) != v["flag_byte"].as_u64() {
                    return Err(format!("flag byte 0x{:02x}", frame[0]));
                }
                let node = codec::decode(&frame).map_err(|e| format!("decode: {e}"))?;
                if node != expected {
                    return Err(format!("decoded {node}"));
                }
                // The plain form is ours byte for byte, and our compressed form decodes too.
                check_both_ways(&expected, &plain, &expected)?;
                let level = v["zlib_level"].as_u64().unwrap_or(6) as u32;
                let ours = codec::encode_compressed(&expected, level).map_err(|e| e.to_string())?;
                let again = codec::decode(&ours).map_err(|e| format!("own compressed: {e}"))?;
                if again != expected {
                    return Err("own compressed form decodes differently".into());
                }
                // A limit just under the inflated size refuses it.
                let tight = DecodeLimits {
                    max_inflated_len: plain.len() - 2,
                    ..DecodeLimits::DEFAULT
                };
                match codec::decode_with_limits(&frame, &tight) {
                    Err(wa_proto::Error::DecompressedTooLarge { .. }) => Ok(()),
                    other => Err(format!("tight inflate limit gave {other:?}")),
                }
            })();
            failures.check(name, result);
        }
    }
    failures.finish("compressed vectors");
}

#[test]
fn pre_key_upload_nodes_match_baileys() {
    let doc = read_json(&wire_dir().join("client-payloads.json"));
    let mut failures = Failures::default();
    for (version, data) in doc["versions"].as_object().expect("versions") {
        let upload = &data["pre_key_upload"];
        let node = node_from_json(&upload["node"]);
        let bytes = b64(&upload["encoded_b64"]);
        let checked = if version.starts_with("v6.") {
            // Baileys 6 encodes with its dictionary version 2, whose token indices differ from
            // version 3; only the node itself is ours to round-trip.
            codec::encode(&node)
                .and_then(|b| codec::decode(&b))
                .map_err(|e| e.to_string())
                .and_then(|back| {
                    (back == node)
                        .then_some(())
                        .ok_or_else(|| "round trip changed the node".to_owned())
                })
        } else {
            check_both_ways(&node, &bytes, &node)
        };
        let result = checked.and_then(|()| {
            // The shape the auth flows build: <list> of `count` <key>s.
            let keys = node.child("list").map_or(0, |l| l.children().len());
            match upload["count"].as_u64() {
                Some(count) if count as usize == keys => Ok(()),
                other => Err(format!("{keys} keys, count says {other:?}")),
            }
        });
        failures.check(&format!("{version}/pre_key_upload"), result);
    }
    failures.finish("pre-key upload vectors");
}

#[test]
fn noise_transport_plaintexts_match_baileys_7() {
    let doc = read_json(&wire_dir().join("noise-handshake.json"));
    let mut failures = Failures::default();
    for transcript in doc["transcripts"].as_array().expect("transcripts") {
        let name = transcript["name"].as_str().expect("name");
        // Baileys 6 transcripts use its dictionary version 2 (header "WA" 6 2), whose tables
        // differ from version 3: their bytes are not ours to reproduce.
        if b64(&transcript["noise_header_b64"]) != wa_proto::frame::WA_HEADER {
            continue;
        }
        for (i, frame) in transcript["transport"]
            .as_array()
            .expect("transport")
            .iter()
            .enumerate()
        {
            let node = node_from_json(&frame["node"]);
            let plain = b64(&frame["plaintext_b64"]);
            failures.check(
                &format!("{name}/transport[{i}]"),
                check_both_ways(&node, &plain, &node),
            );
        }
    }
    failures.finish("transport plaintexts");
}

/// Every vector node encodes to bytes that decode again under tight but sufficient limits,
/// and truncating those bytes anywhere gives an error, never a panic or a wrong node.
#[test]
fn truncated_vectors_fail_cleanly() {
    let doc = read_json(&wire_dir().join("binary-nodes.json"));
    let mut checked = 0;
    for v in doc["vectors"].as_array().expect("vectors") {
        let bytes = b64(&v["encoded_b64"]);
        if bytes.len() > 4096 {
            continue;
        }
        for cut in 1..bytes.len() {
            assert!(
                codec::decode(&bytes[..cut]).is_err(),
                "{} cut at {cut} decoded",
                v["name"]
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "no vector small enough to cut at every byte");
}
