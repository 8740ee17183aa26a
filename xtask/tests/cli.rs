//! `cargo xtask migrate|inspect|verify|...` runs the code of `wa-auth-state` (crate
//! `wa-cli`, whose tests cover the commands themselves).

use std::process::Command;

#[test]
fn user_commands_are_passed_on_to_wa_auth_state() {
    let (_, source) = wa_testkit::fixtures::baileys_auth_folders()
        .into_iter()
        .next()
        .expect("a fixture");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["inspect", "--json", source.to_str().unwrap()])
        .output()
        .expect("run xtask");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["command"], "inspect");
    assert_eq!(doc["result"]["backend"], "compat");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["migrate", "--no-such-flag"])
        .output()
        .expect("run xtask");
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}
