//! The client payloads are byte-for-byte Baileys' for the same creds and config
//! (`$WA_FIXTURES/wire/client-payloads.json`, every version and config found there).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use prost::Message;
use serde_json::Value;
use wa_auth::AuthCreds;
use wa_auth::flows::{
    BaileysProfile, Browser, ClientConfig, device_props, login_payload, registration_payload,
};
use wa_testkit::fixtures;
use wa_testkit::vectors::debufferize;

fn load_creds(relative: &str) -> AuthCreds {
    let json = fixtures::read_json(relative);
    serde_json::from_value(debufferize(json)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn config(raw: &Value, profile: BaileysProfile) -> ClientConfig {
    let version: Vec<u32> = raw["version"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let browser: Vec<&str> = raw["browser"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    ClientConfig {
        version: [version[0], version[1], version[2]],
        browser: Browser::new(browser[0], browser[1], browser[2]),
        country_code: raw["countryCode"].as_str().unwrap().into(),
        sync_full_history: raw["syncFullHistory"].as_bool().unwrap(),
        profile,
    }
}

fn b64(value: &Value) -> Vec<u8> {
    STANDARD
        .decode(value.as_str().expect("base64 string"))
        .expect("valid base64")
}

#[test]
fn payloads_match_baileys_byte_for_byte() {
    let vectors = fixtures::read_json("wire/client-payloads.json");
    let configs: Vec<&Value> = vectors["configs"].as_array().unwrap().iter().collect();
    let config_named =
        |name: &str, profile| config(configs.iter().find(|c| c["name"] == name).unwrap(), profile);
    let mut checked = 0;
    for (version, data) in vectors["versions"].as_object().unwrap() {
        let profile = if version.starts_with("v6.") {
            BaileysProfile::Baileys6
        } else {
            BaileysProfile::Baileys7
        };
        for case in data["login"].as_array().unwrap() {
            let config = config_named(case["config"].as_str().unwrap(), profile);
            let jid = case["user_jid"].as_str().unwrap();
            let ours = login_payload(jid, &config).unwrap().encode_to_vec();
            assert_eq!(
                ours,
                b64(&case["payload_b64"]),
                "{version} login {} {jid}",
                case["config"]
            );
            checked += 1;
        }
        for case in data["registration"].as_array().unwrap() {
            let config = config_named(case["config"].as_str().unwrap(), profile);
            let creds = load_creds(case["creds_source"].as_str().unwrap());
            assert_eq!(
                device_props(&config).encode_to_vec(),
                b64(&case["device_props_b64"]),
                "{version} device props {}",
                case["config"]
            );
            let ours = registration_payload(&creds, &config).encode_to_vec();
            assert_eq!(
                ours,
                b64(&case["payload_b64"]),
                "{version} registration {}",
                case["config"]
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 12,
        "expected login and registration vectors for two versions, checked {checked}"
    );
}

#[test]
fn login_rejects_jids_without_a_numeric_user() {
    let config = ClientConfig::default();
    assert!(login_payload("not-a-jid", &config).is_err());
    assert!(login_payload("abc@s.whatsapp.net", &config).is_err());
    assert!(login_payload("123:x@s.whatsapp.net", &config).is_err());
    assert_eq!(
        login_payload("15550100001:17@s.whatsapp.net", &config)
            .unwrap()
            .device,
        Some(17)
    );
}

#[test]
fn every_fixture_creds_json_reads_as_auth_creds() {
    for (name, auth) in fixtures::baileys_auth_folders() {
        let text = std::fs::read_to_string(auth.join("creds.json")).unwrap();
        let creds: AuthCreds =
            serde_json::from_value(debufferize(serde_json::from_str(&text).unwrap()))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            creds
                .signed_pre_key
                .verify(&creds.signed_identity_key.public),
            "{name}: signed pre-key signature"
        );
        // Nothing is lost: the canonical form re-reads to the same creds.
        let again: AuthCreds =
            serde_json::from_value(serde_json::to_value(&creds).unwrap()).unwrap();
        assert_eq!(again, creds, "{name}");
    }
}
