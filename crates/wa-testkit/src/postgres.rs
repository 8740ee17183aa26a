//! A throwaway PostgreSQL cluster for tests and benchmarks.
//!
//! [`Cluster::start`] runs `initdb` into a fresh temporary directory and starts the server with
//! `pg_ctl` on a free TCP port of 127.0.0.1 (its unix socket lives in the same directory, so it
//! never meets the machine's own server). Tests can [`stop`](Cluster::stop),
//! [`start_again`](Cluster::start_again) and [`kill`](Cluster::kill) it. The cluster is removed
//! when the [`Cluster`] is dropped, and — for the one-per-test-binary [`Cluster::shared`], which
//! lives in a `static` and is never dropped — by a small watchdog process that stops the server
//! and deletes the directory as soon as the test process is gone (even after a SIGKILL).
//!
//! PostgreSQL refuses to run as root: when the tests run as root (as CI does) every server
//! command runs as the `postgres` user through `runuser`, and the directory is handed to that
//! user; otherwise the commands run directly as the current user.
//!
//! Binaries are found in `$WA_PG_BINDIR`, else the highest `/usr/lib/postgresql/<v>/bin`,
//! else through `pg_config --bindir`.
//!
//! # Which tests run where
//! Tests that need a database ask [`database`] (any database: `$WA_TEST_DATABASE_URL` when
//! set, else a throwaway cluster) or [`cluster`] (a throwaway cluster the test controls).
//! When neither is possible they get `None` and print one line saying how to enable them;
//! with `WA_REQUIRE_POSTGRES=1` (set by `.ci/run`) that skip is a failure instead.

use std::fmt;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The superuser every cluster is created with (trust authentication, no password).
pub const SUPERUSER: &str = "postgres";

/// How a cluster is configured.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// Whether the server fsyncs (default `false`: fastest for tests; a killed *server* process
    /// loses nothing either way, only an operating-system crash would). Benchmarks turn it on.
    pub fsync: bool,
    /// Extra `postgresql.conf` lines.
    pub settings: Vec<String>,
}

/// A running throwaway PostgreSQL cluster. Dropping it stops the server and deletes its files.
pub struct Cluster {
    root: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    watchdog: Option<Child>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("root", &self.root)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

static SHARED: OnceLock<Cluster> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Cluster {
    /// Starts a new cluster with the default options (fsync off). Panics when PostgreSQL
    /// cannot be set up, with the server log in the message.
    pub fn start() -> Self {
        Self::start_with(ClusterOptions::default())
    }

    /// The cluster shared by every test of this test binary, started on first use (tests
    /// that stop or kill the server must start their own with [`Cluster::start`]).
    pub fn shared() -> &'static Cluster {
        SHARED.get_or_init(Cluster::start)
    }

    /// Starts a new cluster with `options`.
    pub fn start_with(options: ClusterOptions) -> Self {
        let bin = bin_dir();
        let as_postgres = running_as_root();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let root = std::env::temp_dir().join(format!(
            "wa-pg-{}-{}-{nanos:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(root.join("sock"))
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
        let mut cluster = Self {
            root,
            bin,
            port: 0,
            as_postgres,
            watchdog: None,
        };
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.root));
        }
        cluster.watchdog = Some(cluster.spawn_watchdog());
        let data = cluster.data_dir();
        let mut initdb = cluster.server_command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale"])
            .arg("--no-sync");
        run(&mut initdb);

        let sock = cluster.root.join("sock");
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap_or_else(|e| panic!("cannot open postgresql.conf: {e}"));
        let mut lines = vec![
            "listen_addresses = '127.0.0.1'".to_owned(),
            format!("unix_socket_directories = '{}'", sock.display()),
            format!("fsync = {}", if options.fsync { "on" } else { "off" }),
            "max_connections = 200".to_owned(),
            "shared_buffers = '128MB'".to_owned(),
            "logging_collector = off".to_owned(),
        ];
        if !options.fsync {
            lines.push("full_page_writes = off".to_owned());
        }
        lines.extend(options.settings.iter().cloned());
        for line in lines {
            writeln!(conf, "{line}").unwrap_or_else(|e| panic!("cannot write config: {e}"));
        }
        drop(conf);

        // A free port can be taken by someone else between probing and binding: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            cluster.port = free_port();
            cluster.write_port();
            match cluster.try_start() {
                Ok(()) => return cluster,
                Err(log) => last = log,
            }
        }
        panic!("PostgreSQL did not start:\n{last}");
    }

    /// The directory holding the data directory, the socket and the log.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A libpq-style connection string for database `postgres` as the superuser.
    pub fn connection_string(&self) -> String {
        self.connection_string_for("postgres")
    }

    /// A libpq-style connection string for database `dbname` as the superuser.
    pub fn connection_string_for(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={SUPERUSER} dbname={dbname} connect_timeout=5",
            self.port
        )
    }

    /// Runs `sql` with `psql` against database `postgres` and returns its unaligned,
    /// tuples-only output (fields separated by `|`). Panics if psql fails.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("postgres", sql)
    }

    /// Runs `sql` with `psql` against `dbname`; see [`Cluster::psql`].
    pub fn psql_in(&self, dbname: &str, sql: &str) -> String {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", SUPERUSER])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(dbname)
            .arg("-c")
            .arg(sql)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        assert!(
            output.status.success(),
            "psql failed on {sql:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned()
    }

    /// Creates database `name` (owned by the superuser).
    pub fn create_database(&self, name: &str) {
        self.psql(&format!("CREATE DATABASE \"{name}\""));
    }

    /// Stops the server with a fast shutdown (clients are disconnected, work in progress is
    /// rolled back), as a planned failover or restart does.
    pub fn stop(&self) {
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-t", "60", "stop"]);
        run(&mut cmd);
    }

    /// Kills the server's postmaster with SIGKILL, as a crash does, and waits until every
    /// server process is gone. [`Cluster::start_again`] then runs crash recovery.
    pub fn kill(&self) {
        let pid_file = self.data_dir().join("postmaster.pid");
        let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.lines().next().map(str::trim).map(str::to_owned))
        else {
            panic!("no postmaster.pid: the server is not running");
        };
        run(Command::new("kill").args(["-KILL", &pid]));
        // Backends notice the postmaster's death and exit on their own; a new postmaster
        // refuses to start while they still hold the shared memory, which `start_again`
        // waits out by retrying.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            // Gone, or a zombie nobody reaps yet (state `Z` in /proc/<pid>/stat).
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit(") ")
                    .next()
                    .is_some_and(|r| !r.starts_with('Z'))
            });
            if !alive {
                break;
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again after [`Cluster::stop`] or [`Cluster::kill`], on the same port.
    pub fn start_again(&self) {
        let mut last = String::new();
        for _ in 0..20 {
            match self.try_start() {
                Ok(()) => return,
                Err(log) => last = log,
            }
            sleep(Duration::from_millis(250));
        }
        panic!("PostgreSQL did not start again:\n{last}");
    }

    /// Stops the server (fast) and starts it again.
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// Makes a test CA and a server certificate for 127.0.0.1 in `dir`
    /// ([`tls::test_certificates`](crate::tls::test_certificates)) and turns TLS on with them
    /// ([`enable_ssl`](Self::enable_ssl)). Clients that trust the returned `ca` can connect
    /// with `sslmode=verify-full`.
    pub fn enable_test_tls(&self, dir: &Path) -> crate::tls::TestCertificates {
        let certs = crate::tls::test_certificates(dir);
        self.enable_ssl(&certs.server_cert, &certs.server_key);
        certs
    }

    /// Turns TLS on: copies the PEM certificate (chain) and private key into the cluster's
    /// directory, hands them to the server's user and reloads the configuration. New
    /// connections may then use TLS (`sslmode=require`).
    pub fn enable_ssl(&self, cert_pem: &Path, key_pem: &Path) {
        let dir = self.root.join("ssl");
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
        std::fs::copy(cert_pem, &cert)
            .unwrap_or_else(|e| panic!("cannot copy the certificate: {e}"));
        std::fs::copy(key_pem, &key).unwrap_or_else(|e| panic!("cannot copy the key: {e}"));
        run(Command::new("chmod").arg("600").arg(&key));
        if self.as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir));
        }
        // ALTER SYSTEM cannot run in a transaction block: one statement per call.
        self.psql(&format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}'",
            cert.display()
        ));
        self.psql(&format!(
            "ALTER SYSTEM SET ssl_key_file = '{}'",
            key.display()
        ));
        self.psql("ALTER SYSTEM SET ssl = on");
        self.psql("SELECT pg_reload_conf()");
    }

    fn write_port(&self) {
        let path = self.data_dir().join("postgresql.conf");
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        writeln!(conf, "port = {}", self.port).unwrap_or_else(|e| panic!("cannot write: {e}"));
    }

    fn try_start(&self) -> Result<(), String> {
        let log = self.root.join("server.log");
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let ok = cmd.status().is_ok_and(|s| s.success());
        if ok {
            Ok(())
        } else {
            Err(std::fs::read_to_string(&log).unwrap_or_default())
        }
    }

    fn server_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    /// A detached shell that waits for this process to end, then stops the server and
    /// removes the directory: the cleanup for clusters that are never dropped.
    fn spawn_watchdog(&self) -> Child {
        let stop = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             {stop}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{root}'",
            pid = std::process::id(),
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data_dir().display(),
            root = self.root.display(),
        );
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the cluster watchdog: {e}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = cmd.status();
        let _ = std::fs::remove_dir_all(&self.root);
        if let Some(mut watchdog) = self.watchdog.take() {
            // Its own work is done; it would otherwise linger until the test process ends.
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

fn run(cmd: &mut Command) {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

/// A database for a test.
#[derive(Debug)]
pub enum Database {
    /// `$WA_TEST_DATABASE_URL`: a server the test does not control.
    External(String),
    /// The throwaway cluster shared by the test binary.
    Cluster(&'static Cluster),
}

impl Database {
    /// A connection string for it.
    pub fn connection_string(&self) -> String {
        match self {
            Database::External(url) => url.clone(),
            Database::Cluster(cluster) => cluster.connection_string(),
        }
    }
}

/// The variable that turns a skipped PostgreSQL test into a failure.
pub const REQUIRE_VAR: &str = "WA_REQUIRE_POSTGRES";

/// The variable naming a database for tests that need any database.
pub const URL_VAR: &str = "WA_TEST_DATABASE_URL";

/// A database for `test`: `$WA_TEST_DATABASE_URL`, else the shared throwaway cluster when
/// the server binaries are found, else `None` after one line on stderr (a panic instead under
/// `WA_REQUIRE_POSTGRES=1`).
pub fn database(test: &str) -> Option<Database> {
    if let Some(url) = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()) {
        return Some(Database::External(url));
    }
    cluster(test).map(Database::Cluster)
}

/// The shared throwaway cluster for `test` (which needs to control the server), or `None`
/// after one line on stderr when the server binaries are not found (a panic instead under
/// `WA_REQUIRE_POSTGRES=1`).
pub fn cluster(test: &str) -> Option<&'static Cluster> {
    if find_bin_dir().is_some() {
        return Some(Cluster::shared());
    }
    skip(test);
    None
}

/// Whether a test that starts its own cluster ([`Cluster::start`]) can run; prints the skip
/// line (or panics under `WA_REQUIRE_POSTGRES=1`) when not.
pub fn can_start_clusters(test: &str) -> bool {
    if find_bin_dir().is_some() {
        return true;
    }
    skip(test);
    false
}

fn skip(test: &str) {
    let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| !v.is_empty() && v != "0");
    let line = format!(
        "skipped {test}: no PostgreSQL (install its server binaries, e.g. Debian's postgresql, \
         or set WA_PG_BINDIR; or set {URL_VAR} for tests that need only a database)"
    );
    assert!(!required, "{line}, and {REQUIRE_VAR} is set");
    eprintln!("{line}");
}

/// Where the PostgreSQL server binaries are.
pub fn bin_dir() -> PathBuf {
    find_bin_dir().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries not found: install them (Debian: postgresql) or set WA_PG_BINDIR"
        )
    })
}

/// Where the PostgreSQL server binaries are, if found. Panics when `$WA_PG_BINDIR` is set to a
/// directory without `initdb`: a setting that is wrong must not turn into a skipped test.
pub fn find_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WA_PG_BINDIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file(),
            "WA_PG_BINDIR is {} but it holds no initdb: point it at PostgreSQL's server binaries",
            dir.display()
        );
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    (output.status.success() && bin.join("initdb").exists()).then_some(bin)
}
