//! The commands users run, as they run them: `wa-auth-state migrate|inspect|verify` on every
//! fixture folder found (`$WA_FIXTURES`). Output shapes, exit codes, and one-line errors that
//! name the file (plus a hint line); expected values come from each folder's
//! `expected/vectors.json` and each corrupt case's manifest.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use wa_testkit::fixtures::{ReaderBehaviour, corrupt_manifests};
use wa_testkit::fixtures::{baileys_auth_folders, read_json};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wa-auth-state"))
        .args(args)
        .output()
        .expect("run wa-auth-state")
}

/// The `result` of a successful `--json` run.
fn result(out: &Output) -> Value {
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(text(&out.stdout).trim_end().lines().count(), 1, "compact");
    doc["result"].clone()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Keys per kind as the folder's `expected/vectors.json` indexes its files.
fn expected_keys(vectors: &Value) -> Value {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for file in vectors["files"].as_array().expect("files") {
        let kind = file["type"].as_str().expect("type");
        if kind != "creds" {
            *counts.entry(kind.to_owned()).or_default() += 1;
        }
    }
    serde_json::to_value(counts).unwrap()
}

#[test]
fn migrate_inspect_verify_every_baileys_folder() {
    for (name, source) in baileys_auth_folders() {
        let vectors = read_json(format!("baileys/{name}/expected/vectors.json"));
        migrate_inspect_verify(&name, &source, &vectors);
    }
}

fn migrate_inspect_verify(name: &str, source: &Path, vectors: &Value) {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("native");
    let out = xtask(&[
        "migrate",
        "--from",
        source.to_str().unwrap(),
        "--to",
        dest.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{name}: {}", text(&out.stderr));
    let summary = result(&out);
    assert_eq!(summary["published"], true, "{name}");
    assert_eq!(summary["source"]["backend"], "compat", "{name}");
    assert_eq!(summary["target"]["backend"], "native", "{name}");
    let keys = expected_keys(vectors);
    assert_eq!(summary["keys"], keys, "{name}");
    let total: u64 = keys
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(summary["total_keys"], total, "{name}");

    let out = xtask(&["inspect", dest.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{name}: {}", text(&out.stderr));
    let inspection = result(&out);
    assert_eq!(inspection["backend"], "native", "{name}");
    let (account, want) = (&inspection["account"], &vectors["account"]);
    for (field, expected) in [
        ("registration_id", "registration_id"),
        ("identity_key_b64", "identity_key_public_b64"),
        ("signed_pre_key_id", "signed_pre_key_id"),
        ("noise_key_b64", "noise_key_public_b64"),
        ("registered", "registered"),
        ("platform", "platform"),
    ] {
        assert_eq!(account[field], want[expected], "{name}: account.{field}");
    }
    for field in ["id", "lid", "name"] {
        assert_eq!(
            account["me"][field], want["me"][field],
            "{name}: me.{field}"
        );
    }
    assert_eq!(inspection["keys"], summary["keys"], "{name}");
    assert!(
        inspection["warnings"].as_array().unwrap().is_empty(),
        "{name}"
    );
    // Never a private key: none of the creds' private halves appear in the output.
    let creds: Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("creds.json")).unwrap()).unwrap();
    let stdout = text(&out.stdout);
    for pair in ["noiseKey", "signedIdentityKey", "pairingEphemeralKeyPair"] {
        let private = creds[pair]["private"]["data"].as_str().unwrap();
        assert!(
            !stdout.contains(private),
            "{name}: {pair} private key printed"
        );
    }

    let out = xtask(&["verify", dest.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{name}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("no problems"), "{name}");
}

#[test]
fn problems_are_one_line_errors_with_a_failing_exit_code() {
    // Cases whose manifest says: one key file (not creds) changed, a named error or a skip.
    let unreadable_keys: Vec<(String, std::path::PathBuf, String)> = corrupt_manifests()
        .into_iter()
        .flat_map(|manifest| manifest.cases)
        .filter(|case| case.behaviour == ReaderBehaviour::NamedErrorOrSkipped)
        .filter_map(|case| match case.changed.as_slice() {
            [file] if file != "creds.json" => Some((case.label, case.auth, file.clone())),
            _ => None,
        })
        .collect();
    assert!(
        !unreadable_keys.is_empty(),
        "no corrupt case with an unreadable key file"
    );
    for (name, case, file) in &unreadable_keys {
        unreadable_key_file(name, case, file);
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = xtask(&["inspect", tmp.path().join("missing").to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a location that is not there is a usage error"
    );
    assert!(text(&out.stderr).contains("does not exist"));
}

/// A Baileys folder whose key `file` is unreadable: strict migration and verification fail
/// with one line naming it, lenient migration skips it.
fn unreadable_key_file(name: &str, case: &Path, file: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("native");
    let migrate = |extra: &[&str]| {
        let mut args = vec![
            "migrate",
            "--from",
            case.to_str().unwrap(),
            "--to",
            dest.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        xtask(&args)
    };
    let out = migrate(&[]);
    assert_eq!(out.status.code(), Some(3), "{name}: could not run");
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    assert_eq!(lines.len(), 2, "{name}: the error and a hint: {stderr}");
    assert!(lines[0].contains(file), "{name}: {stderr}");
    assert!(
        lines[1].starts_with("hint: ") && lines[1].contains("--lenient"),
        "{name}: {stderr}"
    );
    assert!(!dest.exists(), "{name}");
    let out = migrate(&["--json"]);
    assert_eq!(out.status.code(), Some(3), "{name}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("the error as JSON");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"]["kind"], "source");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains(file),
        "{doc}"
    );

    let out = xtask(&["verify", case.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{name}: problems found");
    assert!(
        text(&out.stdout).contains(file),
        "{name}: {}",
        text(&out.stdout)
    );

    let out = migrate(&["--lenient"]);
    assert!(out.status.success(), "{name}: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("skipped") && l.contains(file)),
        "{name}: {stdout}"
    );
}
