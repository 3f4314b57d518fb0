//! A private PostgreSQL server for the hub's tests (`crates/hub/tests/hub/pg.rs`) and the
//! bench's figures on PostgreSQL (`crates/bench/src/pg.rs`), run as processes only (no
//! database client here): Debian's binaries (`/usr/lib/postgresql/*/bin`, `$MIMI_PG_BINDIR`,
//! or the `PATH`), `initdb` into a temporary directory (`mimi-pg-*`), `pg_ctl start` on a
//! free port of 127.0.0.1, databases made with `createdb`, and `pg_ctl stop -m fast` when the
//! [`PgServer`] is dropped (also when a test panics or a benchmark fails). As root (CI) the
//! cluster belongs to the `postgres` user the Debian package creates (`initdb` refuses
//! root). A process killed outright (SIGKILL) cannot stop its server:
//! `pg_ctl stop -D /tmp/mimi-pg-*/data` (as `postgres` when root) ends it.
//!
//! It owns starting, naming and stopping the server; what runs on it (SQL, the storage, the
//! figures) is its users'. It must not depend on any other workspace crate: it sits below
//! the hub's tests and the bench alike.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The variable that turns "PostgreSQL is not installed" into a failure (of the hub's
/// PostgreSQL tests and of `mimi-bench all`; CI sets it).
pub const REQUIRE: &str = "MIMI_REQUIRE_POSTGRES";

/// The variable naming the folder of `initdb`, `pg_ctl` and `createdb` (elsewhere than
/// Debian's).
pub const BINDIR: &str = "MIMI_PG_BINDIR";

/// How many times a server start is tried on a fresh port (another process may take the
/// port between our probe and the server's bind).
const START_ATTEMPTS: usize = 5;

/// `pg_ctl`'s wait for the server to start or stop, in seconds.
const PG_CTL_WAIT_SECS: &str = "60";

/// What is said when there is no PostgreSQL to run.
pub const NOT_INSTALLED: &str = "PostgreSQL not installed: initdb and pg_ctl were not found \
(looked in $MIMI_PG_BINDIR, /usr/lib/postgresql/*/bin and the PATH; apt-get install postgresql)";

/// Whether [`REQUIRE`] is `1`.
pub fn required() -> bool {
    std::env::var(REQUIRE).is_ok_and(|v| v == "1")
}

/// Why the PostgreSQL server could not be run.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// No `initdb`, `pg_ctl` and `createdb` were found.
    #[error("{NOT_INSTALLED}")]
    NotInstalled,
    /// A PostgreSQL tool failed.
    #[error("PostgreSQL: {0}")]
    Failed(String),
}

/// A PostgreSQL cluster in a temporary directory, running until dropped.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// The user the server runs as, if not the current one (`postgres` when we are root).
    run_as: Option<String>,
    /// Removed after the server stopped (fields drop after `Drop::drop`).
    dir: tempfile::TempDir,
}

impl PgServer {
    /// `initdb` a cluster with the binaries [`find_binaries`] finds, start it with
    /// `max_connections`, and create `databases` (plain lowercase names). The user
    /// `postgres` is the superuser; connections from 127.0.0.1 are trusted.
    pub fn start(max_connections: u32, databases: &[&str]) -> Result<PgServer, PgError> {
        let bin = find_binaries().ok_or(PgError::NotInstalled)?;
        let failed = |e: &dyn std::fmt::Display| PgError::Failed(e.to_string());
        let run_as = is_root()?.then(|| "postgres".to_owned());
        let dir = tempfile::Builder::new()
            .prefix("mimi-pg-")
            .tempdir()
            .map_err(|e| failed(&e))?;
        let data = dir.path().join("data");
        let sockets = dir.path().join("sockets");
        std::fs::create_dir(&sockets).map_err(|e| failed(&e))?;
        if let Some(user) = &run_as {
            let (uid, gid) = (id(&["-u", user])?, id(&["-g", user])?);
            for path in [dir.path(), &sockets] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .map_err(|e| PgError::Failed(format!("chown {}: {e}", path.display())))?;
            }
        }
        let initdb = tool(&bin, run_as.as_deref(), "initdb")
            .current_dir(dir.path())
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .map_err(|e| PgError::Failed(format!("initdb: {e}")))?;
        check(&initdb, "initdb")?;
        let log = dir.path().join("server.log");
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port().map_err(|e| failed(&e))?;
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections={max_connections}",
                sockets.display()
            );
            let started = tool(&bin, run_as.as_deref(), "pg_ctl")
                .current_dir(dir.path())
                .args(["start", "-w", "-t", PG_CTL_WAIT_SECS, "-D"])
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-o", &options])
                .output()
                .map_err(|e| PgError::Failed(format!("pg_ctl: {e}")))?;
            if started.status.success() {
                let server = PgServer {
                    bin,
                    data,
                    port,
                    run_as,
                    dir,
                };
                for database in databases {
                    server.create_database(database)?;
                }
                return Ok(server);
            }
            last_error = format!(
                "{}\n{}",
                String::from_utf8_lossy(&started.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        Err(PgError::Failed(format!(
            "pg_ctl start failed: {last_error}"
        )))
    }

    /// Create the database `name` (a plain lowercase name) with `createdb`.
    pub fn create_database(&self, name: &str) -> Result<(), PgError> {
        let created = tool(&self.bin, self.run_as.as_deref(), "createdb")
            .current_dir(self.dir.path())
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg(name)
            .output()
            .map_err(|e| PgError::Failed(format!("createdb: {e}")))?;
        check(&created, "createdb")
    }

    /// The connection URL of `database`, as the superuser `postgres`.
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The postmaster's process ID (the first line of `postmaster.pid`).
    pub fn postmaster(&self) -> Result<u32, PgError> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .map_err(|e| PgError::Failed(format!("postmaster.pid: {e}")))?;
        text.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| PgError::Failed("postmaster.pid has no process ID".into()))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let stopped = tool(&self.bin, self.run_as.as_deref(), "pg_ctl")
            .current_dir(self.dir.path())
            .args(["stop", "-w", "-t", PG_CTL_WAIT_SECS, "-m", "fast", "-D"])
            .arg(&self.data)
            .output();
        if !matches!(&stopped, Ok(o) if o.status.success()) {
            eprintln!(
                "warning: could not stop the PostgreSQL server in {}: {stopped:?}",
                self.data.display()
            );
        }
    }
}

/// A command running `tool` of the PostgreSQL binaries as the server's user.
fn tool(bin: &Path, run_as: Option<&str>, tool: &str) -> Command {
    match run_as {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(bin.join(tool));
            c
        }
        None => Command::new(bin.join(tool)),
    }
}

/// Whether this process runs as root.
fn is_root() -> Result<bool, PgError> {
    Ok(id(&["-u"])? == 0)
}

/// A number `id` prints.
fn id(args: &[&str]) -> Result<u32, PgError> {
    let out = Command::new("id")
        .args(args)
        .output()
        .map_err(|e| PgError::Failed(format!("id: {e}")))?;
    check(&out, "id")?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| PgError::Failed(format!("id {args:?}: {e}")))
}

fn check(out: &Output, what: &str) -> Result<(), PgError> {
    if out.status.success() {
        Ok(())
    } else {
        Err(PgError::Failed(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// A port of 127.0.0.1 nobody listens on right now.
fn free_port() -> Result<u16, std::io::Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The folder of `initdb`, `pg_ctl` and `createdb`: [`BINDIR`] if set, else Debian's newest
/// version, else the `PATH`.
pub fn find_binaries() -> Option<PathBuf> {
    let usable = |dir: &Path| {
        ["initdb", "pg_ctl", "createdb"]
            .iter()
            .all(|t| dir.join(t).is_file())
    };
    if let Some(dir) = std::env::var_os(BINDIR) {
        let dir = PathBuf::from(dir);
        return usable(&dir).then_some(dir);
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            usable(&bin).then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|dir| usable(dir))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A real server: it listens on its port, its databases exist (a second `createdb` of one
    /// is refused by the server), its postmaster runs; dropped, it is stopped and its
    /// directory removed. Skipped without PostgreSQL unless [`REQUIRE`] is set.
    #[test]
    fn a_server_runs_with_its_databases_until_dropped() {
        let server = match PgServer::start(10, &["first", "second"]) {
            Err(PgError::NotInstalled) if !required() => {
                eprintln!("SKIPPED (no PostgreSQL): {NOT_INSTALLED}");
                return;
            }
            started => started.unwrap(),
        };
        assert!(std::net::TcpStream::connect(("127.0.0.1", server.port())).is_ok());
        assert_eq!(
            server.url("first"),
            format!("postgresql://postgres@127.0.0.1:{}/first", server.port())
        );
        let refused = server.create_database("second").unwrap_err();
        assert!(refused.to_string().contains("already exists"), "{refused}");
        server.create_database("third").unwrap();
        let postmaster = server.postmaster().unwrap();
        assert!(Path::new(&format!("/proc/{postmaster}")).exists());
        let dir = server.data_dir().parent().unwrap().to_owned();
        assert!(server.data_dir().join("PG_VERSION").is_file());
        drop(server);
        assert!(!dir.exists(), "the cluster's directory is removed");
    }
}
