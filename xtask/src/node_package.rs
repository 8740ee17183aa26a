//! `cargo xtask node-package [--debug]`: builds the `wa-node` addon with cargo (release unless
//! `--debug`) and packs the npm package (`crates/wa-node/package/` + the addon as
//! `wa_node.node`) into a tarball under `target/node-package/`, whose path is the last line
//! printed. `npm install <tarball>` (scripts may be disabled) then works in any Node 18+ project
//! on this platform: nothing is downloaded or built at install time.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The npm names of this platform (`process.platform`, `process.arch`), where they differ
/// from Rust's.
fn npm_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "ia32",
        other => other,
    };
    (std::env::consts::OS, arch)
}

fn run(command: &mut Command, what: &str) -> Result<String, String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Builds the addon; returns the built library.
fn build_addon(root: &Path, release: bool) -> Result<PathBuf, String> {
    let profile = if release { "release" } else { "debug" };
    println!("node-package: cargo build -p wa-node ({profile}) ...");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.args(["build", "-p", "wa-node"]).current_dir(root);
    if release {
        cargo.arg("--release");
    }
    let status = cargo
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build -p wa-node failed ({status})"));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let name = format!(
        "{}wa_node{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let lib = target.join(profile).join(name);
    if lib.is_file() {
        Ok(lib)
    } else {
        Err(format!("the build left no {}", lib.display()))
    }
}

/// Copies the package folder and the addon into a clean staging folder, with this
/// platform's `os` and `cpu` in package.json.
fn stage(root: &Path, addon: &Path, staging: &Path, release: bool) -> Result<(), String> {
    let source = root.join("crates/wa-node/package");
    if staging.exists() {
        std::fs::remove_dir_all(staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    }
    std::fs::create_dir_all(staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    let manifest_path = source.join("package.json");
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let mut manifest: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let files: Vec<String> = manifest["files"]
        .as_array()
        .ok_or("package.json has no files list")?
        .iter()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect();
    for file in files.iter().filter(|f| *f != "wa_node.node") {
        std::fs::copy(source.join(file), staging.join(file))
            .map_err(|e| format!("copy {file}: {e}"))?;
    }
    let staged = staging.join("wa_node.node");
    std::fs::copy(addon, &staged).map_err(|e| format!("copy addon: {e}"))?;
    // A debug build carries ~100 MB of debug info that only slows loading and packing.
    if !release {
        let stripped = Command::new("strip")
            .arg("--strip-debug")
            .arg(&staged)
            .status();
        if !matches!(stripped, Ok(status) if status.success()) {
            println!("node-package: strip not available, the addon keeps its debug info");
        }
    }
    let (os, cpu) = npm_platform();
    manifest["os"] = serde_json::json!([os]);
    manifest["cpu"] = serde_json::json!([cpu]);
    let pretty = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    std::fs::write(staging.join("package.json"), pretty + "\n")
        .map_err(|e| format!("write package.json: {e}"))
}

/// Builds and packs; returns the tarball.
pub fn build(release: bool) -> Result<PathBuf, String> {
    let root = wa_testkit::fixtures::workspace_root();
    let addon = build_addon(&root, release)?;
    let out_dir = root.join("target/node-package");
    let staging = out_dir.join("staging");
    stage(&root, &addon, &staging, release)?;
    println!("node-package: npm pack ...");
    let stdout = run(
        Command::new("npm")
            .args(["pack", "--silent", "--pack-destination"])
            .arg(&out_dir)
            .current_dir(&staging),
        "npm pack",
    )?;
    let name = stdout
        .lines()
        .rfind(|l| l.trim().ends_with(".tgz"))
        .ok_or_else(|| format!("npm pack printed no tarball name: {stdout}"))?
        .trim()
        .to_owned();
    Ok(out_dir.join(name))
}

/// Entry point: `cargo xtask node-package [--debug]`.
pub fn main(args: &[String]) -> Result<(), String> {
    let debug = args.iter().any(|a| a == "--debug");
    if let Some(other) = args.iter().find(|a| *a != "--debug") {
        return Err(format!("unknown argument {other:?} (accepted: --debug)"));
    }
    let tarball = build(!debug)?;
    println!("{}", tarball.display());
    Ok(())
}
