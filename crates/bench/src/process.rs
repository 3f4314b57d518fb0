//! Servers under test run as real processes, so that their memory is theirs alone and
//! they do not share a runtime with the load generator.
//!
//! The convention between the harness and a server process: the server binds its port,
//! prints one line `listening <address>` on standard output, serves, and shuts down when
//! its standard input reaches end of file (so a harness that dies takes its servers with
//! it). [`ChildServer`] is the harness's side; [`stdin_closed`] the server's.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The prefix of the one line a server process prints once it is listening.
pub const LISTENING_PREFIX: &str = "listening ";
/// How long a server gets to exit after its standard input closes, before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often a stopping server is checked for exit.
const STOP_POLL: Duration = Duration::from_millis(10);

/// Why a server process could not be started, observed or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The process could not be started, or its pipes used.
    #[error("server process: {0}")]
    Io(#[from] std::io::Error),
    /// The process exited (or closed standard output) before it said where it listens.
    #[error("the server process ended before it was listening")]
    NotListening,
    /// The first line was not `listening <address>`.
    #[error("the server process said {0:?} instead of `listening <address>`")]
    BadAnnouncement(String),
    /// `/proc/<pid>/status` has no `VmHWM` line (not Linux, or the process is gone).
    #[error("peak RSS of process {0} is not available")]
    NoPeakRss(u32),
    /// `/proc/<pid>/stat` or `/proc/<pid>/io` could not be read or parsed.
    #[error("CPU time or I/O counters of process {0} are not available")]
    NoUsage(u32),
}

/// A running server process, stopped (and reaped) when dropped.
#[derive(Debug)]
pub struct ChildServer {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
}

impl ChildServer {
    /// Start `command` and wait for its `listening <address>` line.
    pub fn spawn(mut command: Command) -> Result<Self, ProcessError> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let announced = child
            .stdout
            .take()
            .ok_or(ProcessError::NotListening)
            .and_then(|stdout| {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line)?;
                Ok(line)
            });
        let mut server = ChildServer {
            child,
            stdin,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = announced?;
        let line = line.trim_end();
        if line.is_empty() {
            return Err(ProcessError::NotListening);
        }
        server.addr = line
            .strip_prefix(LISTENING_PREFIX)
            .and_then(|addr| addr.parse().ok())
            .ok_or_else(|| ProcessError::BadAnnouncement(line.to_owned()))?;
        Ok(server)
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process ID.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The process's peak resident set size so far (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> Result<u64, ProcessError> {
        peak_rss_bytes(self.child.id())
    }

    /// Close the server's standard input, wait up to [`STOP_GRACE`] for it to exit, then
    /// kill it. Returns whether it exited on its own.
    pub fn stop(mut self) -> Result<bool, ProcessError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<bool, ProcessError> {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(true);
            }
            std::thread::sleep(STOP_POLL);
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(false)
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Best effort: the process is ours, and a failure here leaves nothing to do.
            let _ = self.shut_down();
        }
    }
}

/// The peak resident set size of process `pid` (`VmHWM` of `/proc/<pid>/status`), in
/// bytes.
pub fn peak_rss_bytes(pid: u32) -> Result<u64, ProcessError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|_| ProcessError::NoPeakRss(pid))?;
    parse_vm_hwm(&status).ok_or(ProcessError::NoPeakRss(pid))
}

/// The `VmHWM:   1234 kB` line of a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next()? {
        "kB" => value.checked_mul(1024),
        _ => None,
    }
}

/// Clock ticks per second of the CPU times in `/proc/<pid>/stat` (`sysconf(_SC_CLK_TCK)`:
/// the kernel's `USER_HZ`, which Linux fixes at 100 on the architectures this runs on).
pub const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// A process's cumulative resource counters (all its threads, living and exited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// CPU time, user and system (`utime + stime` of `/proc/<pid>/stat`).
    pub cpu: Duration,
    /// Bytes the process caused to be written to storage (`write_bytes` of
    /// `/proc/<pid>/io`: counted when it dirties the page cache, whether or not written
    /// back yet).
    pub write_bytes: u64,
    /// Write system calls of any kind, sockets included (`syscw` of `/proc/<pid>/io`).
    pub write_syscalls: u64,
}

impl Usage {
    /// What was spent between `earlier` and `self` (counters never decrease; a smaller
    /// value counts as zero).
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            cpu: self.cpu.saturating_sub(earlier.cpu),
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
            write_syscalls: self.write_syscalls.saturating_sub(earlier.write_syscalls),
        }
    }

    /// `self` spread over `count` units of work (messages, requests): CPU in µs, bytes
    /// and system calls per unit. `None` for no work.
    pub fn per(&self, count: u64) -> Option<PerUnit> {
        (count > 0).then(|| {
            let n = count as f64;
            PerUnit {
                cpu_micros: self.cpu.as_secs_f64() * 1e6 / n,
                write_bytes: self.write_bytes as f64 / n,
                write_syscalls: self.write_syscalls as f64 / n,
            }
        })
    }
}

/// A [`Usage`] per unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PerUnit {
    /// CPU time per unit, in µs.
    pub cpu_micros: f64,
    /// Bytes written to storage per unit.
    pub write_bytes: f64,
    /// Write system calls per unit.
    pub write_syscalls: f64,
}

/// The counters of process `pid` now.
pub fn usage(pid: u32) -> Result<Usage, ProcessError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|_| ProcessError::NoUsage(pid))?;
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .map_err(|_| ProcessError::NoUsage(pid))?;
    let ticks = parse_cpu_ticks(&stat).ok_or(ProcessError::NoUsage(pid))?;
    let field = |name: &str| parse_io_field(&io, name).ok_or(ProcessError::NoUsage(pid));
    Ok(Usage {
        cpu: ticks_to_duration(ticks),
        write_bytes: field("write_bytes")?,
        write_syscalls: field("syscw")?,
    })
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let whole = ticks / CLOCK_TICKS_PER_SECOND;
    let rest = ticks % CLOCK_TICKS_PER_SECOND;
    Duration::from_secs(whole)
        + Duration::from_nanos(rest * (1_000_000_000 / CLOCK_TICKS_PER_SECOND))
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line, in clock ticks. The
/// command name (field 2) is in parentheses and may hold spaces, so the fields are
/// counted after its closing parenthesis.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 (the state) is the first after the name: utime is field 14.
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

/// The `name: value` line of a `/proc/<pid>/io` text.
pub fn parse_io_field(io: &str, name: &str) -> Option<u64> {
    io.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim().parse().ok())?
    })
}

/// The server side of the convention: print `listening <addr>` (and flush).
pub fn announce(addr: SocketAddr) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{LISTENING_PREFIX}{addr}")?;
    stdout.flush()
}

/// The server side of the convention: completes when standard input reaches end of file
/// (or fails), which is the harness asking the server to stop.
pub async fn stdin_closed() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut sink);
        let _ = tx.send(());
    });
    // A dropped sender also means standard input is gone.
    let _ = rx.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_bytes() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(1234 * 1024));
        assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t12 MB\n"), None);
    }

    #[test]
    fn cpu_ticks_are_utime_plus_stime_after_the_name() {
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 75 0 0 20 0 9 0 1000 5000000 900 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("4242 (x) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("no name"), None);
        assert_eq!(ticks_to_duration(325), Duration::from_millis(3250));
    }

    #[test]
    fn io_fields_are_read_by_name() {
        let io = "rchar: 6976\nwchar: 12\nsyscr: 10\nsyscw: 3\nread_bytes: 0\n\
                  write_bytes: 8192\ncancelled_write_bytes: 4096\n";
        assert_eq!(parse_io_field(io, "write_bytes"), Some(8192));
        assert_eq!(parse_io_field(io, "syscw"), Some(3));
        assert_eq!(parse_io_field(io, "missing"), None);
    }

    #[test]
    fn usage_of_this_process_grows_with_work_and_writes() {
        let before = usage(std::process::id()).unwrap();
        // Burn CPU until the tick counter moves (bounded: it moves every 10 ms of CPU).
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while usage(std::process::id()).unwrap().cpu == before.cpu
            && start.elapsed() < Duration::from_secs(30)
        {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
        }
        std::hint::black_box(x);
        let dir = std::env::temp_dir().join(format!("mimi-bench-usage-{}", std::process::id()));
        std::fs::write(&dir, vec![7u8; 1 << 16]).unwrap();
        let file = std::fs::File::open(&dir).unwrap();
        file.sync_all().unwrap();
        let spent = usage(std::process::id()).unwrap().since(&before);
        std::fs::remove_file(&dir).unwrap();
        assert!(spent.cpu > Duration::ZERO);
        assert!(spent.write_syscalls >= 1);
        let per = spent.per(2).unwrap();
        assert_eq!(per.write_syscalls, spent.write_syscalls as f64 / 2.0);
        assert!(spent.per(0).is_none());
    }

    #[test]
    fn this_process_has_a_peak_rss() {
        let bytes = peak_rss_bytes(std::process::id()).unwrap();
        assert!(bytes > 0);
    }
}
