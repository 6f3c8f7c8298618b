//! The Activity log: every event as it was emitted, kept across restarts (the `events` table)
//! and bounded ([`Store::prune_events`]: the newest [`EVENTS_KEPT`], none older than
//! [`EVENTS_RETENTION_MS`]). The store keeps an event as its JSON text and does not know its
//! shape; `events.rs` writes and reads it. Like the request log, an event is queued and written
//! with the next write: emitting one never waits for a page transaction.

use super::{Result, Store};
use rusqlite::{params, Connection};
use std::sync::Mutex;

/// At most this many events are kept, the newest.
pub const EVENTS_KEPT: i64 = 20_000;
/// Events older than 30 days are dropped.
pub const EVENTS_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// An event waiting for the next write, or one read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub at: i64,
    /// The event's `type` word (`cycle_finished`, …).
    pub kind: String,
    pub connection: Option<String>,
    pub entity: Option<String>,
    /// The whole event as JSON.
    pub body: String,
}

impl Store {
    pub(super) fn flush_events(&self, c: &mut Connection) -> Result<()> {
        let rows = std::mem::take(&mut *self.pending_events.lock().unwrap_or_else(|p| p.into_inner()));
        if rows.is_empty() {
            return Ok(());
        }
        let tx = c.transaction()?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO events (seq, at, kind, connection, entity, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
            for e in &rows {
                insert.execute(params![e.seq, e.at, e.kind, e.connection, e.entity, e.body])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Queues an event; it is written with the next write, when the store is dropped, or right
    /// away when the writer is free and events pile up. A read-only store keeps none.
    pub fn log_event(&self, e: StoredEvent) -> Result<()> {
        let Some(writer) = self.writer.as_ref() else { return Ok(()) };
        let queued = {
            let mut q = self.pending_events.lock().unwrap_or_else(|p| p.into_inner());
            q.push(e);
            q.len()
        };
        if queued >= 64 {
            if let Ok(mut c) = writer.try_lock() {
                self.flush_events(&mut c)?;
            }
        }
        Ok(())
    }

    /// Up to `limit` of the newest stored events (queued ones written first), newest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        self.flush()?;
        self.read(|c| {
            let mut q = c.prepare_cached("SELECT seq, at, kind, connection, entity, body FROM events ORDER BY id DESC LIMIT ?1")?;
            let rows = q.query_map([limit.min(i64::MAX as usize) as i64], |r| {
                Ok(StoredEvent { seq: r.get(0)?, at: r.get(1)?, kind: r.get(2)?, connection: r.get(3)?, entity: r.get(4)?, body: r.get(5)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The highest sequence number stored (0 when none), so a restarted engine numbers on.
    pub fn last_event_seq(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))?))
    }

    /// Drops events older than `older_than_ms` and all but the newest `keep`; returns how many.
    pub fn prune_events(&self, older_than_ms: i64, keep: i64) -> Result<usize> {
        self.write(|c| {
            let old = c.execute("DELETE FROM events WHERE at < ?1", [older_than_ms])?;
            let over = c.execute("DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?1", [keep])?;
            Ok(old + over)
        })
    }
}

/// Where a store keeps its queued events.
pub(super) type PendingEvents = Mutex<Vec<StoredEvent>>;

#[cfg(test)]
mod tests {
    use super::super::test_support::setup;
    use super::*;

    fn ev(seq: i64, at: i64) -> StoredEvent {
        StoredEvent { seq, at, kind: "nudged".into(), connection: Some("c".into()), entity: Some("e".into()), body: format!("{{\"seq\":{seq}}}") }
    }

    #[test]
    fn events_are_kept_newest_first_and_pruned_by_age_and_count() {
        let (_d, store, _key) = setup();
        for i in 1..=10 {
            store.log_event(ev(i, i * 1000)).unwrap();
        }
        let all = store.recent_events(100).unwrap();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=10).rev().collect::<Vec<_>>());
        assert_eq!(store.last_event_seq().unwrap(), 10);
        assert_eq!(store.recent_events(3).unwrap().len(), 3);
        // Older than 3 s: seq 1 and 2 go; then only the newest 5 stay.
        assert_eq!(store.prune_events(3000, 100).unwrap(), 2);
        assert_eq!(store.prune_events(0, 5).unwrap(), 3);
        assert_eq!(store.recent_events(100).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), vec![10, 9, 8, 7, 6]);
    }
}
