//! Progress of a long `sync` or `resync` on stderr: on a terminal a bar redrawn in place (records,
//! pages, rate and time so far; for a resync how much of the expected rows it has read, with an
//! ETA), and always one final plain line, so 200,000 records are not 20 seconds of silence.
//! Without a terminal only the final line is written: no carriage return, no escape code. Fed by
//! the engine's events; stdout keeps the summaries.
//!
//! The bar is hand-drawn (a carriage return and spaces, no escape codes, so every console shows it
//! alike) rather than `indicatif`, which would bring its own console crates for one line. Log
//! lines go through [`LogWriter`], which wipes the bar first so that a warning never lands on it.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use syncmon_core::{Event, EventKind, Syncmon};
use tokio::sync::broadcast::error::RecvError;

/// How often a terminal's bar is redrawn.
pub const REDRAW_EVERY: Duration = Duration::from_millis(200);

/// Characters of the bar itself between its brackets.
const BAR_CELLS: usize = 24;

/// What has been read so far.
#[derive(Debug)]
pub struct Progress {
    verb: &'static str,
    started: Instant,
    pages: u64,
    records: u64,
    failed: u64,
    /// `connection/entity` → (seen, expected, would delete) of a running resync.
    resync: BTreeMap<String, (i64, i64, i64)>,
}

impl Progress {
    pub fn new(verb: &'static str, started: Instant) -> Progress {
        Progress { verb, started, pages: 0, records: 0, failed: 0, resync: BTreeMap::new() }
    }

    pub fn on_event(&mut self, e: &Event) {
        match &e.kind {
            EventKind::PageApplied { records, failed, .. } => {
                self.pages += 1;
                self.records += *records as u64 + *failed as u64;
                self.failed += *failed as u64;
            }
            EventKind::ResyncProgress { connection, entity, seen, expected, would_delete } => {
                self.resync.insert(format!("{connection}/{entity}"), (*seen, *expected, would_delete.unwrap_or(0)));
            }
            _ => {}
        }
    }

    /// The final line: "sync: 120,000 records in 240 pages (3 failed), 12 s" and a resync's share.
    pub fn line(&self, now: Instant) -> String {
        let mut s = format!("{}: {} in {}", self.verb, counted(self.records, "record"), counted(self.pages, "page"));
        if self.failed > 0 {
            s.push_str(&format!(" ({} failed)", thousands(self.failed)));
        }
        for (entity, (seen, expected, would_delete)) in &self.resync {
            if *expected > 0 {
                s.push_str(&format!("; {entity} {} of {} read", thousands(*seen as u64), thousands(*expected as u64)));
                if *would_delete > 0 {
                    s.push_str(&format!(" ({} not seen yet: deleted at the end unless they turn up)", thousands(*would_delete as u64)));
                }
            }
        }
        s.push_str(&format!(", {:.1} s", now.duration_since(self.started).as_secs_f64()));
        s
    }

    /// The terminal's bar, at most `width` characters. With a resync's expected count:
    /// "resync [#########---------------]  38% 1,140 of 3,000 · 570/s · 2.0 s · ETA 3 s · 1,860 not seen yet";
    /// without one (a sync): "sync [/] 1,140 records · 12 pages · 570/s · 2.0 s".
    pub fn bar(&self, now: Instant, width: usize) -> String {
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let rate = if elapsed > 0.0 { self.records as f64 / elapsed } else { 0.0 };
        let (seen, expected, unseen) =
            self.resync.values().filter(|(_, e, _)| *e > 0).fold((0i64, 0i64, 0i64), |(s, e, u), (s1, e1, u1)| (s + s1, e + e1, u + u1));
        let mut parts = Vec::new();
        let head = if expected > 0 {
            let share = (seen as f64 / expected as f64).clamp(0.0, 1.0);
            let full = (share * BAR_CELLS as f64).round() as usize;
            parts.push(format!("{} of {}", thousands(seen as u64), thousands(expected as u64)));
            parts.push(format!("{}/s", thousands(rate.round() as u64)));
            parts.push(format!("{elapsed:.1} s"));
            // The rest at the rate of this run (a resumed pass's earlier records are not in it).
            if seen < expected && rate > 0.0 {
                parts.push(format!("ETA {}", rough((expected - seen) as f64 / rate)));
            }
            if unseen > 0 {
                parts.push(format!("{} not seen yet", thousands(unseen as u64)));
            }
            format!("{} [{}{}] {:>3}%", self.verb, "#".repeat(full), "-".repeat(BAR_CELLS - full), (share * 100.0).floor() as u64)
        } else {
            parts.push(counted(self.records, "record"));
            parts.push(counted(self.pages, "page"));
            parts.push(format!("{}/s", thousands(rate.round() as u64)));
            parts.push(format!("{elapsed:.1} s"));
            let turn = now.duration_since(self.started).as_millis() / REDRAW_EVERY.as_millis();
            let spin = ['|', '/', '-', '\\'][turn as usize % 4];
            format!("{} [{spin}]", self.verb)
        };
        if self.failed > 0 {
            parts.insert(1, format!("{} failed", thousands(self.failed)));
        }
        // Whole parts only, as many as fit: a wrapped line could not be redrawn in place.
        let mut s = head;
        for p in parts {
            if s.chars().count() + 3 + p.chars().count() > width {
                break;
            }
            s.push_str(if s.ends_with('%') || s.ends_with(']') { " " } else { " · " });
            s.push_str(&p);
        }
        s.chars().take(width).collect()
    }
}

/// "1 record", "2,400 pages".
fn counted(n: u64, what: &str) -> String {
    format!("{} {what}{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as people say them: "45 s", "12 min", "3 h".
fn rough(secs: f64) -> String {
    match secs.ceil() as u64 {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s.div_ceil(60)),
        s => format!("{} h", s.div_ceil(3600)),
    }
}

/// How many characters of the bar are on the terminal now (0: none), shared by the bar and
/// [`LogWriter`].
static DRAWN: Mutex<usize> = Mutex::new(0);

/// Redraws the bar: back to the line's start, the text, spaces over what the last one left.
fn draw(text: &str) {
    let mut drawn = DRAWN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let len = text.chars().count();
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{text}{}", " ".repeat(drawn.saturating_sub(len)));
    let _ = err.flush();
    *drawn = len;
}

/// Wipes the bar from its line (the cursor ends at the line's start).
fn wipe(drawn: &mut usize, err: &mut impl Write) {
    if *drawn > 0 {
        let _ = write!(err, "\r{}\r", " ".repeat(*drawn));
        *drawn = 0;
    }
}

/// Stderr for the log: wipes the bar first, which the next redraw brings back below the line.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut drawn = DRAWN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut err = std::io::stderr().lock();
        wipe(&mut drawn, &mut err);
        err.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The log layer's writer (a `MakeWriter`).
pub fn log_writer() -> LogWriter {
    LogWriter
}

/// The terminal's width in characters (stderr's), else `COLUMNS`, else 80.
fn terminal_width() -> usize {
    #[cfg(unix)]
    {
        // SAFETY: TIOCGWINSZ fills the `winsize` it is given and reads nothing else.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
            return ws.ws_col as usize;
        }
    }
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).filter(|c| *c > 0).unwrap_or(80)
}

/// Follows `sm`'s events until [`Reporter::finish`]: the bar on a terminal, the final line always.
pub struct Reporter {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Reporter {
    /// Subscribes now (before the work starts, so nothing is missed).
    pub fn start(sm: &Syncmon, verb: &'static str) -> Reporter {
        Self::start_with(sm, verb, std::io::stderr().is_terminal())
    }

    fn start_with(sm: &Syncmon, verb: &'static str, terminal: bool) -> Reporter {
        let mut events = sm.subscribe();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut p = Progress::new(verb, Instant::now());
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + REDRAW_EVERY, REDRAW_EVERY);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    ev = events.recv() => match ev {
                        Ok(e) => p.on_event(&e),
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => break,
                    },
                    // One column spare: a line that fills the last one wraps on some terminals.
                    _ = ticker.tick(), if terminal => draw(&p.bar(Instant::now(), terminal_width().saturating_sub(1).max(20))),
                }
            }
            // What is still queued belongs to the work that just ended.
            while let Ok(e) = events.try_recv() {
                p.on_event(&e);
            }
            let mut drawn = DRAWN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut err = std::io::stderr().lock();
            wipe(&mut drawn, &mut err);
            let _ = writeln!(err, "{}", p.line(Instant::now()));
        });
        Reporter { stop, task }
    }

    /// Stops following and prints the final line (in place of the bar).
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind) -> Event {
        Event { seq: 1, at: 0, kind }
    }

    fn page(records: usize, failed: usize) -> Event {
        ev(EventKind::PageApplied { connection: "c".into(), entity: "items".into(), records, failed, checkpoint: "9".into() })
    }

    fn resync(seen: i64, expected: i64, would_delete: Option<i64>) -> Event {
        ev(EventKind::ResyncProgress { connection: "c".into(), entity: "items".into(), seen, expected, would_delete })
    }

    #[test]
    fn the_line_counts_records_pages_failures_and_a_resyncs_share() {
        let t0 = Instant::now();
        let mut p = Progress::new("sync", t0);
        assert_eq!(p.line(t0), "sync: 0 records in 0 pages, 0.0 s");
        for _ in 0..2400 {
            p.on_event(&page(500, 0));
        }
        p.on_event(&page(1, 2));
        p.on_event(&resync(500, 3000, None));
        assert_eq!(p.line(t0 + Duration::from_millis(12_340)), "sync: 1,200,003 records in 2,401 pages (2 failed); c/items 500 of 3,000 read, 12.3 s");
        p.on_event(&resync(2990, 3000, Some(10)));
        assert!(p.line(t0).contains("c/items 2,990 of 3,000 read (10 not seen yet: deleted at the end unless they turn up)"), "{}", p.line(t0));
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }

    #[test]
    fn a_resyncs_bar_shows_the_share_read_the_rate_and_what_is_left() {
        let t0 = Instant::now();
        let mut p = Progress::new("resync", t0);
        for _ in 0..12 {
            p.on_event(&page(100, 0));
        }
        p.on_event(&resync(1200, 3000, Some(1800)));
        let bar = p.bar(t0 + Duration::from_secs(4), 200);
        assert_eq!(bar, "resync [##########--------------]  40% 1,200 of 3,000 · 300/s · 4.0 s · ETA 6 s · 1,800 not seen yet");
        // A narrow terminal drops whole parts from the end; it never wraps.
        let narrow = p.bar(t0 + Duration::from_secs(4), 60);
        assert_eq!(narrow, "resync [##########--------------]  40% 1,200 of 3,000");
        assert!(p.bar(t0, 10).chars().count() <= 10);
        // More than expected (the source grew): full, no ETA.
        p.on_event(&resync(3100, 3000, Some(0)));
        let bar = p.bar(t0 + Duration::from_secs(10), 200);
        assert!(bar.starts_with("resync [########################] 100% 3,100 of 3,000 · ") && !bar.contains("ETA"), "{bar}");
    }

    #[test]
    fn a_syncs_bar_counts_records_pages_and_the_rate() {
        let t0 = Instant::now();
        let mut p = Progress::new("sync", t0);
        for _ in 0..3 {
            p.on_event(&page(250, 0));
        }
        p.on_event(&page(248, 2));
        let bar = p.bar(t0 + Duration::from_secs(2), 200);
        assert_eq!(bar, "sync [-] 1,000 records · 2 failed · 4 pages · 500/s · 2.0 s");
        assert_eq!(rough(90.2), "91 s");
        assert_eq!(rough(600.0), "10 min");
        assert_eq!(rough(4.0 * 3600.0), "4 h");
    }
}
