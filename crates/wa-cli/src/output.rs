//! Printing results and failures: human text, or one compact JSON document.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::exit;

/// What a command produced.
pub struct Report {
    /// For `--json`: the `result` member.
    pub json: Value,
    /// For people.
    pub human: String,
    /// The command found problems (exit status 1).
    pub problems: bool,
}

impl Report {
    /// A report of `value`, shown to people as `human`.
    pub fn new(value: impl serde::Serialize, human: impl Into<String>) -> Self {
        Self {
            json: serde_json::to_value(value).unwrap_or(Value::Null),
            human: human.into(),
            problems: false,
        }
    }
}

/// Why a command could not run.
#[derive(Debug)]
pub struct Failure {
    /// A stable, machine-readable name (`destination_not_empty`, `wrong_key`, ...).
    pub kind: &'static str,
    /// One line: what failed, where.
    pub message: String,
    /// What to do about it, when there is something to say.
    pub hint: Option<String>,
    /// Exit status ([`exit::USAGE`] or [`exit::COULD_NOT_RUN`]).
    pub status: u8,
}

impl Failure {
    /// A failure that stopped the command (exit 3).
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
            status: exit::COULD_NOT_RUN,
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            status: exit::USAGE,
            ..Self::new("usage", message)
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Prints the outcome of `command` and returns the exit status.
pub fn finish(command: &str, outcome: Result<Report, Failure>, json: bool) -> ExitCode {
    match outcome {
        Ok(report) => {
            if json {
                let doc =
                    json!({"ok": !report.problems, "command": command, "result": report.json});
                println!("{doc}");
            } else {
                print!("{}", report.human);
            }
            ExitCode::from(if report.problems {
                exit::PROBLEMS_FOUND
            } else {
                exit::OK
            })
        }
        Err(failure) => {
            if json {
                let doc = json!({
                    "ok": false,
                    "command": command,
                    "error": {"kind": failure.kind, "message": failure.message, "hint": failure.hint},
                });
                println!("{doc}");
            } else {
                eprintln!("wa-auth-state {command}: {}", failure.message);
                if let Some(hint) = &failure.hint {
                    eprintln!("hint: {hint}");
                }
            }
            ExitCode::from(failure.status)
        }
    }
}

/// Prints a clap error (help and version are not errors) and returns its status.
pub fn usage_error(error: clap::Error, json: bool) -> ExitCode {
    if !error.use_stderr() {
        let _ = error.print();
        return ExitCode::from(exit::OK);
    }
    if json {
        let message = error.kind().to_string();
        let detail = error.to_string();
        let first = detail
            .lines()
            .next()
            .unwrap_or(&message)
            .trim_start_matches("error: ");
        let doc = json!({"ok": false, "error": {"kind": "usage", "message": first, "hint": "run with --help for usage"}});
        println!("{doc}");
    } else {
        let _ = error.print();
    }
    ExitCode::from(exit::USAGE)
}
