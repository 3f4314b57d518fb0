//! A private PostgreSQL server for the hub figures on PostgreSQL (`mimi-bench hub
//! --storage postgres`, and the PostgreSQL rows of `mimi-bench all`): the server the hub
//! tests use too ([`mimi_pg_server::PgServer`], processes only, no database client), and
//! what it cost.
//!
//! [`usage`] sums the CPU time and I/O counters of the server's processes from `/proc`: the
//! postmaster (with its reaped children's CPU time, `cutime + cstime`, and I/O, which the
//! kernel adds to the parent's counters) and its living children (backends, WAL writer,
//! checkpointer, background writer).

use std::time::Duration;

pub use mimi_pg_server::{NOT_INSTALLED, PgError, PgServer, REQUIRE, find_binaries, required};

use crate::process::{CLOCK_TICKS_PER_SECOND, Usage, parse_io_field};

/// The server's `max_connections`: three providers of `pool_size + 2` connections each.
pub const MAX_CONNECTIONS: u32 = 100;

/// `initdb` a cluster, start it, and create `databases` (plain lowercase names).
pub fn start(databases: &[&str]) -> Result<PgServer, PgError> {
    PgServer::start(MAX_CONNECTIONS, databases)
}

/// The CPU time and I/O counters of all the server's processes so far: the postmaster
/// with its reaped children, and its living children.
pub fn usage(server: &PgServer) -> Result<Usage, PgError> {
    let postmaster = server.postmaster()?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The server's processes (the postmaster, its children) have used CPU time by the time
    /// it has started and made its databases.
    #[test]
    fn the_servers_usage_is_read_from_its_processes() {
        let server = match start(&["bench"]) {
            Err(PgError::NotInstalled) if !required() => {
                eprintln!("SKIPPED (no PostgreSQL): {NOT_INSTALLED}");
                return;
            }
            started => started.unwrap(),
        };
        server.create_database("more").unwrap();
        let used = usage(&server).unwrap();
        assert!(used.cpu > Duration::ZERO, "{used:?}");
    }
}
