//! The curve against keys and signatures made by libsignal-node, read from every Baileys auth
//! folder under `$WA_FIXTURES`: each stored private key derives its stored public key, and the
//! signed pre-key's signature (XEdDSA over `0x05 || public`) verifies with the identity key —
//! and so does ours over the same message.

use serde_json::Value;
use wa_signal::provider::TestProvider;
use wa_signal::{KeyPair, PrivateKey, PublicKey};
use wa_testkit::fixtures;
use wa_testkit::vectors::{Failures, b64, debufferize};

fn read(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    debufferize(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// A stored `{private, public}` pair, checked to belong together.
fn key_pair(json: &Value, what: &str) -> Result<KeyPair, String> {
    let private =
        PrivateKey::from_slice(&b64(&json["private"])).map_err(|e| format!("{what}: {e}"))?;
    let public =
        PublicKey::from_slice(&b64(&json["public"])).map_err(|e| format!("{what}: {e}"))?;
    KeyPair::from_parts(public, private).map_err(|e| format!("{what}: {e}"))
}

fn check_creds(creds: &Value, rng: &mut TestProvider) -> Result<(), String> {
    for field in ["noiseKey", "pairingEphemeralKeyPair", "signedIdentityKey"] {
        key_pair(&creds[field], field)?;
    }
    let identity = key_pair(&creds["signedIdentityKey"], "signedIdentityKey")?;
    let spk = &creds["signedPreKey"];
    let spk_public = key_pair(&spk["keyPair"], "signedPreKey.keyPair")?.public;
    let signature = b64(&spk["signature"]);
    let message = spk_public.serialize();
    if !identity.public.verify(&message, &signature) {
        return Err("the signed pre-key signature does not verify".into());
    }
    if identity.public.verify(spk_public.as_bytes(), &signature) {
        return Err("the signature verifies without the 0x05 prefix".into());
    }
    let ours = identity.sign(rng, &message);
    if !identity.public.verify(&message, &ours) {
        return Err("our signature over the same message does not verify".into());
    }
    Ok(())
}

#[test]
fn stored_keys_and_signatures_of_every_fixture_check_out() {
    let rng = &mut TestProvider::new(1);
    let mut failures = Failures::default();
    for (name, auth) in fixtures::baileys_auth_folders() {
        failures.check(&name, check_creds(&read(&auth.join("creds.json")), rng));
        for entry in std::fs::read_dir(&auth).unwrap().map(|e| e.unwrap().path()) {
            let file = entry.file_name().unwrap().to_string_lossy().into_owned();
            if file.starts_with("pre-key-") && file.ends_with(".json") {
                let result = key_pair(&read(&entry), &file).map(|_| ());
                failures.check(&format!("{name}/{file}"), result);
            }
        }
    }
    failures.finish("fixture creds and pre-keys");
}
