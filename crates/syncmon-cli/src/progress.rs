//! Progress of a long `sync` or `resync` on stderr: on a terminal a line every 2 seconds (records
//! and pages so far, and a resync's "n of m"), and always one final line, so 200,000 records are
//! not 20 seconds of silence. Fed by the engine's events; stdout keeps the summaries.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use syncmon_core::{Event, EventKind, Syncmon};
use tokio::sync::broadcast::error::RecvError;

/// How often a terminal gets a progress line.
pub const EVERY: Duration = Duration::from_secs(2);

/// What has been read so far.
#[derive(Debug)]
pub struct Progress {
    verb: &'static str,
    started: Instant,
    pages: u64,
    records: u64,
    failed: u64,
    /// `connection/entity` → (seen, expected) of a running resync.
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

    /// "sync: 120,000 records in 240 pages (3 failed), 12 s" and a resync's share.
    pub fn line(&self, now: Instant) -> String {
        let mut s = format!(
            "{}: {} record{} in {} page{}",
            self.verb,
            thousands(self.records),
            if self.records == 1 { "" } else { "s" },
            thousands(self.pages),
            if self.pages == 1 { "" } else { "s" }
        );
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

/// Follows `sm`'s events until [`Reporter::finish`]: progress lines on a terminal, the final
/// line always.
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
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    ev = events.recv() => match ev {
                        Ok(e) => p.on_event(&e),
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => break,
                    },
                    _ = ticker.tick(), if terminal => eprintln!("{}", p.line(Instant::now())),
                }
            }
            // What is still queued belongs to the work that just ended.
            while let Ok(e) = events.try_recv() {
                p.on_event(&e);
            }
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}", p.line(Instant::now()));
        });
        Reporter { stop, task }
    }

    /// Stops following and prints the final line.
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

    #[test]
    fn the_line_counts_records_pages_failures_and_a_resyncs_share() {
        let t0 = Instant::now();
        let mut p = Progress::new("sync", t0);
        assert_eq!(p.line(t0), "sync: 0 records in 0 pages, 0.0 s");
        for _ in 0..2400 {
            p.on_event(&ev(EventKind::PageApplied { connection: "c".into(), entity: "items".into(), records: 500, failed: 0, checkpoint: "9".into() }));
        }
        p.on_event(&ev(EventKind::PageApplied { connection: "c".into(), entity: "items".into(), records: 1, failed: 2, checkpoint: "9".into() }));
        p.on_event(&ev(EventKind::ResyncProgress { connection: "c".into(), entity: "items".into(), seen: 500, expected: 3000, would_delete: None }));
        assert_eq!(p.line(t0 + Duration::from_millis(12_340)), "sync: 1,200,003 records in 2,401 pages (2 failed); c/items 500 of 3,000 read, 12.3 s");
        p.on_event(&ev(EventKind::ResyncProgress { connection: "c".into(), entity: "items".into(), seen: 2990, expected: 3000, would_delete: Some(10) }));
        assert!(p.line(t0).contains("c/items 2,990 of 3,000 read (10 not seen yet: deleted at the end unless they turn up)"), "{}", p.line(t0));
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }
}
