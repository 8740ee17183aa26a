//! Every session, sender-key and pre-key file of every fixture folder (accounts and peers, v6
//! and v7) round-trips: JSON -> record -> JSON gives the same value (modulo key order), and the
//! record survives its protobuf encoding unchanged.

mod common;

use common::{all_auth_folders, flavour_of, key_files, read_json};
use wa_signal::record::PreKeyId;
use wa_signal::{SenderKeyRecord, SessionRecord};
use wa_store_compat::codec;

#[test]
fn every_fixture_record_round_trips_through_json_and_protobuf() {
    let (mut sessions, mut sender_keys, mut pre_keys) = (0, 0, 0);
    for (name, version, auth) in all_auth_folders() {
        let flavour = flavour_of(&version);
        for (kind, id, path) in key_files(&auth) {
            let original = read_json(&path);
            let file = format!("{name}/{}", path.file_name().unwrap().to_string_lossy());
            match kind.as_str() {
                "session" => {
                    let record = codec::session::from_json(&original)
                        .unwrap_or_else(|e| panic!("{file}: {e}"));
                    let written = codec::session::to_json(&record).unwrap();
                    assert_eq!(written, original, "{file}: JSON -> record -> JSON differs");
                    let decoded = SessionRecord::decode(&record.encode()).unwrap();
                    assert_eq!(decoded, record, "{file}: protobuf round trip differs");
                    assert_eq!(codec::session::to_json(&decoded).unwrap(), original);
                    sessions += 1;
                }
                "sender-key" => {
                    let record = codec::sender_key::from_json(&original)
                        .unwrap_or_else(|e| panic!("{file}: {e}"));
                    let written = codec::sender_key::to_json(&record, flavour).unwrap();
                    assert_eq!(written, original, "{file}: JSON -> record -> JSON differs");
                    let decoded = SenderKeyRecord::decode(&record.encode()).unwrap();
                    assert_eq!(decoded, record, "{file}: protobuf round trip differs");
                    sender_keys += 1;
                }
                "pre-key" => {
                    let id = PreKeyId(id.parse().unwrap());
                    let record = codec::pre_key::pre_key_from_json(id, &original)
                        .unwrap_or_else(|e| panic!("{file}: {e}"));
                    assert_eq!(codec::pre_key::pre_key_to_json(&record), original, "{file}");
                    pre_keys += 1;
                }
                _ => {}
            }
        }
        let creds = read_json(&auth.join("creds.json"));
        let spk = codec::pre_key::signed_pre_key_from_json(&creds["signedPreKey"]).unwrap();
        assert_eq!(
            codec::pre_key::signed_pre_key_to_json(&spk),
            creds["signedPreKey"],
            "{name}: creds.signedPreKey"
        );
        for field in ["signedIdentityKey", "noiseKey"] {
            let pair = codec::pre_key::key_pair_from_json(&creds[field]).unwrap();
            assert_eq!(
                codec::pre_key::key_pair_to_json(&pair),
                creds[field],
                "{name}: {field}"
            );
        }
        println!("{name}: round-tripped");
    }
    println!("{sessions} session files, {sender_keys} sender-key files, {pre_keys} pre-key files");
    assert!(sessions > 0 && sender_keys > 0 && pre_keys > 0);
}
