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
    fn this_process_has_a_peak_rss() {
        let bytes = peak_rss_bytes(std::process::id()).unwrap();
        assert!(bytes > 0);
    }
}
