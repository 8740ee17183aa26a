//! The client payloads are byte-for-byte Baileys' for the same creds and config
//! (`$WA_FIXTURES/wire/client-payloads.json`, every version and config found there).

use prost::Message;
use serde_json::Value;
use wa_auth::AuthCreds;
use wa_link::{
    BaileysProfile, Browser, ClientConfig, device_props, login_payload, registration_payload,
};
use wa_testkit::fixtures;
use wa_testkit::vectors::{b64, debufferize};

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

#[test]
fn payloads_match_baileys_byte_for_byte() {
    let vectors = fixtures::read_json("wire/client-payloads.json");
    let configs: Vec<&Value> = vectors["configs"].as_array().unwrap().iter().collect();
    let config_named =
        |name: &str, profile| config(configs.iter().find(|c| c["name"] == name).unwrap(), profile);
    let (mut logins, mut registrations) = (0, 0);
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
            logins += 1;
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
            registrations += 1;
        }
    }
    assert!(
        logins > 0 && registrations > 0,
        "no login ({logins}) or registration ({registrations}) vectors found"
    );
}

#[test]
fn login_rejects_jids_without_a_numeric_user() {
    let config = ClientConfig::default();
    for bad in ["not-a-jid", "abc@s.whatsapp.net", "123:x@s.whatsapp.net"] {
        assert!(
            matches!(
                login_payload(bad, &config),
                Err(wa_link::LinkError::Invalid { .. })
            ),
            "{bad}"
        );
    }
    let payload = login_payload("4915112345678_1:3@s.whatsapp.net", &config).unwrap();
    assert_eq!(
        (payload.username, payload.device),
        (Some(4_915_112_345_678), Some(3))
    );
    let payload = login_payload("4915112345678@s.whatsapp.net", &config).unwrap();
    assert_eq!(
        (payload.username, payload.device),
        (Some(4_915_112_345_678), None)
    );
}
