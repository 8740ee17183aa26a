//! `wa-auth-state`: see the `wa_cli` library docs, or run `wa-auth-state --help`.

fn main() -> std::process::ExitCode {
    wa_cli::run(std::env::args_os())
}
