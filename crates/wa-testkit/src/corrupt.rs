//! What a good reader must do with each corrupt fixture case, derived from the case's entry in
//! its version's `corrupt/manifest.json` (`changed` and `expected_reader_behaviour`), so that a
//! new case, or another copy of real data in the same layout, is checked rather than refused.

use std::path::PathBuf;

use serde_json::Value;

use crate::fixtures::corrupt_cases;

/// The expected behaviour of a reader, in the four kinds the manifests describe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// The creds file is unreadable: an error naming it, in strict and lenient mode alike;
    /// never fresh creds.
    UnreadableCreds {
        /// The creds file (`creds.json`).
        file: String,
    },
    /// One key file is unreadable: an error naming it in strict mode, skipped with a warning
    /// in lenient mode; everything else loads.
    UnreadableKey {
        /// The file.
        file: String,
    },
    /// Files that are not auth state: left alone, reported (or ignored); everything loads.
    NotAuthState {
        /// The files added.
        files: Vec<String>,
    },
    /// A valid variant of the format: accepted, not an error.
    Accepted,
}

/// A corrupt case and what is expected of a reader.
#[derive(Clone, Debug)]
pub struct CorruptCase {
    /// Like `v7.0.0-rc.9/corrupt/truncated-creds`.
    pub name: String,
    /// The case's Baileys folder (`<case>/auth`).
    pub auth: PathBuf,
    /// What a reader must do.
    pub expected: Expected,
}

/// The file a `changed` entry is about: its text up to `": "`, then up to the first space
/// (`"pre-key-10.json: truncated to 0 bytes"`, `"creds.json truncated to ..."`).
fn changed_file(entry: &str) -> String {
    let head = entry.split(": ").next().unwrap_or(entry);
    head.split(' ').next().unwrap_or(head).to_owned()
}

/// Classifies one manifest entry; panics (naming the case) on one it cannot read.
fn expected(case: &Value, name: &str) -> Expected {
    let behaviour = case["expected_reader_behaviour"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no expected_reader_behaviour"));
    let files: Vec<String> = case["changed"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no `changed` list"))
        .iter()
        .map(|entry| changed_file(entry.as_str().expect("a string")))
        .collect();
    let lower = behaviour.to_lowercase();
    let named = files.iter().find(|f| lower.contains(&f.to_lowercase()));
    let is_creds = |file: &str| file.starts_with("creds") && file.ends_with(".json");
    match named {
        Some(file) if lower.contains("lenient") && !is_creds(file) => {
            Expected::UnreadableKey { file: file.clone() }
        }
        Some(file) if lower.contains("error naming") && is_creds(file) => {
            Expected::UnreadableCreds { file: file.clone() }
        }
        _ if lower.contains("unrecognised") || lower.starts_with("ignore") => {
            Expected::NotAuthState { files }
        }
        _ if lower.starts_with("accept") || lower.contains("not an error") => Expected::Accepted,
        _ => panic!("{name}: cannot derive an expectation from {behaviour:?}"),
    }
}

/// Every corrupt case found under the fixtures, with its expectation. Panics when there is
/// none, or when a case is missing from its manifest.
pub fn corrupt_cases_expected() -> Vec<CorruptCase> {
    let mut out = Vec::new();
    for (name, dir) in corrupt_cases() {
        let manifest_path = dir.parent().expect("corrupt/").join("manifest.json");
        let text = std::fs::read_to_string(&manifest_path)
            .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
        let manifest: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
        let case_name = dir.file_name().expect("case").to_string_lossy();
        let case = manifest["cases"]
            .as_array()
            .and_then(|cases| cases.iter().find(|c| c["name"] == case_name.as_ref()))
            .unwrap_or_else(|| panic!("{name}: not in {}", manifest_path.display()));
        out.push(CorruptCase {
            expected: expected(case, &name),
            auth: dir.join("auth"),
            name,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_has_an_expectation_naming_files_of_the_case() {
        for case in corrupt_cases_expected() {
            if let Expected::UnreadableKey { file } | Expected::UnreadableCreds { file } =
                &case.expected
            {
                assert!(case.auth.join(file).is_file(), "{}: {file}", case.name);
            }
            if let Expected::NotAuthState { files } = &case.expected {
                assert!(
                    files.iter().all(|f| case.auth.join(f).exists()),
                    "{}: {files:?}",
                    case.name
                );
            }
        }
    }
}
