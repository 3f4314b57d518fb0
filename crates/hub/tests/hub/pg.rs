//! A real PostgreSQL server for the tests ([`mimi_pg_server::PgServer`]: a cluster
//! `initdb`ed into a temporary directory, started with `pg_ctl` on a free port of 127.0.0.1,
//! stopped when the last test using it lets go of it, also when a test panics).
//!
//! Tests running at the same time share one server and each gets a database of its own
//! ([`database`]).
//!
//! Without PostgreSQL the tests say loudly that they were SKIPPED and how to install it,
//! and pass; with `MIMI_REQUIRE_POSTGRES=1` in the environment they fail instead (CI sets it).

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};

use mimi_hub::storage::PostgresStorage;
use mimi_pg_server::{BINDIR, PgError, PgServer, REQUIRE};
use r2d2_postgres::postgres;

/// The server's `max_connections`: tests running at the same time, each with its pools.
const MAX_CONNECTIONS: u32 = 200;

/// The pool size of the storage the tests open.
pub const TEST_POOL_SIZE: u32 = 4;

/// The running server shared by the tests holding it.
static SHARED: Mutex<Weak<PgServer>> = Mutex::new(Weak::new());

/// Database names, unique in this process.
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

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
            if let Ok(mut admin) = admin(&self.server) {
                let _ = admin.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
            }
        })
    }
}

/// A connection to the server's `postgres` database as its superuser.
fn admin(server: &PgServer) -> Result<postgres::Client, postgres::Error> {
    postgres::Client::connect(&server.url("postgres"), postgres::NoTls)
}

/// Run `f` on a thread of its own and wait for it: the synchronous PostgreSQL client
/// refuses to block a thread that drives async tasks (a `#[tokio::test]`'s).
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// The shared server, started if no test holds one. `None`: PostgreSQL is not installed
/// (and not required).
fn server() -> Option<Arc<PgServer>> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = shared.upgrade() {
        return Some(server);
    }
    let server = match PgServer::start(MAX_CONNECTIONS, &[]) {
        Ok(server) => Arc::new(server),
        Err(PgError::NotInstalled) => {
            skipped();
            return None;
        }
        Err(e) => panic!("{e}"),
    };
    *shared = Arc::downgrade(&server);
    Some(server)
}

/// Say loudly that a test was skipped, or fail if PostgreSQL is required.
fn skipped() {
    let test = std::thread::current()
        .name()
        .unwrap_or("a PostgreSQL test")
        .to_owned();
    if mimi_pg_server::required() {
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
        let mut admin = admin(&server).unwrap();
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
