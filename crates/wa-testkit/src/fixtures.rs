//! Locating fixture data.
//!
//! Every fixture-driven test reads from `$WA_FIXTURES` (default: the repository's `fixtures/`,
//! a copy of the shared, generated fixtures). A relative `$WA_FIXTURES` is taken relative to the
//! workspace root. Tests iterate over what they find and fail when they find nothing.
//!
//! The corrupt cases are described by each version's `corrupt/manifest.json`;
//! [`corrupt_manifests`] parses them into [`CorruptCase`]s whose expectation
//! ([`ReaderBehaviour`]) comes from the manifest, so a new case is checked, not refused.

use std::path::{Path, PathBuf};

/// The workspace root (where the top-level `Cargo.toml` lives).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("wa-testkit lives at <root>/crates/wa-testkit")
        .to_path_buf()
}

/// The fixtures root: `$WA_FIXTURES`, or `<workspace>/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("WA_FIXTURES") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("fixtures"),
    }
}

/// The Baileys version folders (`fixtures/baileys/v*`), sorted. Panics when there are none,
/// so a test cannot pass vacuously.
pub fn baileys_versions() -> Vec<PathBuf> {
    let root = fixtures_dir().join("baileys");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot read fixtures at {}: {e}", root.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('v'))
        })
        .collect();
    found.sort();
    assert!(
        !found.is_empty(),
        "no Baileys fixture versions under {}",
        root.display()
    );
    found
}

/// Every Baileys auth folder under the fixtures: `(name, path)` where `name` is like
/// `v7.0.0-rc.9/paired-with-sessions` and `path` ends in `auth`. Corrupt cases are excluded;
/// see [`corrupt_cases`]. Panics when none is found.
pub fn baileys_auth_folders() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for version in baileys_versions() {
        let vname = version
            .file_name()
            .expect("dir")
            .to_string_lossy()
            .into_owned();
        for scenario in sorted_dirs(&version) {
            let sname = scenario
                .file_name()
                .expect("dir")
                .to_string_lossy()
                .into_owned();
            if sname == "corrupt" {
                continue;
            }
            let auth = scenario.join("auth");
            if auth.join("creds.json").is_file() {
                out.push((format!("{vname}/{sname}"), auth));
            }
        }
    }
    assert!(
        !out.is_empty(),
        "no Baileys auth folders under {}",
        fixtures_dir().display()
    );
    out
}

/// Every corrupt case: `(name, case dir)` where the case dir holds `auth/`, and the name is like
/// `v6.17.16/corrupt/truncated-creds`. Panics when none is found.
pub fn corrupt_cases() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for version in baileys_versions() {
        let vname = version
            .file_name()
            .expect("dir")
            .to_string_lossy()
            .into_owned();
        let corrupt = version.join("corrupt");
        if !corrupt.is_dir() {
            continue;
        }
        for case in sorted_dirs(&corrupt) {
            let cname = case
                .file_name()
                .expect("dir")
                .to_string_lossy()
                .into_owned();
            out.push((format!("{vname}/corrupt/{cname}"), case));
        }
    }
    assert!(
        !out.is_empty(),
        "no corrupt fixture cases under {}",
        fixtures_dir().display()
    );
    out
}

/// The sub-directories of `dir`, sorted by name.
pub fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Reads a JSON file under the fixtures root.
pub fn read_json(relative: impl AsRef<Path>) -> serde_json::Value {
    let path = fixtures_dir().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

/// What a corrupt case's manifest says a good reader does with its changed files, derived
/// from the case's `expected_reader_behaviour` text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReaderBehaviour {
    /// Fail with an error naming the changed file (whatever the mode: unreadable creds).
    NamedError,
    /// Fail with an error naming the changed file, or skip it with a warning in a lenient
    /// mode.
    NamedErrorOrSkipped,
    /// Accept the changed files: they read as the same values as unchanged copies.
    Accepted,
    /// The changed entries are not part of the layout: ignore them (report them at most) and
    /// never change them; everything else loads.
    Ignored,
}

impl ReaderBehaviour {
    /// The behaviour an `expected_reader_behaviour` text describes; `None` when it describes
    /// none of them (a new kind of expectation, which the tests must learn).
    pub fn from_text(text: &str) -> Option<Self> {
        let text = text.to_lowercase();
        if text.starts_with("accept") || text.contains("not an error") {
            Some(Self::Accepted)
        } else if text.contains("lenient mode") {
            Some(Self::NamedErrorOrSkipped)
        } else if text.starts_with("ignore") || text.contains("unrecognised") {
            Some(Self::Ignored)
        } else if text.contains("error naming") || text.contains("fail") {
            Some(Self::NamedError)
        } else {
            None
        }
    }
}

/// One case of a version's `corrupt/manifest.json`.
#[derive(Clone, Debug)]
pub struct CorruptCase {
    /// `<version>/<case>`, for messages.
    pub label: String,
    /// The case's name (its folder under `corrupt/`).
    pub name: String,
    /// The case's auth folder.
    pub auth: PathBuf,
    /// The paths the case changed, relative to the auth folder: the first word of each
    /// `changed` line (`creds.json`, `backup/session-1.0.json`).
    pub changed: Vec<String>,
    /// The `changed` lines as written.
    pub changed_lines: Vec<String>,
    /// What a reader must do.
    pub behaviour: ReaderBehaviour,
    /// The `expected_reader_behaviour` text.
    pub expected: String,
}

impl CorruptCase {
    /// The changed entries of the auth folder itself: files by name, a directory holding a
    /// changed path as `name/`. Sorted.
    pub fn changed_entries(&self) -> Vec<String> {
        let mut entries: Vec<String> = self
            .changed
            .iter()
            .map(|path| match path.split_once('/') {
                Some((dir, _)) => format!("{dir}/"),
                None => path.clone(),
            })
            .collect();
        entries.sort();
        entries.dedup();
        entries
    }

    /// Whether the case's text (its `changed` lines and expectation) mentions `words`
    /// (ignoring case).
    pub fn mentions(&self, words: &str) -> bool {
        let words = words.to_lowercase();
        self.changed_lines
            .iter()
            .chain([&self.expected])
            .any(|text| text.to_lowercase().contains(&words))
    }
}

/// A version's `corrupt/manifest.json`: the base every case starts from, and the cases.
#[derive(Clone, Debug)]
pub struct CorruptManifest {
    /// The version folder's name (`v7.0.0-rc.9`).
    pub version: String,
    /// The files of the base every case was built from (`creds.json` and key files).
    pub base_files: Vec<String>,
    /// The registration id of the base's creds, when the manifest gives it.
    pub creds_registration_id: Option<u64>,
    /// The cases, in the manifest's order.
    pub cases: Vec<CorruptCase>,
}

impl CorruptManifest {
    /// An unchanged copy of the base file `file`: the one of the first case that did not
    /// change it. `None` when every case changed it.
    pub fn unchanged_copy(&self, file: &str) -> Option<PathBuf> {
        self.cases
            .iter()
            .filter(|case| !case.changed.iter().any(|c| c == file))
            .map(|case| case.auth.join(file))
            .find(|path| path.is_file())
    }

    /// The base files other than `creds.json`: the keys.
    pub fn base_keys(&self) -> impl Iterator<Item = &String> {
        self.base_files.iter().filter(|f| *f != "creds.json")
    }
}

fn strings(value: &serde_json::Value, what: &str, at: &Path) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{}: {what} is not an array", at.display()))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{}: {what} holds a non-string", at.display()))
                .to_owned()
        })
        .collect()
}

fn corrupt_case(version: &str, dir: &Path, case: &serde_json::Value) -> CorruptCase {
    let at = dir.join("manifest.json");
    let name = case["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: a case without a name", at.display()))
        .to_owned();
    let changed_lines = strings(&case["changed"], "changed", &at);
    let changed = changed_lines
        .iter()
        .map(|line| {
            let word = line.split_whitespace().next().unwrap_or_default();
            word.trim_end_matches(':').to_owned()
        })
        .collect();
    let expected = case["expected_reader_behaviour"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: {name} has no expected_reader_behaviour", at.display()))
        .to_owned();
    let behaviour = ReaderBehaviour::from_text(&expected).unwrap_or_else(|| {
        panic!(
            "{}: {name}: no known reader behaviour in {expected:?}",
            at.display()
        )
    });
    CorruptCase {
        label: format!("{version}/{name}"),
        auth: dir.join(&name).join("auth"),
        name,
        changed,
        changed_lines,
        behaviour,
        expected,
    }
}

/// Every version's `corrupt/manifest.json` under the fixtures, parsed. Panics when there is
/// none, or when a case's expectation cannot be derived from its text.
pub fn corrupt_manifests() -> Vec<CorruptManifest> {
    let mut out = Vec::new();
    for version_dir in baileys_versions() {
        let dir = version_dir.join("corrupt");
        let path = dir.join("manifest.json");
        if !path.is_file() {
            continue;
        }
        let version = version_dir
            .file_name()
            .expect("dir")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let manifest: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()));
        let cases = manifest["cases"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no cases", path.display()))
            .iter()
            .map(|case| corrupt_case(&version, &dir, case))
            .collect();
        out.push(CorruptManifest {
            base_files: strings(&manifest["base_files"], "base_files", &path),
            creds_registration_id: manifest["creds_registration_id"].as_u64(),
            version,
            cases,
        });
    }
    assert!(
        !out.is_empty(),
        "no corrupt/manifest.json under {}",
        fixtures_dir().display()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_fixture_folders() {
        let folders = baileys_auth_folders();
        assert!(
            folders
                .iter()
                .any(|(name, _)| name.ends_with("paired-with-sessions"))
        );
        assert!(!corrupt_cases().is_empty());
    }

    #[test]
    fn every_corrupt_case_has_an_expectation_and_its_folder() {
        for manifest in corrupt_manifests() {
            assert!(!manifest.base_files.is_empty(), "{}", manifest.version);
            for case in &manifest.cases {
                assert!(case.auth.is_dir(), "{}: no auth folder", case.label);
                assert!(!case.changed.is_empty(), "{}: nothing changed", case.label);
            }
        }
    }

    #[test]
    fn reader_behaviours_are_read_from_the_manifest_text() {
        use ReaderBehaviour::*;
        for (text, expected) in [
            (
                "Fail loudly with an error naming creds.json.",
                Some(NamedError),
            ),
            (
                "Report an error naming x.json (or skip it with a warning in a lenient mode).",
                Some(NamedErrorOrSkipped),
            ),
            (
                "Accept it: decode to the same bytes. Not an error.",
                Some(Accepted),
            ),
            (
                "Ignore them (optionally warn), never delete them.",
                Some(Ignored),
            ),
            (
                "Report them as unrecognised (warning) and leave them.",
                Some(Ignored),
            ),
            ("Do something new.", None),
        ] {
            assert_eq!(ReaderBehaviour::from_text(text), expected, "{text}");
        }
    }
}
