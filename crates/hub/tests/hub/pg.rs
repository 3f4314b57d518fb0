//! A real PostgreSQL server for the tests: Debian's binaries (`/usr/lib/postgresql/*/bin`,
//! or `initdb` and `pg_ctl` on the `PATH`), a cluster `initdb`ed into a temporary directory,
//! started with `pg_ctl` on a free port of 127.0.0.1 and stopped (`pg_ctl stop -m fast`)
//! when the last test using it lets go of it, also when a test panics.
//!
//! Tests running at the same time share one server and each gets a database of its own
//! ([`database`]). As root (CI), the cluster belongs to the `postgres` user the Debian
//! package creates, since `initdb` refuses to run as root.
//!
//! `MIMI_PG_BINDIR` names the binaries' folder where they are elsewhere. A test process
//! killed outright (SIGKILL) cannot stop its server: `pg_ctl stop -D /tmp/mimi-pg-*/data`
//! (as `postgres` when root) ends it.
//!
//! Without PostgreSQL the tests say loudly that they were SKIPPED and how to install it,
//! and pass; with `MIMI_REQUIRE_POSTGRES=1` in the environment they fail instead (CI sets it).

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};

use mimi_hub::storage::PostgresStorage;
use r2d2_postgres::postgres;

/// The variable that turns "PostgreSQL is not installed" into a failure.
pub const REQUIRE: &str = "MIMI_REQUIRE_POSTGRES";

/// The variable naming the folder of `initdb` and `pg_ctl` (elsewhere than Debian's).
pub const BINDIR: &str = "MIMI_PG_BINDIR";

/// How many times a server start is tried on a fresh port (another process may take the
/// port between our probe and the server's bind).
const START_ATTEMPTS: usize = 5;

/// `pg_ctl`'s wait for the server to start or stop, in seconds.
const PG_CTL_WAIT_SECS: &str = "60";

/// The pool size of the storage the tests open.
pub const TEST_POOL_SIZE: u32 = 4;

/// The running server shared by the tests holding it.
static SHARED: Mutex<Weak<PgServer>> = Mutex::new(Weak::new());

/// Database names, unique in this process.
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// A PostgreSQL cluster in a temporary directory, running until dropped.
pub struct PgServer {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// The user the server runs as, if not the current one (`postgres` when we are root).
    run_as: Option<String>,
    /// Removed after the server stopped (fields drop after `Drop::drop`).
    dir: tempfile::TempDir,
}

/// A database of its own for one test, on a shared server; dropped with the test.
pub struct PgDatabase {
    name: String,
    url: String,
    server: Arc<PgServer>,
}

impl PgDatabase {
    /// The connection URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Open the storage on this database.
    pub fn storage(&self) -> PostgresStorage {
        off_runtime(|| PostgresStorage::connect(&self.url, TEST_POOL_SIZE).unwrap())
    }

    /// Run SQL on the database as its superuser (for tests that tamper with it).
    pub fn execute(&self, sql: &str) {
        off_runtime(|| {
            let mut client = postgres::Client::connect(&self.url, postgres::NoTls).unwrap();
            client.batch_execute(sql).unwrap();
        })
    }

    /// The `bigint` one query returns.
    pub fn scalar(&self, sql: &str) -> i64 {
        off_runtime(|| {
            let mut client = postgres::Client::connect(&self.url, postgres::NoTls).unwrap();
            client.query_one(sql, &[]).unwrap().get(0)
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Frees the disk while other tests go on. The last holder of the server does not
        // bother (dropping a database costs a checkpoint): the whole directory goes.
        if Arc::strong_count(&self.server) == 1 {
            return;
        }
        off_runtime(|| {
            if let Ok(mut admin) = self.server.admin() {
                let _ = admin.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
            }
        })
    }
}

impl PgServer {
    fn url(&self, database: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn admin(&self) -> Result<postgres::Client, postgres::Error> {
        postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
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

    /// `initdb` a new cluster and start it.
    fn start(bin: PathBuf) -> Result<PgServer, String> {
        let run_as = if is_root()? {
            Some("postgres".to_owned())
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("mimi-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        let sockets = dir.path().join("sockets");
        std::fs::create_dir(&sockets).map_err(|e| e.to_string())?;
        if let Some(user) = &run_as {
            let (uid, gid) = (id(&["-u", user])?, id(&["-g", user])?);
            for path in [dir.path(), &sockets] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {}: {e}", path.display()))?;
            }
        }
        let initdb = PgServer::tool(&bin, run_as.as_deref(), "initdb")
            .current_dir(dir.path())
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        check(&initdb, "initdb")?;
        let log = dir.path().join("server.log");
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
                sockets.display()
            );
            let started = PgServer::tool(&bin, run_as.as_deref(), "pg_ctl")
                .current_dir(dir.path())
                .args(["start", "-w", "-t", PG_CTL_WAIT_SECS, "-D"])
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-o", &options])
                .output()
                .map_err(|e| format!("pg_ctl: {e}"))?;
            if started.status.success() {
                return Ok(PgServer {
                    bin,
                    data,
                    port,
                    run_as,
                    dir,
                });
            }
            last_error = format!(
                "{}\n{}",
                String::from_utf8_lossy(&started.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        Err(format!("pg_ctl start failed: {last_error}"))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let stopped = PgServer::tool(&self.bin, self.run_as.as_deref(), "pg_ctl")
            .current_dir(self.dir.path())
            .args(["stop", "-w", "-t", PG_CTL_WAIT_SECS, "-m", "fast", "-D"])
            .arg(&self.data)
            .output();
        if !matches!(&stopped, Ok(o) if o.status.success()) {
            let _ = writeln!(
                std::io::stderr(),
                "warning: could not stop the test PostgreSQL server in {}: {stopped:?}",
                self.data.display()
            );
        }
    }
}

/// Whether this process runs as root.
fn is_root() -> Result<bool, String> {
    Ok(id(&["-u"])? == 0)
}

/// A number `id` prints.
fn id(args: &[&str]) -> Result<u32, String> {
    let out = Command::new("id")
        .args(args)
        .output()
        .map_err(|e| format!("id: {e}"))?;
    check(&out, "id")?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("id {args:?}: {e}"))
}

fn check(out: &Output, what: &str) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Run `f` on a thread of its own and wait for it: the synchronous PostgreSQL client
/// refuses to block a thread that drives async tasks (a `#[tokio::test]`'s).
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// A port of 127.0.0.1 nobody listens on right now.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// The folder of `initdb` and `pg_ctl`: [`BINDIR`] if set, else Debian's newest version,
/// else the `PATH`.
fn find_binaries() -> Option<PathBuf> {
    let usable = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
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
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|dir| usable(dir))
}

/// The shared server, started if no test holds one. `None`: PostgreSQL is not installed
/// (and not required).
fn server() -> Option<Arc<PgServer>> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = shared.upgrade() {
        return Some(server);
    }
    let Some(bin) = find_binaries() else {
        skipped();
        return None;
    };
    let server = Arc::new(PgServer::start(bin).unwrap_or_else(|e| panic!("{e}")));
    *shared = Arc::downgrade(&server);
    Some(server)
}

/// Say loudly that a test was skipped, or fail if PostgreSQL is required.
fn skipped() {
    let test = std::thread::current()
        .name()
        .unwrap_or("a PostgreSQL test")
        .to_owned();
    if std::env::var(REQUIRE).is_ok_and(|v| v == "1") {
        panic!(
            "{test}: PostgreSQL is required ({REQUIRE}=1) but initdb and pg_ctl were not found \
             (install: apt-get install postgresql)"
        );
    }
    static BANNER: Once = Once::new();
    // Written to the process's stderr, not the test's captured output, so that it shows.
    let mut err = std::io::stderr();
    BANNER.call_once(|| {
        let _ = writeln!(
            err,
            "\n*** PostgreSQL tests SKIPPED: initdb and pg_ctl were not found \
             (looked in {BINDIR} if set, else /usr/lib/postgresql/*/bin and the PATH).\n\
             *** Install them to run these tests: sudo apt-get install postgresql\n\
             *** ({REQUIRE}=1 makes a missing PostgreSQL a failure, as in CI.)\n"
        );
    });
    let _ = writeln!(err, "SKIPPED (no PostgreSQL): {test}");
}

/// A fresh database of its own on the shared server, or `None` (after saying so) when
/// PostgreSQL is not installed.
pub fn database() -> Option<PgDatabase> {
    let server = server()?;
    let name = format!(
        "test_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    off_runtime(|| {
        let mut admin = server.admin().unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
    });
    Some(PgDatabase {
        url: server.url(&name),
        name,
        server,
    })
}

/// A storage on a fresh database, with the database as its guard.
pub fn storage() -> Option<(PostgresStorage, PgDatabase)> {
    let db = database()?;
    Some((db.storage(), db))
}
