//! `cargo xtask node-test`: the proofs of the Node package (`crates/wa-node`) with the real
//! Baileys from npm.
//!
//! 1. Builds the package (`node-package`, debug profile unless `--release`) and installs the
//!    tarball with `npm install --ignore-scripts` into `.interop-cache/node-test/`.
//! 2. Installs Baileys 6.17.16, 7.0.0-rc.9 and the newest 7.x on npm (`npm view`) into
//!    `.interop-cache/v<version>/` like `cargo xtask interop` (`--offline`: only what is cached).
//! 3. Starts a throwaway PostgreSQL cluster (wa-testkit) for the PostgreSQL stores.
//! 4. Runs the proof scripts of `xtask/node/`:
//!    - `fixtures.mjs`, for every fixture account folder under `$WA_FIXTURES/baileys` (default
//!      `fixtures/`), every installed Baileys of the folder's major version, and every store:
//!      the folder migrated into native, kept as a Baileys folder, migrated into PostgreSQL;
//!    - `fresh.mjs` (fresh account, bad input) for every Baileys version and store;
//!    - `crash.mjs`: `--kills` SIGKILLs (default 200) per store, native and Baileys folder;
//!    - `postgres.mjs`: ownership, takeover and fencing across processes, and connecting as
//!      libpq does (`sslmode`, the `PG*` variables);
//!    - `types-check.ts`, type-checked with `tsc --strict` against every installed Baileys:
//!      the package's declarations fit Baileys' types and still reject misuse.
//!
//! Prints one line per run (the whole output of a run that fails) and ends with
//! `node-test: N passed, M failed`. `--keep` leaves the work folder in place.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use wa_migrate::{Location, MigrateOptions, Role};
use wa_testkit::postgres::Cluster;

use crate::interop::{copy_dir, ensure_baileys, read_json, tool_version};
use crate::node_package;

/// Baileys versions always tested; the newest 7.x on npm is added at run time.
const PINNED: [&str; 2] = ["6.17.16", "7.0.0-rc.9"];

struct Options {
    release: bool,
    offline: bool,
    keep: bool,
    kills: u32,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        release: false,
        offline: false,
        keep: false,
        kills: 200,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--release" => options.release = true,
            "--offline" => options.offline = true,
            "--keep" => options.keep = true,
            "--kills" => {
                options.kills = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--kills needs a number")?;
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (accepted: --release, --offline, --keep, --kills N)"
                ));
            }
        }
    }
    Ok(options)
}

/// Semantic-version precedence (major.minor.patch, then pre-release identifiers).
pub(crate) fn semver_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(v: &str) -> (Vec<u64>, Option<Vec<String>>) {
        let (core, pre) = match v.split_once('-') {
            Some((core, pre)) => (core, Some(pre.split('.').map(str::to_owned).collect())),
            None => (v, None),
        };
        (
            core.split('.').map(|n| n.parse().unwrap_or(0)).collect(),
            pre,
        )
    }
    let ((core_a, pre_a), (core_b, pre_b)) = (parts(a), parts(b));
    core_a.cmp(&core_b).then_with(|| match (pre_a, pre_b) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) => {
            for (p, q) in x.iter().zip(&y) {
                let order = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => std::cmp::Ordering::Less,
                    (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
                    (Err(_), Err(_)) => p.cmp(q),
                };
                if order.is_ne() {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
    })
}

/// The newest 7.x on npm (or, offline, in the cache).
fn newest_seven(cache: &Path, offline: bool) -> Result<String, String> {
    let candidates: Vec<String> = if offline {
        std::fs::read_dir(cache)
            .map_err(|e| format!("{}: {e}", cache.display()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_prefix('v').map(str::to_owned))
            .collect()
    } else {
        let out = Command::new("npm")
            .args(["view", "baileys", "versions", "--json"])
            .output()
            .map_err(|e| format!("cannot run npm view: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm view baileys versions failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_slice::<Vec<String>>(&out.stdout)
            .map_err(|e| format!("npm view answered something else: {e}"))?
    };
    candidates
        .into_iter()
        .filter(|v| v.starts_with("7."))
        .max_by(|a, b| semver_cmp(a, b))
        .ok_or_else(|| "no Baileys 7.x found".into())
}

/// Installs the package tarball into `<cache>/node-test`; returns the installed package.
fn install_package(cache: &Path, tarball: &Path) -> Result<PathBuf, String> {
    let project = cache.join("node-test");
    std::fs::create_dir_all(&project).map_err(|e| format!("{}: {e}", project.display()))?;
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"wa-node-test","private":true}"#,
    )
    .map_err(|e| e.to_string())?;
    let out = Command::new("npm")
        .args([
            "install",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--no-save",
        ])
        .arg(tarball)
        .current_dir(&project)
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "npm install {} failed:\n{}",
            tarball.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(project.join("node_modules/wa-auth-node"))
}

/// Everything a run needs to find.
struct Env {
    root: PathBuf,
    work: PathBuf,
    package: PathBuf,
    baileys: Vec<(String, PathBuf)>,
    cluster: Cluster,
    runs: u32,
    results: Vec<(String, bool)>,
}

impl Env {
    fn pg_url(&self, instance: &str) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/postgres?instance={instance}",
            self.cluster.port()
        )
    }

    /// A fresh folder for one run.
    fn run_dir(&mut self, name: &str) -> Result<PathBuf, String> {
        self.runs += 1;
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let dir = self.work.join(format!("{:03}-{safe}", self.runs));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// Runs `script` with `config`; records and prints the result.
    fn node(&mut self, label: &str, script: &str, config: Value, dir: &Path) -> Result<(), String> {
        let config_path = dir.join("config.json");
        std::fs::write(&config_path, config.to_string()).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let out = Command::new("node")
            .arg(self.root.join("xtask/node").join(script))
            .arg(&config_path)
            .output()
            .map_err(|e| format!("cannot run node: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let passed = out.status.success();
        // The scripts end with "<label>: <summary>"; the crash test's lines per store are
        // worth printing whole.
        let summary = if script == "crash.mjs" {
            format!("\n{}", stdout.trim_end())
        } else {
            let last = stdout.lines().last().unwrap_or("(no output)");
            last.strip_prefix(label)
                .map_or(last, |rest| rest.trim_start_matches(": "))
                .to_owned()
        };
        if passed {
            println!(
                "  ok   {label}: {summary} ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        } else {
            println!(
                "  FAIL {label} ({}):\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.results.push((label.to_owned(), passed));
        Ok(())
    }

    fn store_config(&self, kind: &str, dir: &Path, instance: &str) -> Value {
        match kind {
            "postgres" => {
                json!({"kind": kind, "connectionString": self.cluster.connection_string(),
                                 "instanceId": instance})
            }
            _ => json!({"kind": kind, "dir": dir}),
        }
    }
}

/// Copies or migrates the fixture folder `auth` into a store of `kind`; returns its config.
fn prepare_store(
    env: &Env,
    kind: &str,
    auth: &Path,
    dir: &Path,
    instance: &str,
) -> Result<Value, String> {
    let target = match kind {
        "folder" => {
            copy_dir(auth, &dir.join("auth"))?;
            return Ok(env.store_config(kind, &dir.join("auth"), instance));
        }
        "native" => dir.join("native").display().to_string(),
        _ => env.pg_url(instance),
    };
    let from = Location::resolve(&auth.display().to_string(), None, Role::Source)
        .map_err(|e| e.to_string())?;
    let to = Location::resolve(&target, None, Role::Target).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime
        .block_on(wa_migrate::migrate_between(
            &from,
            &to,
            &MigrateOptions::default(),
        ))
        .map_err(|e| format!("migrating {} into {kind}: {e}", auth.display()))?;
    Ok(env.store_config(kind, &dir.join("native"), instance))
}

const STORES: [&str; 3] = ["native", "folder", "postgres"];

/// Proof 1: every fixture account folder, every matching Baileys, every store.
fn fixture_runs(env: &mut Env) -> Result<(), String> {
    for (name, auth) in wa_testkit::fixtures::baileys_auth_folders() {
        let major = name
            .trim_start_matches('v')
            .split('.')
            .next()
            .unwrap_or("")
            .to_owned();
        let scenario = auth
            .parent()
            .ok_or("fixture folder without parent")?
            .to_path_buf();
        let vectors = scenario.join("expected/vectors.json");
        let has_messages = read_json(&vectors)
            .map(|v| v["messages"].as_array().is_some_and(|m| !m.is_empty()))
            .unwrap_or(false);
        let peers = scenario.join("peers/index.json");
        let baileys: Vec<(String, PathBuf)> = env
            .baileys
            .iter()
            .filter(|(v, _)| v.split('.').next() == Some(major.as_str()))
            .cloned()
            .collect();
        for (version, dir) in baileys {
            for kind in STORES {
                let label = format!("{name} under Baileys {version}, {kind} store");
                let run = env.run_dir(&label)?;
                let instance = format!("fixture-{}", env.runs);
                let store = prepare_store(env, kind, &auth, &run, &instance)?;
                let with_vectors = has_messages && peers.is_file();
                if with_vectors {
                    copy_dir(&scenario.join("peers"), &run.join("scenario/peers"))?;
                }
                let config = json!({
                    "label": label, "baileys_dir": dir, "version": version,
                    "package": env.package, "store": store, "source_auth": auth,
                    "vectors": with_vectors.then_some(&vectors),
                    "peers_index": with_vectors.then_some(&peers),
                    "scenario_copy": run.join("scenario"),
                });
                env.node(&label, "fixtures.mjs", config, &run)?;
            }
        }
    }
    Ok(())
}

/// Proofs 2 and 5: a fresh store of every kind under every Baileys.
fn fresh_runs(env: &mut Env) -> Result<(), String> {
    for (version, dir) in env.baileys.clone() {
        for kind in STORES {
            let label = format!("fresh account and bad input, Baileys {version}, {kind} store");
            let run = env.run_dir(&label)?;
            let instance = format!("fresh-{}", env.runs);
            let config = json!({
                "label": label, "baileys_dir": dir, "version": version, "package": env.package,
                "store": env.store_config(kind, &run.join("store"), &instance),
            });
            env.node(&label, "fresh.mjs", config, &run)?;
        }
    }
    Ok(())
}

/// Proof 5: the package's type declarations fit every installed Baileys' own types.
fn types_runs(env: &mut Env, typescript: &Path) -> Result<(), String> {
    for (version, dir) in env.baileys.clone() {
        let label = format!("TypeScript: the declarations fit Baileys {version}");
        let run = env.run_dir(&label)?;
        let started = Instant::now();
        let (passed, printed) =
            crate::node_types::check(&env.root, typescript, &env.package, &dir, &run)?;
        if passed {
            println!(
                "  ok   {label}: tsc --strict, no errors ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        } else {
            println!("  FAIL {label}:\n{printed}");
        }
        env.results.push((label, passed));
    }
    Ok(())
}

/// Proof 3: the kill loop, with the newest Baileys.
fn crash_run(env: &mut Env, kills: u32) -> Result<(), String> {
    let (version, dir) = env.baileys.last().cloned().ok_or("no Baileys")?;
    let label = format!("crash: {kills} SIGKILLs per store, Baileys {version}");
    let run = env.run_dir("crash")?;
    let config = json!({
        "label": label, "baileys_dir": dir, "version": version, "package": env.package,
        "kills": kills, "seed": wa_testkit::crash::seed(0x5eed_0015), "pool": 3,
        "stores": [
            {"kind": "native", "dir": run.join("native"), "max_delay_ms": 120},
            {"kind": "folder", "dir": run.join("folder"), "max_delay_ms": 400},
        ],
    });
    env.node(&label, "crash.mjs", config, &run)
}

/// Proof 4: ownership across processes.
fn postgres_run(env: &mut Env) -> Result<(), String> {
    let run = env.run_dir("postgres")?;
    let config = json!({
        "package": env.package,
        "connection_string": env.cluster.connection_string(),
        "instance": "ownership",
    });
    env.node(
        "PostgreSQL ownership, takeover and fencing",
        "postgres.mjs",
        config,
        &run,
    )
}

fn start_cluster() -> Result<Cluster, String> {
    std::panic::catch_unwind(Cluster::start).map_err(|e| {
        let message = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        format!("cannot start a throwaway PostgreSQL: {message}")
    })
}

/// What both `node-test` and `bench node` set up.
struct Installed {
    /// The workspace root.
    root: PathBuf,
    /// The installed `wa-auth-node` package folder.
    package: PathBuf,
    /// Each Baileys version and its package folder, oldest first.
    baileys: Vec<(String, PathBuf)>,
}

/// Builds and installs the package, and installs the Baileys versions.
fn prepare(release: bool, offline: bool) -> Result<Installed, String> {
    let (Some(node), Some(npm)) = (tool_version("node"), tool_version("npm")) else {
        return Err("node and npm are needed (Node.js 18 or later)".into());
    };
    println!("node {node}, npm {npm}");
    let root = wa_testkit::fixtures::workspace_root();
    let cache = root.join(".interop-cache");
    let tarball = node_package::build(release)?;
    println!("package: {}", tarball.display());
    let package = install_package(&cache, &tarball)?;
    let mut versions: Vec<String> = PINNED.iter().map(|v| (*v).to_owned()).collect();
    let newest = newest_seven(&cache, offline)?;
    if !versions.contains(&newest) {
        versions.push(newest);
    }
    let mut baileys = Vec::new();
    for version in versions {
        let dir = ensure_baileys(&cache, &version, offline)?;
        baileys.push((version, dir));
    }
    Ok(Installed {
        root,
        package,
        baileys,
    })
}

/// `cargo xtask bench node [--offline] [--sessions N]`: Baileys 7 (the newest on npm) over
/// `useMultiFileAuthState` and over the package's stores, side by side (`xtask/node/bench.mjs`),
/// with the release build and a PostgreSQL cluster with fsync on.
pub fn bench(args: &[String]) -> Result<(), String> {
    let offline = args.iter().any(|a| a == "--offline");
    let sessions: u32 = match args.iter().position(|a| a == "--sessions") {
        Some(i) => args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .ok_or("--sessions needs a number")?,
        None => 10_000,
    };
    let Installed {
        root,
        package,
        baileys,
    } = prepare(true, offline)?;
    let (version, dir) = baileys.last().cloned().ok_or("no Baileys")?;
    let cluster = std::panic::catch_unwind(|| {
        Cluster::start_with(wa_testkit::postgres::ClusterOptions {
            fsync: true,
            ..Default::default()
        })
    })
    .map_err(|_| "cannot start a throwaway PostgreSQL".to_owned())?;
    let work = tempfile::Builder::new()
        .prefix("wa-node-bench-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let config = json!({
        "baileys_dir": dir, "version": version, "package": package,
        "connection_string": cluster.connection_string(), "work": work.path(),
        "sessions": sessions, "decrypts": 2000, "transactions": 1000, "runs": 3,
    });
    let config_path = work.path().join("config.json");
    std::fs::write(&config_path, config.to_string()).map_err(|e| e.to_string())?;
    println!("command: cargo xtask bench node (Baileys {version}, release build)");
    let status = Command::new("node")
        .arg(root.join("xtask/node/bench.mjs"))
        .arg(&config_path)
        .status()
        .map_err(|e| format!("cannot run node: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("bench.mjs failed ({status})"))
    }
}

/// Entry point: `cargo xtask node-test [--release] [--offline] [--keep] [--kills N]`.
pub fn main(args: &[String]) -> Result<(), String> {
    let options = parse_args(args)?;
    let started = Instant::now();
    let Installed {
        root,
        package,
        baileys,
    } = prepare(options.release, options.offline)?;
    let cluster = start_cluster()?;
    let work = tempfile::Builder::new()
        .prefix("wa-node-test-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let mut env = Env {
        root,
        work: work.path().to_path_buf(),
        package,
        baileys,
        cluster,
        runs: 0,
        results: Vec::new(),
    };
    println!("\n== fixture accounts under Baileys, in every store");
    fixture_runs(&mut env)?;
    println!("\n== fresh accounts and bad input");
    fresh_runs(&mut env)?;
    println!("\n== PostgreSQL ownership");
    postgres_run(&mut env)?;
    println!("\n== TypeScript declarations");
    let typescript =
        crate::node_types::ensure_typescript(&env.root.join(".interop-cache"), options.offline)?;
    types_runs(&mut env, &typescript)?;
    println!("\n== crash test");
    crash_run(&mut env, options.kills)?;
    if options.keep {
        println!("kept {}", work.keep().display());
    }
    let failed: Vec<&String> = env
        .results
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(l, _)| l)
        .collect();
    let passed = env.results.len() - failed.len();
    println!(
        "\nnode-test took {:.0} s\nnode-test: {passed} passed, {} failed",
        started.elapsed().as_secs_f64(),
        failed.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "failed:\n  {}",
            failed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::semver_cmp;

    #[test]
    fn newest_release_candidate_wins_whatever_its_spelling() {
        let mut versions = [
            "7.0.0-rc.9",
            "7.0.0-rc10",
            "7.0.0-rc.3",
            "7.0.0-rc14",
            "7.0.0-rc13",
        ];
        versions.sort_by(|a, b| semver_cmp(a, b));
        assert_eq!(versions.last(), Some(&"7.0.0-rc14"));
        assert!(semver_cmp("7.0.0", "7.0.0-rc14").is_gt());
        assert!(semver_cmp("7.1.0-beta.1", "7.0.5").is_gt());
        assert!(semver_cmp("7.0.0-rc.10", "7.0.0-rc.9").is_gt());
    }
}
