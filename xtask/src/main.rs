//! `cargo xtask`: developer tasks (bench, interop, packaging). The user-facing commands
//! (`migrate`, `inspect`, `verify`, `backup`, `restore`, `accounts`, `delete-account`,
//! `release-lease`) are those of `wa-auth-state` (crate `wa-cli`): `cargo xtask migrate ...`
//! runs the same code as `wa-auth-state migrate ...`.

use std::process::ExitCode;

mod bench;
mod bench_folder;
mod interop;
mod node_package;
mod node_test;
mod node_types;

/// A subcommand: its name, a one-line summary, and its entry point.
type Command = (
    &'static str,
    &'static str,
    fn(&[String]) -> Result<(), String>,
);

const COMMANDS: &[Command] = &[
    (
        "bench",
        "run the criterion benchmarks (all, or one target)",
        bench::main,
    ),
    (
        "bench-folder",
        "write the synthetic 10k-session Baileys folder of the migrate benchmark (for timing the CLI)",
        bench_folder::main,
    ),
    (
        "interop",
        "check that real Baileys 6 and 7 (from npm) read what wa-store-compat writes",
        interop::main,
    ),
    (
        "node-package",
        "build the Node addon (release) and pack the npm tarball; prints its path last",
        node_package::main,
    ),
    (
        "node-test",
        "prove the Node package under real Baileys 6 and 7 (fixtures, fresh, crash, PostgreSQL)",
        node_test::main,
    ),
];

/// The commands of `wa-auth-state`, which `cargo xtask` passes on to it.
const CLI_COMMANDS: &[&str] = &[
    "migrate",
    "inspect",
    "verify",
    "backup",
    "restore",
    "accounts",
    "delete-account",
    "release-lease",
];

fn usage() -> String {
    let mut text = String::from("usage: cargo xtask <command> [args]\n\ncommands:\n");
    for (name, summary, _) in COMMANDS {
        text.push_str(&format!("  {name:<13} {summary}\n"));
    }
    text.push_str(&format!(
        "\nand the commands of wa-auth-state (cargo xtask <command> --help): {}\n",
        CLI_COMMANDS.join(", ")
    ));
    text
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        eprint!("{}", usage());
        return ExitCode::from(2);
    };
    if CLI_COMMANDS.contains(&name.as_str()) {
        return wa_cli::run(std::iter::once("wa-auth-state".to_owned()).chain(args));
    }
    match COMMANDS.iter().find(|(n, _, _)| n == name) {
        Some((_, _, run)) => match run(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("xtask {name}: {message}");
                ExitCode::FAILURE
            }
        },
        None => {
            eprint!("unknown command {name:?}\n\n{}", usage());
            ExitCode::from(2)
        }
    }
}
