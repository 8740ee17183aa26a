//! `backup` and `restore` as users run them: recipients and identity files, wrong keys and
//! damaged files as exit 3 with a JSON error kind, no key and no terminal as a usage error.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use wa_backup::age::secrecy::ExposeSecret;

fn tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wa-auth-state"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run wa-auth-state")
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// An identity file as age-keygen writes it; returns the public key.
fn identity_file(path: &Path) -> String {
    let identity = wa_backup::age::x25519::Identity::generate();
    std::fs::write(
        path,
        format!("# test key\n{}\n", identity.to_string().expose_secret()),
    )
    .unwrap();
    identity.to_public().to_string()
}

fn error_kind(out: &Output) -> Value {
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["ok"], false, "{doc}");
    doc["error"]["kind"].clone()
}

#[test]
fn recipients_identities_wrong_keys_and_damaged_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, source) = wa_testkit::fixtures::baileys_auth_folders()
        .pop()
        .expect("fixture");
    let (key, other) = (tmp.path().join("key.txt"), tmp.path().join("other.txt"));
    let recipient = identity_file(&key);
    identity_file(&other);
    let file = tmp.path().join("auth.age");
    let out = tool(&[
        "--json",
        "backup",
        s(&source),
        "--to",
        s(&file),
        "--recipient",
        &recipient,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["result"]["header"]["format"], "wa-auth-backup");

    let dest = tmp.path().join("restored");
    let restore = |file: &Path, identity: &Path| {
        tool(&[
            "--json",
            "restore",
            s(file),
            "--to",
            s(&dest),
            "--identity",
            s(identity),
        ])
    };
    let out = restore(&file, &other);
    assert_eq!(
        (out.status.code(), error_kind(&out)),
        (Some(3), Value::from("wrong_key"))
    );
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    let damaged = tmp.path().join("damaged.age");
    std::fs::write(&damaged, &bytes).unwrap();
    let out = restore(&damaged, &key);
    assert_eq!(
        (out.status.code(), error_kind(&out)),
        (Some(3), Value::from("damaged"))
    );
    assert!(!dest.exists(), "nothing written");

    let out = restore(&file, &key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = tool(&["verify", s(&dest)]);
    assert!(out.status.success());

    // No key option and no terminal: a usage error, nothing asked.
    let out = tool(&["backup", s(&source), "--to", s(&tmp.path().join("x.age"))]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One key option at a time.
    let out = tool(&[
        "backup",
        s(&source),
        "--to",
        "y.age",
        "--recipient",
        &recipient,
        "--passphrase-file",
        s(&key),
    ]);
    assert_eq!(out.status.code(), Some(2));
}
