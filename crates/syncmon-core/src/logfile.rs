//! The log file of the agent and the desktop app: `<data dir>/logs/<name>.log`, rotated by size
//! (`<name>.log.1` … `.N`, the oldest dropped), written without colour codes and with every URL
//! credential redacted ([`crate::redact`]) as a last pass. A program started from a menu has no
//! terminal: this file is where its output goes, and the diagnostics bundle reads its recent
//! lines ([`recent_lines`]). The front ends plug a [`RotatingFile`] into their `tracing`
//! subscriber (it is an `io::Write`); nothing here depends on a subscriber.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The log folder inside a data directory.
pub const LOG_DIR: &str = "logs";
/// A log file is rotated once it would pass this size.
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Rotated files kept beside the current one.
pub const KEEP: usize = 3;

/// `<data dir>/logs`.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(LOG_DIR)
}

/// `<data dir>/logs/<name>.log`, the default log file of a front end (`agent`, `desktop`).
pub fn default_log_file(data_dir: &Path, name: &str) -> PathBuf {
    log_dir(data_dir).join(format!("{name}.log"))
}

/// An append-only file that moves itself to `.1` (and `.1` to `.2`, …) when full.
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: usize,
    /// The start of a line not yet ended by a newline.
    partial: Vec<u8>,
}

impl RotatingFile {
    /// Opens (creating the folder, private, and the file, mode 0600) `path` for appending.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<RotatingFile> {
        if let Some(dir) = path.parent() {
            crate::store::create_private_dir(dir)?;
        }
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile { path: path.to_path_buf(), file, size, max_bytes: max_bytes.max(1), keep, partial: Vec::new() })
    }

    /// The file being written now.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.keep == 0 {
            self.file = File::create(&self.path)?;
        } else {
            let _ = std::fs::remove_file(numbered(self.keep));
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            std::fs::rename(&self.path, numbered(1))?;
            self.file = open_append(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

impl RotatingFile {
    fn write_line(&mut self, raw: &[u8]) -> io::Result<()> {
        let line = strip_ansi(&crate::redact::redact_url_text(&String::from_utf8_lossy(raw)));
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

impl Write for RotatingFile {
    /// Whole lines are written, each redacted and never split across two files; the start of
    /// a line waits for its end (or a flush).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.write_line(&line)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.write_line(&rest)?;
        }
        self.file.flush()
    }
}

impl Drop for RotatingFile {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// The text without terminal colour codes (`ESC [ … m`), should a layer still add them.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last `max_lines` lines of the log files in `dir`, oldest first, each file's lines under a
/// `==> name <==` heading (the rotated files before the current ones). Empty when there are none.
pub fn recent_lines(dir: &Path, max_lines: usize) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else { return String::new() };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.contains(".log")))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    // Newest first, so the lines taken are the newest; written out oldest first.
    files.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut parts: Vec<(String, Vec<String>)> = Vec::new();
    let mut left = max_lines;
    for (_, path) in files {
        if left == 0 {
            break;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let lines: Vec<&str> = text.lines().collect();
        let take = lines.len().min(left);
        left -= take;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        parts.push((name, lines[lines.len() - take..].iter().map(|l| l.to_string()).collect()));
    }
    let mut out = String::new();
    for (name, lines) in parts.into_iter().rev() {
        out.push_str(&format!("==> {name} <==\n"));
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_keeps_n_files_and_redacts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs").join("agent.log");
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..20 {
            writeln!(f, "\u{1b}[32m INFO\u{1b}[0m line {i:02} GET http://h/items?api_key=s3cr3t&page=2").unwrap();
        }
        f.flush().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["agent.log", "agent.log.1", "agent.log.2"]);
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.len() <= 100 && current.contains("line 19"), "{current}");
        let all = recent_lines(path.parent().unwrap(), 1000);
        assert!(!all.contains("s3cr3t") && !all.contains('\u{1b}'), "{all}");
        assert!(!all.contains("line 00"), "the oldest went with the rotation: {all}");
        let last = recent_lines(path.parent().unwrap(), 1);
        assert!(last.contains("line 19 GET http://h/items?api_key=REDACTED&page=2"), "{last}");
        assert_eq!(last.lines().count(), 2, "a heading and one line: {last}");
    }
}
