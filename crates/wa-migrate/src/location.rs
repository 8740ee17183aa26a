//! Where auth state lives: a Baileys folder, a native store directory or (with the `postgres`
//! feature) a PostgreSQL account. Parsing what a user typed, detecting what a folder holds, and
//! opening the right store for reading or writing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use wa_auth::{AuthError, Persistence};
use wa_store_compat::layout as compat_layout;
use wa_store_compat::{
    CompatReader, CompatStore, CompatStoreOptions, Flavour, FolderReport, ReadMode,
};
use wa_store_native::layout as native_layout;
use wa_store_native::{NativeReader, NativeStore, NativeStoreOptions};

use crate::error::{MigrateError, Result};
pub use crate::redact::redact_connection;

/// A storage format (backend).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Format {
    /// Baileys' JSON multi-file folder (`useMultiFileAuthState`), read and written by
    /// `wa-store-compat`.
    Compat,
    /// The crash-safe binary store of `wa-store-native`.
    Native,
    /// An account in PostgreSQL (`wa-store-postgres`).
    Postgres,
}

impl Format {
    /// The format's name as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Compat => "compat",
            Format::Native => "native",
            Format::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = MigrateError;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "compat" | "baileys" | "json" => Ok(Format::Compat),
            "native" => Ok(Format::Native),
            "postgres" | "postgresql" => Ok(Format::Postgres),
            other => Err(MigrateError::Usage(format!(
                "unknown format {other:?}: expected compat, native or postgres"
            ))),
        }
    }
}

/// A PostgreSQL account: `postgres://user@host:port/db?instance=<account>&schema=<schema>`.
/// `instance` names the account (required); `schema` defaults to `wa_auth`. Every other part
/// of the URL is passed to the driver as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresLocation {
    /// The connection string without the `instance` and `schema` parameters.
    pub connection: String,
    /// The account (instance id).
    pub instance: String,
    /// The schema, when not the default.
    pub schema: Option<String>,
}

impl PostgresLocation {
    /// Parses a `postgres://` or `postgresql://` URL with an `instance` parameter. As the
    /// driver does, the user info runs to the first `@`, so the parameters start at the first
    /// `?` after it.
    pub fn parse(url: &str) -> Result<Self> {
        let credentials_end = url.find('@').map_or(0, |at| at + 1);
        let (base, query) = match url[credentials_end..].find('?') {
            Some(q) => (&url[..credentials_end + q], &url[credentials_end + q + 1..]),
            None => (url, ""),
        };
        let mut instance = None;
        let mut schema = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("instance", value)) => instance = Some(value.to_owned()),
                Some(("schema", value)) => schema = Some(value.to_owned()),
                _ => rest.push(pair),
            }
        }
        let instance = instance.filter(|i| !i.is_empty()).ok_or_else(|| {
            MigrateError::Usage(format!(
                "{}: add ?instance=<account id> to say which account",
                redact_connection(url)
            ))
        })?;
        let connection = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Ok(Self {
            connection,
            instance,
            schema,
        })
    }
}

impl fmt::Debug for PostgresLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLocation")
            .field("connection", &redact_connection(&self.connection))
            .field("instance", &self.instance)
            .field("schema", &self.schema)
            .finish()
    }
}

/// Where auth state lives.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// A Baileys JSON folder.
    Compat(PathBuf),
    /// A native store directory.
    Native(PathBuf),
    /// A PostgreSQL account.
    Postgres(PostgresLocation),
}

/// Whether a location is read from or written to (decides the default for a folder that does
/// not exist yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Read from; must exist.
    Source,
    /// Written to; a new folder becomes a native store unless a format is given.
    Target,
}

impl Location {
    /// Resolves what a user typed: a `postgres://` URL, or a folder whose format is `format`
    /// or, when not given, detected ([`detect`]). A folder that does not exist (or is empty)
    /// has no format to detect: as a target it becomes a native store, as a source it is an
    /// error.
    pub fn resolve(text: &str, format: Option<Format>, role: Role) -> Result<Self> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            if let Some(format) = format.filter(|f| *f != Format::Postgres) {
                return Err(MigrateError::Usage(format!(
                    "{} is a PostgreSQL URL but the format given is {format}",
                    redact_connection(text)
                )));
            }
            return Ok(Location::Postgres(PostgresLocation::parse(text)?));
        }
        if format == Some(Format::Postgres) || crate::redact::is_connection_string(text) {
            // Never a folder named after a connection string (with its password).
            return Err(MigrateError::Usage(format!(
                "{} is not a folder or a postgres:// URL; give a PostgreSQL account as \
                 postgres://user@host/db?instance=<account id>",
                redact_connection(text)
            )));
        }
        let path = PathBuf::from(text);
        let format = match format {
            Some(format) => format,
            None => match (detect(&path)?, role) {
                (Some(format), _) => format,
                (None, Role::Target) => Format::Native,
                (None, Role::Source) => {
                    return Err(MigrateError::Usage(if path.exists() {
                        format!(
                            "cannot tell what {} holds (no creds.json, no native snapshot or log); \
                             give its format (compat or native)",
                            redact_connection(text)
                        )
                    } else {
                        format!("{} does not exist", redact_connection(text))
                    }));
                }
            },
        };
        Ok(match format {
            Format::Compat => Location::Compat(path),
            _ => Location::Native(path),
        })
    }

    /// The format of this location.
    pub fn format(&self) -> Format {
        match self {
            Location::Compat(_) => Format::Compat,
            Location::Native(_) => Format::Native,
            Location::Postgres(_) => Format::Postgres,
        }
    }

    /// The folder, for folder formats.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Location::Compat(path) | Location::Native(path) => Some(path),
            Location::Postgres(_) => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Compat(path) | Location::Native(path) => write!(f, "{}", path.display()),
            Location::Postgres(pg) => {
                write!(
                    f,
                    "{} (instance {})",
                    redact_connection(&pg.connection),
                    pg.instance
                )
            }
        }
    }
}

/// What a folder holds: `Compat` when it has `creds.json` or other `.json` files, `Native`
/// when it has a native `snapshot` or `log`, `None` when it does not exist or is empty of
/// both. A path that is a file is an error.
pub fn detect(path: &Path) -> Result<Option<Format>> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(MigrateError::Usage(format!(
                "{} is a file, not an auth folder",
                path.display()
            )));
        }
        Err(e) => return Err(MigrateError::io(path, e)),
    };
    let mut json = false;
    for entry in entries {
        let entry = entry.map_err(|e| MigrateError::io(path, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        match name.as_ref() {
            n if n == native_layout::SNAPSHOT_FILE || n == native_layout::LOG_FILE => {
                return Ok(Some(Format::Native));
            }
            n if n == compat_layout::CREDS_FILE => return Ok(Some(Format::Compat)),
            other if other.ends_with(".json") && !other.starts_with('.') => json = true,
            _ => {}
        }
    }
    Ok(json.then_some(Format::Compat))
}

/// An open store of one of the built-in backends.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenStore {
    /// A Baileys folder, open for writing (with its lock).
    Compat(CompatStore),
    /// A Baileys folder, read through its read-only view.
    CompatReader(CompatReader),
    /// A native store, open for writing (with its lock).
    Native(NativeStore),
    /// A native store, read through its read-only view.
    NativeReader(NativeReader),
    /// A PostgreSQL account, open for writing (with its lease).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(wa_store_postgres::PostgresStore),
    /// A PostgreSQL account, read as a snapshot (no lease).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    PostgresSnapshot(wa_store_postgres::PostgresReader),
}

impl OpenStore {
    /// The store as a [`Persistence`].
    pub fn persistence(&self) -> &dyn Persistence {
        match self {
            OpenStore::Compat(store) => store,
            OpenStore::CompatReader(reader) => reader,
            OpenStore::Native(store) => store,
            OpenStore::NativeReader(reader) => reader,
            #[cfg(feature = "postgres")]
            OpenStore::Postgres(store) => store,
            #[cfg(feature = "postgres")]
            OpenStore::PostgresSnapshot(reader) => reader,
        }
    }

    /// Flushes, releases the lock or lease, and closes.
    pub async fn close(&self) -> wa_auth::Result<()> {
        self.persistence().close().await
    }

    /// For a Baileys folder: what the store found in it so far (see
    /// [`CompatStore::report`]).
    pub fn folder_report(&self) -> Option<FolderReport> {
        match self {
            OpenStore::Compat(store) => Some(store.report()),
            OpenStore::CompatReader(reader) => Some(reader.report()),
            _ => None,
        }
    }

    /// For a Baileys folder: reads every file and reports every problem (see
    /// [`CompatStore::scan`]).
    pub async fn folder_scan(&self) -> Option<wa_auth::Result<FolderReport>> {
        match self {
            OpenStore::Compat(store) => Some(store.scan().await),
            OpenStore::CompatReader(reader) => Some(reader.scan().await),
            _ => None,
        }
    }
}

/// How [`open`] opens a location.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenMode {
    /// Read-only, never modifying anything (sources, inspection).
    pub read_only: bool,
    /// Create when missing (targets).
    pub create: bool,
    /// Compat: skip unreadable key files instead of failing.
    pub lenient: bool,
    /// Compat: the flavour to write.
    pub flavour: Option<Flavour>,
}

impl OpenMode {
    pub(crate) fn source(lenient: bool) -> Self {
        Self {
            read_only: true,
            create: false,
            lenient,
            flavour: None,
        }
    }

    pub(crate) fn target(flavour: Option<Flavour>) -> Self {
        Self {
            read_only: false,
            create: true,
            lenient: false,
            flavour,
        }
    }
}

/// Opens `location` with `path` in place of its folder (the staging folder, for targets).
pub(crate) async fn open_at(
    location: &Location,
    path: Option<&Path>,
    mode: OpenMode,
) -> wa_auth::Result<OpenStore> {
    match location {
        Location::Compat(dir) => {
            let dir = path.unwrap_or(dir);
            let mut options =
                CompatStoreOptions::default()
                    .create(mode.create)
                    .mode(if mode.lenient {
                        ReadMode::Lenient
                    } else {
                        ReadMode::Strict
                    });
            if let Some(flavour) = mode.flavour {
                options = options.flavour(flavour);
            }
            Ok(if mode.read_only {
                OpenStore::CompatReader(CompatReader::open_with(dir, options).await?)
            } else {
                OpenStore::Compat(CompatStore::open_with(dir, options).await?)
            })
        }
        Location::Native(dir) => {
            let dir = path.unwrap_or(dir);
            Ok(if mode.read_only {
                OpenStore::NativeReader(NativeReader::open(dir).await?)
            } else {
                let options = NativeStoreOptions::default().create(mode.create);
                OpenStore::Native(NativeStore::open_with(dir, options).await?)
            })
        }
        Location::Postgres(pg) => open_postgres(pg, mode).await,
    }
}

#[cfg(feature = "postgres")]
async fn open_postgres(pg: &PostgresLocation, mode: OpenMode) -> wa_auth::Result<OpenStore> {
    use wa_store_postgres::{PostgresReader, PostgresStore, PostgresStoreOptions, SchemaName};
    // libpq's environment, password file and sslmode (TLS through rustls).
    let pool = wa_store_postgres::connect::pool(&pg.connection, 4)?;
    let schema = match &pg.schema {
        Some(name) => SchemaName::new(name)?,
        None => SchemaName::default(),
    };
    if mode.read_only {
        // Sources are read as a snapshot: no lease taken, nothing changed, and a live owner
        // keeps running.
        let reader = PostgresReader::open(&pool, &schema, &pg.instance).await?;
        return Ok(OpenStore::PostgresSnapshot(reader));
    }
    let options = PostgresStoreOptions::new(pg.instance.clone())
        .owner_id(format!("wa-migrate-{}", std::process::id()))
        .schema(schema);
    Ok(OpenStore::Postgres(
        PostgresStore::open(pool, options).await?,
    ))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(pg: &PostgresLocation, _mode: OpenMode) -> wa_auth::Result<OpenStore> {
    Err(AuthError::invalid(
        format!("location {}", redact_connection(&pg.connection)),
        "this build has no PostgreSQL support (enable the `postgres` feature of wa-migrate)",
    ))
}

/// The total size of the regular files directly in `dir` (0 when it does not exist).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Whether `error` is about one stored entry (which lenient mode may skip) rather than the
/// store as a whole.
pub(crate) fn is_entry_error(error: &AuthError) -> bool {
    matches!(error, AuthError::Corrupt { .. } | AuthError::Invalid { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_need_an_instance_and_hide_passwords() {
        let pg = PostgresLocation::parse(
            "postgres://wa:secret@db:5432/wa?sslmode=disable&instance=acct-1&schema=fleet",
        )
        .unwrap();
        assert_eq!(pg.instance, "acct-1");
        assert_eq!(pg.schema.as_deref(), Some("fleet"));
        assert_eq!(
            pg.connection,
            "postgres://wa:secret@db:5432/wa?sslmode=disable"
        );
        assert!(!format!("{pg:?}").contains("secret"));
        assert!(!Location::Postgres(pg).to_string().contains("secret"));
        let err = PostgresLocation::parse("postgres://wa:secret@db/wa").unwrap_err();
        assert!(err.to_string().contains("instance"), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn folders_are_detected_by_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        assert_eq!(detect(&path.join("missing")).unwrap(), None);
        assert_eq!(detect(path).unwrap(), None);
        assert_eq!(
            Location::resolve(path.to_str().unwrap(), None, Role::Target).unwrap(),
            Location::Native(path.to_path_buf())
        );
        assert!(Location::resolve(path.to_str().unwrap(), None, Role::Source).is_err());
        std::fs::write(path.join("creds.json"), "{}").unwrap();
        assert_eq!(detect(path).unwrap(), Some(Format::Compat));
        let native = path.join("n");
        std::fs::create_dir(&native).unwrap();
        std::fs::write(native.join("log"), "").unwrap();
        assert_eq!(detect(&native).unwrap(), Some(Format::Native));
        assert!(detect(&path.join("creds.json")).is_err());
    }
}
