//! `migrate`, `inspect`, `verify`.

use std::sync::Arc;

use wa_migrate::{Location, MigrateOptions, Role};

use crate::cli::{LocationArgs, MigrateArgs};
use crate::hints::migrate_failure;
use crate::output::{Failure, Report};
use crate::progress::Bar;

/// Resolves what the user typed; `flag` names the option that gives the format.
pub fn resolve(
    text: &str,
    format: Option<wa_migrate::Format>,
    role: Role,
    flag: &str,
) -> Result<Location, Failure> {
    Location::resolve(text, format, role).map_err(|e| migrate_failure(e, flag))
}

/// `migrate`.
pub async fn migrate(args: MigrateArgs, json: bool) -> Result<Report, Failure> {
    let from = resolve(&args.from, args.from_format, Role::Source, "--from-format")?;
    let to = resolve(&args.to, args.to_format, Role::Target, "--to-format")?;
    let bar = Arc::new(Bar::new());
    let mut options = MigrateOptions::default()
        .overwrite(args.overwrite)
        .lenient(args.lenient)
        .dry_run(args.dry_run);
    if !json {
        options = options.progress(bar.clone());
    }
    if let Some(flavour) = args.compat_flavour {
        options = options.compat_flavour(flavour);
    }
    let result = wa_migrate::migrate_between(&from, &to, &options).await;
    bar.finish();
    let summary = result.map_err(|e| migrate_failure(e, "--from-format"))?;
    for warning in &summary.warnings {
        tracing::warn!("{warning}");
    }
    Ok(Report::new(&summary, summary.to_string()))
}

/// `inspect`.
pub async fn inspect(args: LocationArgs) -> Result<Report, Failure> {
    let location = resolve(&args.location, args.format, Role::Source, "--format")?;
    let inspection = wa_migrate::inspect(&location)
        .await
        .map_err(|e| migrate_failure(e, "--format"))?;
    Ok(Report::new(&inspection, inspection.to_string()))
}

/// `verify`: problems found make the exit status 1.
pub async fn verify(args: LocationArgs) -> Result<Report, Failure> {
    let location = resolve(&args.location, args.format, Role::Source, "--format")?;
    let report = wa_migrate::verify(&location)
        .await
        .map_err(|e| migrate_failure(e, "--format"))?;
    let mut out = Report::new(&report, report.to_string());
    out.problems = !report.is_ok();
    Ok(out)
}
