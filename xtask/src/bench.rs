//! `cargo xtask bench [target]`: runs the criterion benchmarks (all, or one bench target such
//! as `migrate`, `native`, `compat`), optimised; `cargo xtask bench node` runs Baileys over the
//! Node package (see `node_test::bench`). Figures belong in docs/benchmarks.md.

use std::process::Command;

/// Bench targets and their packages.
const BENCHES: &[(&str, &str)] = &[
    ("node_codec", "wa-proto"),
    ("xeddsa", "wa-signal"),
    ("session", "wa-signal"),
    ("group", "wa-signal"),
    ("records", "wa-signal"),
    ("noise", "wa-signal"),
    ("native", "wa-store-native"),
    ("compat", "wa-store-compat"),
    ("commit_latency", "wa-store-postgres"),
    ("flush_throughput", "wa-store-postgres"),
    ("cold_load", "wa-store-postgres"),
    ("fleet_load", "wa-store-postgres"),
    ("migrate", "wa-migrate"),
];

/// `cargo xtask bench`.
pub fn main(args: &[String]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.arg("bench");
    let target = args.first().map(String::as_str).filter(|a| *a != "--");
    match target {
        None => {
            command.args(["--workspace", "--all-features"]);
        }
        Some("--help" | "-h") => {
            let names: Vec<&str> = BENCHES.iter().map(|(name, _)| *name).collect();
            println!(
                "usage: cargo xtask bench [target] [-- criterion args]\ntargets: {}, node \
                 (Baileys over the Node package: cargo xtask bench node [--offline])",
                names.join(", ")
            );
            return Ok(());
        }
        Some("node") => return crate::node_test::bench(&args[1..]),
        Some(name) => {
            let (_, package) = BENCHES
                .iter()
                .find(|(bench, _)| bench == &name)
                .ok_or_else(|| format!("unknown bench target {name:?} (see --help)"))?;
            command.args(["-p", package, "--all-features", "--bench", name]);
        }
    }
    if let Some(rest) = args.iter().position(|a| a == "--") {
        command.args(&args[rest..]);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo bench failed ({status})"))
    }
}
