//! Protobuf bytes produced by Baileys decode with our messages and re-encode to the identical
//! bytes (which also proves no field was dropped as unknown): the login and registration
//! `ClientPayload`s and `DeviceProps` of `client-payloads.json`, and the handshake messages and
//! certificate chain of `noise-handshake.json`.

mod common;

use common::{Failures, b64, read_json, same_bytes, wire_dir};
use prost::Message;
use serde_json::Value;
use wa_proto::proto::{
    CertChain, ClientPayload, DeviceProps, HandshakeMessage, client_payload, device_props,
};

/// Decodes `bytes` as `M` and checks it re-encodes to the same bytes.
fn reencodes<M: Message + Default>(bytes: &[u8]) -> Result<M, String> {
    let msg = M::decode(bytes).map_err(|e| format!("decode: {e}"))?;
    same_bytes("re-encoding", &msg.encode_to_vec(), bytes)?;
    Ok(msg)
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    got: T,
    expected: T,
) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: {got:?}, expected {expected:?}"))
    }
}

/// The fields of the JSON form we can compare without a JSON mapping for every message.
fn check_payload(payload: &ClientPayload, json: &Value) -> Result<(), String> {
    expect_eq(
        "username",
        payload.username,
        json["username"]
            .as_str()
            .map(|s| s.parse().expect("uint64 as string")),
    )?;
    expect_eq("passive", payload.passive, json["passive"].as_bool())?;
    expect_eq("pull", payload.pull, json["pull"].as_bool())?;
    expect_eq(
        "device",
        payload.device,
        json["device"].as_u64().map(|d| d as u32),
    )?;
    expect_eq(
        "lidDbMigrated",
        payload.lid_db_migrated,
        json["lidDbMigrated"].as_bool(),
    )?;
    expect_eq(
        "connectType",
        payload.connect_type.map(|t| {
            client_payload::ConnectType::try_from(t)
                .map(|t| t.as_str_name())
                .unwrap_or("?")
        }),
        json["connectType"].as_str(),
    )?;
    let ua = payload.user_agent.as_ref().ok_or("no userAgent")?;
    let ua_json = &json["userAgent"];
    expect_eq(
        "userAgent.platform",
        ua.platform.map(|p| {
            client_payload::user_agent::Platform::try_from(p)
                .map(|p| p.as_str_name())
                .unwrap_or("?")
        }),
        ua_json["platform"].as_str(),
    )?;
    let version = ua.app_version.as_ref().ok_or("no appVersion")?;
    expect_eq(
        "appVersion",
        (version.primary, version.secondary, version.tertiary),
        (
            ua_json["appVersion"]["primary"].as_u64().map(|v| v as u32),
            ua_json["appVersion"]["secondary"]
                .as_u64()
                .map(|v| v as u32),
            ua_json["appVersion"]["tertiary"].as_u64().map(|v| v as u32),
        ),
    )?;
    expect_eq(
        "localeCountryIso31661Alpha2",
        ua.locale_country_iso_3166_1_alpha_2.as_deref(),
        ua_json["localeCountryIso31661Alpha2"].as_str(),
    )?;
    let web = payload.web_info.as_ref().ok_or("no webInfo")?;
    expect_eq(
        "webInfo.webSubPlatform",
        web.web_sub_platform.map(|p| {
            client_payload::web_info::WebSubPlatform::try_from(p)
                .map(|p| p.as_str_name())
                .unwrap_or("?")
        }),
        json["webInfo"]["webSubPlatform"].as_str(),
    )?;
    Ok(())
}

fn check_registration(entry: &Value) -> Result<(), String> {
    let payload: ClientPayload = reencodes(&b64(&entry["payload_b64"]))?;
    check_payload(&payload, &entry["payload"])?;
    let pairing = payload
        .device_pairing_data
        .as_ref()
        .ok_or("no devicePairingData")?;
    let json = &entry["payload"]["devicePairingData"];
    for (what, got, key) in [
        ("eRegid", &pairing.e_regid, "eRegid"),
        ("eKeytype", &pairing.e_keytype, "eKeytype"),
        ("eIdent", &pairing.e_ident, "eIdent"),
        ("eSkeyId", &pairing.e_skey_id, "eSkeyId"),
        ("eSkeyVal", &pairing.e_skey_val, "eSkeyVal"),
        ("eSkeySig", &pairing.e_skey_sig, "eSkeySig"),
        ("buildHash", &pairing.build_hash, "buildHash"),
    ] {
        expect_eq(what, got.as_deref(), Some(b64(&json[key]).as_slice()))?;
    }
    let props_bytes = b64(&entry["device_props_b64"]);
    expect_eq(
        "deviceProps bytes",
        pairing.device_props.as_deref(),
        Some(props_bytes.as_slice()),
    )?;
    let props: DeviceProps = reencodes(&props_bytes)?;
    let props_json = &entry["device_props"];
    expect_eq("os", props.os.as_deref(), props_json["os"].as_str())?;
    expect_eq(
        "platformType",
        props.platform_type.map(|p| {
            device_props::PlatformType::try_from(p)
                .map(|p| p.as_str_name())
                .unwrap_or("?")
        }),
        props_json["platformType"].as_str(),
    )?;
    expect_eq(
        "requireFullSync",
        props.require_full_sync,
        props_json["requireFullSync"].as_bool(),
    )?;
    expect_eq(
        "historySyncConfig present",
        props.history_sync_config.is_some(),
        props_json.get("historySyncConfig").is_some(),
    )?;
    Ok(())
}

#[test]
fn client_payloads_reencode_identically() {
    let doc = read_json(&wire_dir().join("client-payloads.json"));
    assert_eq!(doc["format"], "wa-client-payload-vectors/1");
    let mut failures = Failures::default();
    for (version, data) in doc["versions"].as_object().expect("versions") {
        for (i, entry) in data["login"].as_array().expect("login").iter().enumerate() {
            let name = format!(
                "{version}/login[{i}] {} {}",
                entry["config"].as_str().unwrap_or("?"),
                entry["user_jid"].as_str().unwrap_or("?")
            );
            let result = reencodes::<ClientPayload>(&b64(&entry["payload_b64"]))
                .and_then(|p| check_payload(&p, &entry["payload"]));
            failures.check(&name, result);
        }
        for (i, entry) in data["registration"]
            .as_array()
            .expect("registration")
            .iter()
            .enumerate()
        {
            let name = format!(
                "{version}/registration[{i}] {}",
                entry["config"].as_str().unwrap_or("?")
            );
            failures.check(&name, check_registration(entry));
        }
    }
    failures.finish("client payloads");
}

#[test]
fn handshake_messages_and_cert_chains_reencode_identically() {
    let doc = read_json(&wire_dir().join("noise-handshake.json"));
    let mut failures = Failures::default();
    for t in doc["transcripts"].as_array().expect("transcripts") {
        let name = t["name"].as_str().expect("name");
        let hs = &t["handshake"];
        let hello = (|| {
            let msg: HandshakeMessage =
                reencodes(&b64(&hs["client_hello"]["handshake_message_b64"]))?;
            let hello = msg.client_hello.ok_or("no clientHello")?;
            expect_eq(
                "clientHello.ephemeral",
                hello.ephemeral,
                Some(b64(&t["keys"]["client_ephemeral"]["public_b64"])),
            )
        })();
        failures.check(&format!("{name}/client_hello"), hello);

        let server = (|| {
            let msg: HandshakeMessage =
                reencodes(&b64(&hs["server_hello"]["handshake_message_b64"]))?;
            let hello = msg.server_hello.ok_or("no serverHello")?;
            expect_eq(
                "serverHello.ephemeral",
                hello.ephemeral,
                Some(b64(&hs["server_hello"]["ephemeral_b64"])),
            )?;
            expect_eq(
                "serverHello.static",
                hello.r#static,
                Some(b64(&hs["server_hello"]["static_ciphertext_b64"])),
            )
        })();
        failures.check(&format!("{name}/server_hello"), server);

        let finish = (|| {
            let msg: HandshakeMessage =
                reencodes(&b64(&hs["client_finish"]["handshake_message_b64"]))?;
            let finish = msg.client_finish.ok_or("no clientFinish")?;
            expect_eq(
                "clientFinish.payload",
                finish.payload,
                Some(b64(&hs["client_finish"]["payload_ciphertext_b64"])),
            )?;
            let payload: ClientPayload =
                reencodes(&b64(&hs["client_finish"]["client_payload_b64"]))?;
            check_payload(&payload, &hs["client_finish"]["client_payload"])
        })();
        failures.check(&format!("{name}/client_finish"), finish);

        let chain = (|| {
            let cert = &t["cert_chain"];
            let chain: CertChain = reencodes(&b64(&cert["bytes_b64"]))?;
            let intermediate = chain.intermediate.ok_or("no intermediate")?;
            expect_eq(
                "intermediate.details",
                intermediate.details,
                Some(b64(&cert["intermediate_details_b64"])),
            )?;
            let leaf = chain.leaf.ok_or("no leaf")?;
            expect_eq(
                "leaf.details",
                leaf.details,
                Some(b64(&cert["leaf_details_b64"])),
            )?;
            let details: wa_proto::proto::cert_chain::noise_certificate::Details =
                reencodes(&b64(&cert["leaf_details_b64"]))?;
            expect_eq(
                "leaf key = server static",
                details.key,
                Some(b64(&t["keys"]["server_static"]["public_b64"])),
            )
        })();
        failures.check(&format!("{name}/cert_chain"), chain);
    }
    failures.finish("handshake vectors");
}
