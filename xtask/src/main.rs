//! `cargo xtask`: the project command line. Each subcommand lives in its own module and takes
//! the arguments after its name.

use std::process::ExitCode;

mod bench;
mod interop;
mod node_package;
mod node_test;
mod state;

/// A subcommand: its name, a one-line summary, and its entry point.
type Command = (
    &'static str,
    &'static str,
    fn(&[String]) -> Result<(), String>,
);

const COMMANDS: &[Command] = &[
    (
        "migrate",
        "copy auth state between backends (staged, verified, atomic); --help for options",
        state::migrate,
    ),
    (
        "inspect",
        "show what an auth folder or account holds (public keys only)",
        state::inspect,
    ),
    (
        "verify",
        "check stored auth state for consistency; non-zero exit on problems",
        state::verify,
    ),
    (
        "bench",
        "run the criterion benchmarks (all, or one target)",
        bench::main,
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

fn usage() -> String {
    let mut text = String::from("usage: cargo xtask <command> [args]\n\ncommands:\n");
    for (name, summary, _) in COMMANDS {
        text.push_str(&format!("  {name:<13} {summary}\n"));
    }
    text
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        eprint!("{}", usage());
        return ExitCode::from(2);
    };
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
