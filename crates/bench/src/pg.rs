//! A private PostgreSQL server for the hub figures on PostgreSQL (`mimi-bench hub
//! --storage postgres`, and the PostgreSQL rows of `mimi-bench all`).
//!
//! The approach of the hub tests' server (`crates/hub/tests/hub/pg.rs`), as processes only
//! (no database client in this crate): Debian's binaries (`/usr/lib/postgresql/*/bin`,
//! `$MIMI_PG_BINDIR`, or the `PATH`), `initdb` into a scratch directory, `pg_ctl start` on a
//! free port of 127.0.0.1, one database per provider made with `createdb`, and `pg_ctl stop
//! -m fast` when the [`PgServer`] is dropped (also when the benchmark fails). As root the
//! cluster belongs to the `postgres` user the Debian package creates (`initdb` refuses root).
//!
//! [`PgServer::usage`] sums the CPU time and I/O counters of the server's processes from
//! `/proc`: the postmaster (with its reaped children's CPU time, `cutime + cstime`, and I/O,
//! which the kernel adds to the parent's counters) and its living children (backends, WAL
//! writer, checkpointer, background writer).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::process::{CLOCK_TICKS_PER_SECOND, Usage, parse_io_field};
use crate::setup::ScratchDir;

/// The variable naming the folder of `initdb` and `pg_ctl` (elsewhere than Debian's).
pub const BINDIR: &str = "MIMI_PG_BINDIR";
/// The variable that turns "PostgreSQL is not installed" into a failure of `mimi-bench all`
/// (as in the hub tests; `.ci/run` sets it).
pub const REQUIRE: &str = "MIMI_REQUIRE_POSTGRES";
/// How many times a server start is tried on a fresh port (another process may take the
/// port between our probe and the server's bind).
const START_ATTEMPTS: usize = 5;
/// `pg_ctl`'s wait for the server to start or stop, in seconds.
const PG_CTL_WAIT_SECS: &str = "60";
/// The server's `max_connections`: three providers of `pool_size + 2` connections each.
const MAX_CONNECTIONS: &str = "100";
/// What the figures say when there is no PostgreSQL to measure.
pub const NOT_INSTALLED: &str = "PostgreSQL not installed: initdb and pg_ctl were not found \
(looked in $MIMI_PG_BINDIR, /usr/lib/postgresql/*/bin and the PATH; apt-get install postgresql)";

/// Whether [`REQUIRE`] is `1`.
pub fn required() -> bool {
    std::env::var(REQUIRE).is_ok_and(|v| v == "1")
}

/// Why the PostgreSQL server could not be run.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// No `initdb` and `pg_ctl` were found.
    #[error("{NOT_INSTALLED}")]
    NotInstalled,
    /// A PostgreSQL tool failed.
    #[error("PostgreSQL: {0}")]
    Failed(String),
}

/// A PostgreSQL cluster in a scratch directory, running until dropped.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// The user the server runs as, if not the current one (`postgres` when we are root).
    run_as: Option<String>,
    /// Removed after the server stopped (fields drop after `Drop::drop`).
    dir: ScratchDir,
}

impl PgServer {
    /// `initdb` a cluster, start it, and create `databases` (plain lowercase names).
    pub fn start(databases: &[&str]) -> Result<PgServer, PgError> {
        let bin = find_binaries().ok_or(PgError::NotInstalled)?;
        let failed = |e: &dyn std::fmt::Display| PgError::Failed(e.to_string());
        let run_as = is_root()?.then(|| "postgres".to_owned());
        let dir = ScratchDir::new("postgres").map_err(|e| failed(&e))?;
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
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections={MAX_CONNECTIONS}",
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
                    let created = tool(&server.bin, server.run_as.as_deref(), "createdb")
                        .current_dir(server.dir.path())
                        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                        .arg(database)
                        .output()
                        .map_err(|e| PgError::Failed(format!("createdb: {e}")))?;
                    check(&created, "createdb")?;
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

    /// The connection URL of `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The postmaster's process ID (the first line of `postmaster.pid`).
    fn postmaster(&self) -> Result<u32, PgError> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .map_err(|e| PgError::Failed(format!("postmaster.pid: {e}")))?;
        text.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| PgError::Failed("postmaster.pid has no process ID".into()))
    }

    /// The CPU time and I/O counters of all the server's processes so far: the postmaster
    /// with its reaped children, and its living children.
    pub fn usage(&self) -> Result<Usage, PgError> {
        let postmaster = self.postmaster()?;
        let (mut total, _) = proc_usage(postmaster, true)
            .ok_or_else(|| PgError::Failed(format!("no /proc counters for {postmaster}")))?;
        let entries = std::fs::read_dir("/proc").map_err(|e| PgError::Failed(e.to_string()))?;
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            // A child that exits meanwhile is counted in the postmaster's totals instead.
            if let Some((usage, parent)) = proc_usage(pid, false)
                && parent == postmaster
            {
                total.cpu += usage.cpu;
                total.write_bytes += usage.write_bytes;
                total.write_syscalls += usage.write_syscalls;
            }
        }
        Ok(total)
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
                "mimi-bench: could not stop the PostgreSQL server in {}: {stopped:?}",
                self.data.display()
            );
        }
    }
}

/// A process's CPU time (with its reaped children's if `children`) and I/O counters, and
/// its parent's ID; `None` if it is gone.
fn proc_usage(pid: u32, children: bool) -> Option<(Usage, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 (the state): ppid is 4, utime 14, stime 15, cutime 16, cstime 17.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let parent = u32::try_from(field(4)?).ok()?;
    let mut ticks = field(14)? + field(15)?;
    if children {
        ticks += field(16)? + field(17)?;
    }
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let usage = Usage {
        cpu: Duration::from_secs_f64(ticks as f64 / CLOCK_TICKS_PER_SECOND as f64),
        write_bytes: parse_io_field(&io, "write_bytes")?,
        write_syscalls: parse_io_field(&io, "syscw")?,
    };
    Some((usage, parent))
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
