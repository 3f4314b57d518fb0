//! The client's state folder as a whole: where it is by default, its permissions (the
//! folder 0700, every file in it 0600: `client.json` holds the bearer token, `mls.redb`
//! the private keys) and the lock that lets one command at a time use it (rule
//! CL-STATE-1, with `store.rs` and `config.rs`; docs/protocol-coverage.md).
//!
//! A second command on the same folder waits for the first to finish (up to
//! [`LOCK_TIMEOUT`]) instead of failing on the MLS store's own lock. The lock is an
//! advisory exclusive lock on the file [`LOCK_FILE`]: the operating system releases it when
//! the holding process ends, however it ends, so a crash leaves no stale lock.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::ClientError;

/// The lock file in a client's folder.
pub const LOCK_FILE: &str = "lock";
/// How long a command waits for another command on the same folder to finish.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a waiting command tries the lock again.
pub const LOCK_POLL: Duration = Duration::from_millis(20);
/// The folder's name under the user's data directory when no `--dir` or `MIMI_DIR` names
/// one (`~/.local/share/mimi` on Linux).
pub const DEFAULT_FOLDER_NAME: &str = "mimi";
/// Permissions of the state folder (owner only).
pub const FOLDER_MODE: u32 = 0o700;
/// Permissions of every file in it (owner read and write).
pub const FILE_MODE: u32 = 0o600;

/// The default state folder: `<data dir>/mimi` (`$XDG_DATA_HOME/mimi` or
/// `~/.local/share/mimi` on Linux), if the platform has a data directory.
pub fn default_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join(DEFAULT_FOLDER_NAME))
}

/// `path` made absolute against the current directory (not resolving links), so that a
/// stored path works from any working directory.
pub fn absolute(path: &Path) -> Result<PathBuf, ClientError> {
    std::path::absolute(path).map_err(ClientError::io(path))
}

/// Create the folder (and its parents) if needed and restrict it to its owner.
pub fn create(dir: &Path) -> Result<(), ClientError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, FOLDER_MODE);
    builder.create(dir).map_err(ClientError::io(dir))?;
    restrict(dir, FOLDER_MODE)
}

/// Set `path`'s permissions to `mode` (Unix; elsewhere nothing).
pub fn restrict(path: &Path, mode: u32) -> Result<(), ClientError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(ClientError::io(path))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Restrict every regular file directly in the folder to [`FILE_MODE`] (the MLS store is
/// created by `mimi-e2e` with the default permissions).
pub fn restrict_files(dir: &Path) -> Result<(), ClientError> {
    let entries = std::fs::read_dir(dir).map_err(ClientError::io(dir))?;
    for entry in entries {
        let entry = entry.map_err(ClientError::io(dir))?;
        let path = entry.path();
        if entry.file_type().map_err(ClientError::io(&path))?.is_file() {
            restrict(&path, FILE_MODE)?;
        }
    }
    Ok(())
}

/// Options that create a file readable and writable by its owner only.
pub fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// The held lock of a state folder; dropping it releases the lock.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Take the folder's lock, waiting up to `timeout` for another command to release it
    /// ([`ClientError::StateLocked`] then). `waiting` is called once if the lock is busy,
    /// before the wait (for a message to the user).
    pub async fn acquire(
        dir: &Path,
        timeout: Duration,
        waiting: impl FnOnce(),
    ) -> Result<StateLock, ClientError> {
        let path = dir.join(LOCK_FILE);
        let file = private_file_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(ClientError::io(&path))?;
        let start = Instant::now();
        let mut waiting = Some(waiting);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StateLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(ClientError::io(&path)(e)),
            }
            if start.elapsed() >= timeout {
                return Err(ClientError::StateLocked {
                    dir: dir.to_owned(),
                    waited_secs: timeout.as_secs(),
                });
            }
            if let Some(f) = waiting.take() {
                f();
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }
}
