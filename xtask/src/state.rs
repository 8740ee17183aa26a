//! `cargo xtask migrate|inspect|verify`: the commands users run on their auth state. Thin
//! wrappers over `wa-migrate`; errors are one line (what, where, what to do).

use std::sync::Arc;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use wa_migrate::{Format, Location, MigrateOptions, Progress, Role, Stage};
use wa_store_compat::Flavour;

/// Folders with fewer keys than this finish before a bar would be useful.
const PROGRESS_MIN_KEYS: u64 = 2_000;

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn parse<T: Parser>(name: &str, args: &[String]) -> Result<T, String> {
    T::try_parse_from(std::iter::once(format!("xtask {name}")).chain(args.iter().cloned())).map_err(
        |e| {
            // Help and version are not errors.
            if !e.use_stderr() {
                let _ = e.print();
                std::process::exit(0);
            }
            e.to_string().trim_end().to_owned()
        },
    )
}

fn flavour(name: &str) -> Result<Flavour, String> {
    Flavour::from_name(name)
        .ok_or_else(|| format!("unknown flavour {name:?}: expected baileys6 or baileys7"))
}

/// Copy auth state between backends: staged, verified, published atomically.
#[derive(Parser, Debug)]
struct MigrateArgs {
    /// The source: a folder, or postgres://user@host/db?instance=ACCOUNT[&schema=SCHEMA].
    #[arg(long)]
    from: String,
    /// The destination: a folder (created; a new one becomes a native store unless
    /// --to-format says otherwise) or a postgres:// URL.
    #[arg(long)]
    to: String,
    /// The source's format (compat, native, postgres); detected when not given.
    #[arg(long, value_parser = Format::from_str_arg)]
    from_format: Option<Format>,
    /// The destination's format; detected when not given.
    #[arg(long, value_parser = Format::from_str_arg)]
    to_format: Option<Format>,
    /// The Baileys flavour to write to a compat destination (baileys6, baileys7); default:
    /// the source's own, else decided from the state.
    #[arg(long, value_parser = flavour)]
    compat_flavour: Option<Flavour>,
    /// Check and report, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace a destination that holds auth state (kept as a backup until the new state is
    /// verified and in place).
    #[arg(long)]
    overwrite: bool,
    /// Skip unreadable keys (listed in the summary) instead of stopping at the first.
    #[arg(long)]
    lenient: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

trait FromStrArg: Sized {
    fn from_str_arg(text: &str) -> Result<Self, String>;
}

impl FromStrArg for Format {
    fn from_str_arg(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|e: wa_migrate::MigrateError| e.to_string())
    }
}

/// A progress bar on stderr, shown only for large migrations and only on a terminal.
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} keys ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Self { bar }
    }
}

impl Progress for Bar {
    fn stage(&self, stage: Stage, total: u64) {
        if total >= PROGRESS_MIN_KEYS && self.bar.is_hidden() {
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        self.bar.set_message(stage.to_string());
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    fn advance(&self, done: u64) {
        self.bar.inc(done);
    }
}

/// `cargo xtask migrate`.
pub fn migrate(args: &[String]) -> Result<(), String> {
    let args: MigrateArgs = parse("migrate", args)?;
    let from =
        Location::resolve(&args.from, args.from_format, Role::Source).map_err(|e| e.to_string())?;
    let to =
        Location::resolve(&args.to, args.to_format, Role::Target).map_err(|e| e.to_string())?;
    let bar = Arc::new(Bar::new());
    let mut options = MigrateOptions::default()
        .overwrite(args.overwrite)
        .lenient(args.lenient)
        .dry_run(args.dry_run)
        .progress(bar.clone());
    if let Some(flavour) = args.compat_flavour {
        options = options.compat_flavour(flavour);
    }
    let result = runtime()?.block_on(wa_migrate::migrate_between(&from, &to, &options));
    bar.bar.finish_and_clear();
    let summary = result.map_err(|e| match e.hint() {
        Some(hint) => format!("{e}; {}", cli_hint(hint)),
        None => e.to_string(),
    })?;
    if args.json {
        println!("{}", summary.to_json());
    } else {
        print!("{summary}");
    }
    Ok(())
}

/// Show what a folder or account holds (public keys only).
#[derive(Parser, Debug)]
struct InspectArgs {
    /// A folder or a postgres:// URL.
    location: String,
    /// Its format (compat, native, postgres); detected when not given.
    #[arg(long, value_parser = Format::from_str_arg)]
    format: Option<Format>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `cargo xtask inspect`.
pub fn inspect(args: &[String]) -> Result<(), String> {
    let args: InspectArgs = parse("inspect", args)?;
    let location =
        Location::resolve(&args.location, args.format, Role::Source).map_err(|e| e.to_string())?;
    let inspection = runtime()?
        .block_on(wa_migrate::inspect(&location))
        .map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", inspection.to_json());
    } else {
        print!("{inspection}");
    }
    Ok(())
}

/// `cargo xtask verify`: exits non-zero when problems are found.
pub fn verify(args: &[String]) -> Result<(), String> {
    let args: InspectArgs = parse("verify", args)?;
    let location =
        Location::resolve(&args.location, args.format, Role::Source).map_err(|e| e.to_string())?;
    let report = runtime()?
        .block_on(wa_migrate::verify(&location))
        .map_err(|e| e.to_string())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{report}");
    }
    if report.is_ok() {
        Ok(())
    } else {
        Err(format!(
            "{} problem(s) found in {location}",
            report.problems.len()
        ))
    }
}

/// A migration error's hint in this tool's terms: its flags.
fn cli_hint(hint: wa_migrate::Hint) -> String {
    use wa_migrate::Hint;
    match hint {
        Hint::RestoreCreds => "unreadable creds are never skipped: restore creds.json from a backup (the keys alone cannot log in)".into(),
        Hint::SkipUnreadableKeys => "pass --lenient to skip unreadable keys, which the summary then lists".into(),
        Hint::CopyKeysAlone => "pass --lenient to copy the keys alone".into(),
        Hint::Overwrite => "pass --overwrite to replace it (the old state is kept as a backup until the new one is verified)".into(),
        other => other.to_string(),
    }
}
