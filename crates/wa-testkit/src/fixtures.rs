//! Locating fixture data.
//!
//! Every fixture-driven test reads from `$WA_FIXTURES` (default: the repository's `fixtures/`,
//! a copy of the shared, generated fixtures). A relative `$WA_FIXTURES` is taken relative to the
//! workspace root. Tests iterate over what they find and fail when they find nothing.

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
}
