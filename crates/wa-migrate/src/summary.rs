//! [`Summary`]: what a migration did, for people (a table) and for programs (JSON).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// One side of a migration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Endpoint {
    /// `compat`, `native`, `postgres`, or the backend name of a custom store.
    pub backend: String,
    /// The folder, or the redacted URL and instance.
    pub location: String,
    /// The Baileys flavour of a compat folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flavour: Option<String>,
}

impl Endpoint {
    /// An endpoint of `backend` at `location`.
    pub fn new(backend: impl Into<String>, location: impl Into<String>) -> Self {
        Self {
            backend: backend.into(),
            location: location.into(),
            flavour: None,
        }
    }

    /// The endpoint of a built-in `location` (a PostgreSQL URL redacted).
    pub(crate) fn at(location: &crate::Location) -> Self {
        Self::new(location.format().as_str(), location.to_string())
    }
}

/// A file or key left out or not understood, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The file name or `kind id`.
    pub what: String,
    /// Why.
    pub reason: String,
}

/// What a migration did (or, for a dry run, would do).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// Where the state came from.
    pub source: Endpoint,
    /// Where it went.
    pub target: Endpoint,
    /// Nothing was written.
    pub dry_run: bool,
    /// The verified state is in place at the target.
    pub published: bool,
    /// The target held auth state that was replaced (`overwrite`).
    pub replaced_existing: bool,
    /// The creds were migrated.
    pub creds_migrated: bool,
    /// Keys migrated per kind.
    pub keys: BTreeMap<String, usize>,
    /// Keys migrated in all.
    pub total_keys: usize,
    /// Unreadable keys or files left out (lenient mode), with reasons.
    pub skipped: Vec<Entry>,
    /// Files in the source that are not auth state (left alone, not migrated).
    pub unrecognised: Vec<Entry>,
    /// Anything else worth knowing.
    pub warnings: Vec<String>,
    /// Bytes of stored state read from the source.
    pub bytes_read: u64,
    /// Bytes of stored state written to the target.
    pub bytes_written: u64,
    /// Wall-clock time, in milliseconds.
    pub duration_ms: u64,
}

impl Summary {
    pub(crate) fn new(source: Endpoint, target: Endpoint, dry_run: bool) -> Self {
        Self {
            source,
            target,
            dry_run,
            published: false,
            replaced_existing: false,
            creds_migrated: false,
            keys: BTreeMap::new(),
            total_keys: 0,
            skipped: Vec::new(),
            unrecognised: Vec::new(),
            warnings: Vec::new(),
            bytes_read: 0,
            bytes_written: 0,
            duration_ms: 0,
        }
    }

    /// The summary as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a summary always serialises")
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / f64::from(1 << 10)),
        n => format!("{n} B"),
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |e: &Endpoint| match &e.flavour {
            Some(flavour) => format!("{} ({}, {flavour})", e.location, e.backend),
            None => format!("{} ({})", e.location, e.backend),
        };
        let outcome = match (self.dry_run, self.published) {
            (true, _) => "dry run: nothing written",
            (false, true) if self.replaced_existing => "published (replaced the old state)",
            (false, true) => "published",
            (false, false) => "not published",
        };
        writeln!(f, "{:<14} {}", "from", side(&self.source))?;
        writeln!(f, "{:<14} {}", "to", side(&self.target))?;
        writeln!(f, "{:<14} {outcome}", "outcome")?;
        writeln!(
            f,
            "{:<14} {}",
            "creds",
            if self.creds_migrated { "yes" } else { "no" }
        )?;
        writeln!(f, "{:<28} {:>8}", "kind", "keys")?;
        for (kind, count) in &self.keys {
            writeln!(f, "  {kind:<26} {count:>8}")?;
        }
        writeln!(f, "  {:<26} {:>8}", "total", self.total_keys)?;
        writeln!(
            f,
            "{:<14} {} read, {} written, {} ms",
            "io",
            bytes(self.bytes_read),
            bytes(self.bytes_written),
            self.duration_ms
        )?;
        for entry in &self.skipped {
            writeln!(f, "skipped        {}: {}", entry.what, entry.reason)?;
        }
        for entry in &self.unrecognised {
            writeln!(f, "not migrated   {}: {}", entry.what, entry.reason)?;
        }
        for warning in &self.warnings {
            writeln!(f, "warning        {warning}")?;
        }
        Ok(())
    }
}
