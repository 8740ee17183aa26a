//! Values as Baileys writes them, read from every Baileys auth folder under `$WA_FIXTURES`:
//! each `creds.json` reads as `AuthCreds` and loses nothing, and each app-state sync key file
//! (protobuf JSON) reads and writes back unchanged.

use serde_json::Value;
use wa_auth::AuthCreds;
use wa_auth::key::AppStateSyncKeyData;
use wa_testkit::fixtures;
use wa_testkit::vectors::{Failures, debufferize};

fn read(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_fixture_creds_json_reads_as_auth_creds() {
    for (name, auth) in fixtures::baileys_auth_folders() {
        let creds: AuthCreds = serde_json::from_value(debufferize(read(&auth.join("creds.json"))))
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

fn check_app_state_sync_key(json: &Value) -> Result<(), String> {
    let data: AppStateSyncKeyData =
        serde_json::from_value(json.clone()).map_err(|e| format!("does not read: {e}"))?;
    // Protobuf JSON writes the 64-bit timestamp as a decimal string.
    let timestamp = json["timestamp"].as_str().map(|t| t.parse::<i64>());
    if data.timestamp != timestamp.transpose().map_err(|e| e.to_string())? {
        return Err(format!(
            "timestamp {:?} != {}",
            data.timestamp, json["timestamp"]
        ));
    }
    let back = serde_json::to_value(&data).map_err(|e| e.to_string())?;
    if &back != json {
        return Err(format!("written back as {back}"));
    }
    Ok(())
}

#[test]
fn every_app_state_sync_key_file_round_trips_as_protobuf_json() {
    let mut failures = Failures::default();
    for (name, auth) in fixtures::baileys_auth_folders() {
        for path in std::fs::read_dir(&auth).unwrap().map(|e| e.unwrap().path()) {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            if file.starts_with("app-state-sync-key-") && file.ends_with(".json") {
                failures.check(
                    &format!("{name}/{file}"),
                    check_app_state_sync_key(&read(&path)),
                );
            }
        }
    }
    failures.finish("app-state sync key files");
}
