//! The machine a run was made on, printed above every table: figures only mean something
//! next to the hardware that produced them.

use std::fmt;

/// CPU count, CPU model and memory of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// CPUs this process may use.
    pub cpus: usize,
    /// The CPU model (`model name` of `/proc/cpuinfo`), when known.
    pub cpu_model: Option<String>,
    /// Total memory in bytes (`MemTotal` of `/proc/meminfo`), when known.
    pub memory_bytes: Option<u64>,
}

impl Machine {
    /// Describe this machine (Linux `/proc` where available).
    pub fn this() -> Self {
        let read = |path| std::fs::read_to_string(path).unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: cpu_model(&read("/proc/cpuinfo")),
            memory_bytes: mem_total(&read("/proc/meminfo")),
        }
    }
}

/// The first `model name` of a `/proc/cpuinfo` text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} CPUs, {}, ",
            self.cpus,
            self.cpu_model.as_deref().unwrap_or("unknown CPU")
        )?;
        match self.memory_bytes {
            Some(bytes) => write!(f, "{:.1} GiB memory", bytes as f64 / (1u64 << 30) as f64),
            None => write!(f, "unknown memory"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_texts_are_read() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Example CPU @ 2.00GHz\nflags\t: x\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("Example CPU @ 2.00GHz"));
        assert_eq!(
            mem_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24_576_000 * 1024)
        );
        let machine = Machine {
            cpus: 2,
            cpu_model: Some("X".into()),
            memory_bytes: Some(3 << 30),
        };
        assert_eq!(machine.to_string(), "2 CPUs, X, 3.0 GiB memory");
    }
}
