//! The TypeScript proof of `cargo xtask node-test`: `xtask/node/types-check.ts` is
//! type-checked (`tsc --noEmit`, strict) against the installed package's `index.d.ts` and each
//! installed Baileys' own declarations, so the documented one-line switch compiles in a
//! TypeScript project and misuse is still rejected.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::interop::{npm_install, read_json};

/// The TypeScript compiler the check runs (pinned: a new release must not fail CI by itself).
const TYPESCRIPT: &str = "5.9.3";
/// Node's type declarations for Node 20 (the `Buffer` in Baileys' types), pinned like
/// TypeScript so that a new release of either cannot change the check's outcome.
const TYPES_NODE: &str = "20.19.43";

/// Installs TypeScript and Node's types into `<cache>/node-types` unless they are there;
/// returns that folder.
pub(crate) fn ensure_typescript(cache: &Path, offline: bool) -> Result<PathBuf, String> {
    let dir = cache.join("node-types");
    let installed = |package: &str| {
        read_json(&dir.join("node_modules").join(package).join("package.json"))
            .ok()
            .and_then(|p| p["version"].as_str().map(str::to_owned))
    };
    if installed("typescript").as_deref() == Some(TYPESCRIPT)
        && installed("@types/node").as_deref() == Some(TYPES_NODE)
    {
        return Ok(dir);
    }
    if offline {
        return Err(format!(
            "typescript {TYPESCRIPT} and @types/node {TYPES_NODE} are not installed in {} (run without --offline)",
            dir.display()
        ));
    }
    let manifest = json!({
        "name": "wa-node-types", "private": true,
        "dependencies": {"typescript": TYPESCRIPT, "@types/node": TYPES_NODE},
    });
    npm_install(&dir, &manifest, &format!("typescript {TYPESCRIPT}"))?;
    Ok(dir)
}

/// Type-checks the proof in `run` (a fresh folder) against `package` and the Baileys in
/// `baileys`; returns whether it passed and what tsc printed.
pub(crate) fn check(
    root: &Path,
    typescript: &Path,
    package: &Path,
    baileys: &Path,
    run: &Path,
) -> Result<(bool, String), String> {
    let modules = run.join("node_modules");
    std::fs::create_dir_all(modules.join("@types")).map_err(|e| e.to_string())?;
    // Links, not copies: tsc follows them to the real folders, where each package's own
    // dependencies are installed.
    link(baileys, &modules.join("baileys"))?;
    link(package, &modules.join("wa-auth-node"))?;
    link(
        &typescript.join("node_modules/@types/node"),
        &modules.join("@types/node"),
    )?;
    std::fs::copy(
        root.join("xtask/node/types-check.ts"),
        run.join("types-check.ts"),
    )
    .map_err(|e| format!("copy types-check.ts: {e}"))?;
    let config = json!({
        "compilerOptions": {
            "strict": true, "noEmit": true, "skipLibCheck": true, "target": "es2022",
            "module": "esnext", "moduleResolution": "bundler", "types": ["node"],
        },
        "files": ["types-check.ts"],
    });
    std::fs::write(run.join("tsconfig.json"), config.to_string()).map_err(|e| e.to_string())?;
    let out = Command::new("node")
        .arg(typescript.join("node_modules/typescript/bin/tsc"))
        .args(["-p", "tsconfig.json"])
        .current_dir(run)
        .output()
        .map_err(|e| format!("cannot run tsc: {e}"))?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), printed))
}

fn link(target: &Path, link: &Path) -> Result<(), String> {
    std::os::unix::fs::symlink(target, link)
        .map_err(|e| format!("link {} -> {}: {e}", link.display(), target.display()))
}
