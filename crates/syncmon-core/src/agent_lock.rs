//! One agent per data directory: an exclusive OS file lock on `<data dir>/agent.lock`, held for
//! the agent's lifetime. Two agents on one replica would fight over the same checkpoints and
//! make each other's cycles fail "database is locked".
//!
//! The lock is the kernel's (`flock` on Unix, `LockFileEx` on Windows), not the file's existence:
//! the OS releases it when the holder exits however it exits (SIGKILL, a crash, power loss), so
//! a stale file never blocks the next agent. The file only tells a refused agent who holds the
//! lock (PID, host, start time); it is never deleted, since unlinking a lock file while another
//! process opens it would let two holders lock two different files.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "agent.lock";

/// Held while the agent runs; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct AgentLock {
    _file: File,
    path: PathBuf,
}

/// Who holds the lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub started_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another agent holds the lock. `holder` is its description ("PID 4242 on host shop-pc,
    /// since 09:14"), or says it is unknown.
    #[error("another Syncmon agent ({holder}) is using {}; stop it first, or use --data-dir for a separate replica", dir.display())]
    Held { holder: String, dir: PathBuf },
    #[error("cannot take the agent lock {}: {message}", path.display())]
    Io { path: PathBuf, message: String },
}

impl AgentLock {
    /// Takes the lock of `data_dir` (created if needed) without waiting, and records this
    /// process as the holder.
    pub fn acquire(data_dir: &Path, now_ms: i64) -> Result<AgentLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |e: std::io::Error| LockError::Io { path: path.clone(), message: e.to_string() };
        crate::store::create_private_dir(data_dir).map_err(io)?;
        // No truncation on open: the file may hold the current holder's details. Owner-only, like
        // everything else in the data directory.
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(LockError::Held { holder: describe(read_holder(&mut file).as_ref()), dir: data_dir.to_path_buf() }),
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let holder = Holder { pid: std::process::id(), host: host_name(), started_at_ms: now_ms };
        let text = format!("pid={}\nhost={}\nstarted_at_ms={}\n", holder.pid, holder.host, holder.started_at_ms);
        file.set_len(0).and_then(|_| file.seek(SeekFrom::Start(0))).and_then(|_| file.write_all(text.as_bytes())).map_err(io)?;
        Ok(AgentLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The holder recorded in `data_dir`'s lock file, if the file exists and is readable (it may
    /// be stale: only a failed [`AgentLock::acquire`] proves that someone holds the lock).
    pub fn recorded_holder(data_dir: &Path) -> Option<Holder> {
        parse_holder(&std::fs::read_to_string(data_dir.join(LOCK_FILE)).ok()?)
    }
}

/// Reads the holder's details. The holder writes them right after locking, so a refused agent
/// that comes in between finds the file empty: a few short, bounded retries cover that.
fn read_holder(file: &mut File) -> Option<Holder> {
    for _ in 0..10 {
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_ok() && file.read_to_string(&mut text).is_ok() {
            if let Some(h) = parse_holder(&text) {
                return Some(h);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

fn parse_holder(text: &str) -> Option<Holder> {
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('=')).map(str::trim);
    Some(Holder { pid: field("pid")?.parse().ok()?, host: field("host")?.to_string(), started_at_ms: field("started_at_ms")?.parse().ok()? })
}

/// "PID 4242 on host shop-pc, since 09:14" (local time; with the date when not today).
fn describe(holder: Option<&Holder>) -> String {
    match holder {
        Some(h) => format!("PID {} on host {}, since {}", h.pid, h.host, local_time(h.started_at_ms)),
        None => "its PID and host could not be read".to_string(),
    }
}

/// Formats a time in the local time zone. SQLite's `localtime` does the time-zone work, so the
/// engine needs no date library for one message.
fn local_time(ms: i64) -> String {
    let formatted = rusqlite::Connection::open_in_memory().and_then(|c| {
        c.query_row(
            "SELECT CASE WHEN date(?1, 'unixepoch', 'localtime') = date('now', 'localtime')
                    THEN strftime('%H:%M', ?1, 'unixepoch', 'localtime')
                    ELSE strftime('%Y-%m-%d %H:%M', ?1, 'unixepoch', 'localtime') END",
            [ms / 1000],
            |r| r.get::<_, String>(0),
        )
    });
    formatted.unwrap_or_else(|_| format!("unix time {}", ms / 1000))
}

/// This machine's name, without a dependency: the kernel's on Linux, else the usual variables.
pub(crate) fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .chain(["HOSTNAME", "COMPUTERNAME"].iter().filter_map(|v| std::env::var(v).ok()))
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = AgentLock::acquire(dir.path(), 1_700_000_000_000).unwrap();
        let err = AgentLock::acquire(dir.path(), 1_700_000_000_000).unwrap_err().to_string();
        assert!(err.contains(&format!("PID {} on host {}", std::process::id(), host_name())), "{err}");
        assert!(err.contains(&dir.path().display().to_string()) && err.contains("--data-dir"), "{err}");
        drop(first);
        let again = AgentLock::acquire(dir.path(), 1_700_000_100_000).unwrap();
        assert_eq!(AgentLock::recorded_holder(dir.path()).unwrap().started_at_ms, 1_700_000_100_000);
        drop(again);
    }
}
