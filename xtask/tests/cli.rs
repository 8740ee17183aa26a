//! The commands users run, as they run them: `xtask migrate|inspect|verify` on fixture folders.
//! Output shapes, exit codes, and one-line errors that name the file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/baileys")
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("run xtask")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn migrate_inspect_verify_a_baileys_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let source = fixtures().join("v7.0.0-rc.9/paired-with-sessions/auth");
    let dest = tmp.path().join("native");
    let out = xtask(&[
        "migrate",
        "--from",
        source.to_str().unwrap(),
        "--to",
        dest.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    assert_eq!(summary["published"], true);
    assert_eq!(summary["source"]["backend"], "compat");
    assert_eq!(summary["target"]["backend"], "native");
    assert!(summary["total_keys"].as_u64().unwrap() > 0);

    let out = xtask(&["inspect", dest.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inspection: Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    assert_eq!(inspection["backend"], "native");
    let account = &inspection["account"];
    for field in [
        "registration_id",
        "identity_key_b64",
        "signed_pre_key_id",
        "noise_key_b64",
        "registered",
        "platform",
    ] {
        assert!(
            account.get(field).is_some(),
            "account.{field} missing: {account}"
        );
    }
    for field in ["id", "lid", "name"] {
        assert!(account["me"].get(field).is_some(), "me.{field} missing");
    }
    let identity = base64::engine::general_purpose::STANDARD
        .decode(account["identity_key_b64"].as_str().unwrap())
        .unwrap();
    assert_eq!(identity.len(), 32);
    assert_eq!(inspection["keys"], summary["keys"]);
    assert!(inspection["warnings"].as_array().unwrap().is_empty());
    // Never a private key: none of the creds' private halves appear in the output.
    let creds: Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("creds.json")).unwrap()).unwrap();
    let stdout = text(&out.stdout);
    for pair in ["noiseKey", "signedIdentityKey", "pairingEphemeralKeyPair"] {
        let private = creds[pair]["private"]["data"].as_str().unwrap();
        assert!(!stdout.contains(private), "{pair} private key printed");
    }

    let out = xtask(&["verify", dest.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("no problems"));
}

#[test]
fn problems_are_one_line_errors_with_a_failing_exit_code() {
    let case = fixtures().join("v7.0.0-rc.9/corrupt/session-invalid-json/auth");
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("native");

    let out = xtask(&[
        "migrate",
        "--from",
        case.to_str().unwrap(),
        "--to",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("session-100000000000001_1.0.json"),
        "{stderr}"
    );
    assert!(stderr.contains("--lenient"), "{stderr}");
    assert!(!dest.exists());

    let out = xtask(&["verify", case.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("session-100000000000001_1.0.json"),
        "{}",
        text(&out.stdout)
    );

    let out = xtask(&[
        "migrate",
        "--from",
        case.to_str().unwrap(),
        "--to",
        dest.to_str().unwrap(),
        "--lenient",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("skipped"),
        "{}",
        text(&out.stdout)
    );

    let out = xtask(&["inspect", tmp.path().join("missing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("does not exist"));
}
