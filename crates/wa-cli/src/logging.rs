//! Logs on stderr: warnings by default, `-v`/`-q` to change, `RUST_LOG` to override.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber (once; later calls are no-ops, as `cargo xtask` may run several).
pub fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose > 1)
        .try_init();
}
