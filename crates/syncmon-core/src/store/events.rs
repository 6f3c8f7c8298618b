//! The Activity log: every event as it was emitted, kept across restarts (the `events` table)
//! and bounded ([`Store::prune_events`]: the newest [`EVENTS_KEPT`], none older than
//! [`EVENTS_RETENTION_MS`]). The store keeps an event as its JSON text and does not know its
//! shape; `events.rs` writes and reads it. Like the request log, an event is queued and written
//! with the next write: emitting one never waits for a page transaction.

use super::db::Db;
use super::{dyn_params, Result, Store};
use rusqlite::params;
use std::sync::Mutex;

/// At most this many events are kept, the newest.
pub const EVENTS_KEPT: i64 = 20_000;
/// Events older than 30 days are dropped.
pub const EVENTS_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// Most events one search returns; older ones are paged with `before_seq`.
pub const MAX_EVENTS_PAGE: usize = 5_000;

/// Which stored events a search returns: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    /// The connection the event names.
    pub connection: Option<String>,
    /// The entity (of `connection`); its connection's own events (circuit opened, …) match too.
    pub entity: Option<String>,
    /// The event's `type` word.
    pub kind: Option<String>,
    /// A case-insensitive substring of the event's JSON (a Trackingid, a record id, an error)
    /// or of its `connection/entity`; "caught up" also finds `caught_up`.
    pub text: Option<String>,
    /// From this time on, up to `until` (both ms, inclusive).
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only events numbered below this one: the page before the one shown.
    pub before_seq: Option<i64>,
    /// At most this many (and at most [`MAX_EVENTS_PAGE`]).
    pub limit: usize,
}

impl EventQuery {
    /// The text as it appears in an event's JSON, lower case (ASCII, as SQLite's `lower`), and
    /// the same with spaces as underscores (the type words); None when there is no text.
    pub fn needles(&self) -> Option<(String, String)> {
        let t = self.text.as_deref().map(str::trim).filter(|t| !t.is_empty())?;
        let quoted = serde_json::to_string(&t.to_ascii_lowercase()).unwrap_or_default();
        let inner = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default().to_string();
        let underscored = inner.replace(' ', "_");
        Some((inner, underscored))
    }

    /// Whether an event (its fields and its JSON) matches, as [`Store::find_events`] decides.
    pub fn matches(&self, seq: i64, at: i64, kind: &str, connection: Option<&str>, entity: Option<&str>, body: &str) -> bool {
        let text_ok = || {
            self.needles().is_none_or(|(a, b)| {
                let lower = body.to_ascii_lowercase();
                let named = format!("{}/{}", connection.unwrap_or_default(), entity.unwrap_or_default()).to_ascii_lowercase();
                lower.contains(&a) || lower.contains(&b) || named.contains(&a)
            })
        };
        self.connection.as_deref().is_none_or(|c| connection == Some(c))
            && self.entity.as_deref().is_none_or(|e| entity.is_none_or(|x| x == e))
            && self.kind.as_deref().is_none_or(|k| k == kind)
            && self.since.is_none_or(|s| at >= s)
            && self.until.is_none_or(|u| at <= u)
            && self.before_seq.is_none_or(|b| seq < b)
            && text_ok()
    }
}

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
    pub(super) fn flush_events(&self, c: &Db) -> Result<()> {
        let rows = std::mem::take(&mut *self.pending_events.lock().unwrap_or_else(|p| p.into_inner()));
        if rows.is_empty() {
            return Ok(());
        }
        let tx = c.transaction()?;
        {
            let insert = tx.prepare("INSERT INTO events (seq, at, kind, connection, entity, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
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
            if let Ok(c) = writer.try_lock() {
                self.flush_events(&c)?;
            }
        }
        Ok(())
    }

    /// Up to `limit` of the newest stored events (queued ones written first), newest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        Ok(self.find_events(&EventQuery { limit, ..Default::default() })?.0)
    }

    /// The newest stored events that match `q` (queued ones written first), newest first by
    /// sequence number, and whether older ones match too.
    pub fn find_events(&self, q: &EventQuery) -> Result<(Vec<StoredEvent>, bool)> {
        self.flush()?;
        use rusqlite::types::Value;
        let mut conditions: Vec<&str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let mut add = |sql: &'static str, vs: Vec<Value>| {
            conditions.push(sql);
            values.extend(vs);
        };
        if let Some(c) = &q.connection {
            add("connection = ?", vec![c.clone().into()]);
        }
        if let Some(e) = &q.entity {
            // An entity's own events and its connection's (circuit opened, closed).
            add("(entity = ? OR entity IS NULL)", vec![e.clone().into()]);
        }
        if let Some(k) = &q.kind {
            add("kind = ?", vec![k.clone().into()]);
        }
        if let Some((a, b)) = q.needles() {
            add(
                "(instr(lower(body), ?) > 0 OR instr(lower(body), ?) > 0 OR instr(lower(coalesce(connection, '') || '/' || coalesce(entity, '')), ?) > 0)",
                vec![a.clone().into(), b.into(), a.into()],
            );
        }
        if let Some(s) = q.since {
            add("at >= ?", vec![s.into()]);
        }
        if let Some(u) = q.until {
            add("at <= ?", vec![u.into()]);
        }
        if let Some(b) = q.before_seq {
            add("seq < ?", vec![b.into()]);
        }
        let mut sql = String::from("SELECT seq, at, kind, connection, entity, body FROM events");
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(" ORDER BY seq DESC, id DESC LIMIT ?");
        let limit = q.limit.min(MAX_EVENTS_PAGE);
        values.push(((limit + 1) as i64).into());
        self.read(|c| {
            let mut rows = c.query_all(&sql, &dyn_params(&values), |r| {
                Ok(StoredEvent { seq: r.get(0)?, at: r.get(1)?, kind: r.get(2)?, connection: r.get(3)?, entity: r.get(4)?, body: r.get(5)? })
            })?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            Ok((rows, more))
        })
    }

    /// The highest sequence number stored (0 when none), so a restarted engine numbers on.
    pub fn last_event_seq(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT coalesce(max(seq), 0) FROM events", params![], |r| r.get(0))?))
    }

    /// Drops events older than `older_than_ms` and all but the newest `keep`; returns how many.
    pub fn prune_events(&self, older_than_ms: i64, keep: i64) -> Result<usize> {
        self.write(|c| {
            let old = c.execute("DELETE FROM events WHERE at < ?1", params![older_than_ms])?;
            let over = c.execute("DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?1", params![keep])?;
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

    fn named(seq: i64, kind: &str, connection: &str, entity: Option<&str>, body: &str) -> StoredEvent {
        StoredEvent { seq, at: seq * 1000, kind: kind.into(), connection: Some(connection.into()), entity: entity.map(String::from), body: body.into() }
    }

    /// Searches run in the store: by entity (its connection's own events too), type, text in
    /// the JSON (any case, "caught up" for `caught_up`), time, and paged back by sequence number,
    /// saying whether older matches exist.
    #[test]
    fn events_are_searched_by_entity_type_text_time_and_paged_back() {
        let (_d, store, _key) = setup();
        store.log_event(named(1, "cycle_finished", "src", Some("items"), r#"{"type":"cycle_finished","outcome":"caught_up","tracking_id":"AB-77"}"#)).unwrap();
        for seq in 2..=9 {
            store.log_event(named(seq, "page_applied", "src", Some("items"), r#"{"type":"page_applied","records":100}"#)).unwrap();
        }
        store.log_event(named(10, "circuit_opened", "src", None, r#"{"type":"circuit_opened","error":"Say \"no\""}"#)).unwrap();
        store.log_event(named(11, "page_applied", "src", Some("orders"), r#"{"type":"page_applied","records":5}"#)).unwrap();
        store.log_event(named(12, "nudged", "other", Some("items"), r#"{"type":"nudged"}"#)).unwrap();
        let seqs = |q: EventQuery| {
            let (rows, more) = store.find_events(&EventQuery { limit: q.limit.max(1), ..q }).unwrap();
            (rows.iter().map(|e| e.seq).collect::<Vec<_>>(), more)
        };
        let items = || EventQuery { connection: Some("src".into()), entity: Some("items".into()), limit: 100, ..Default::default() };
        assert_eq!(seqs(items()).0, vec![10, 9, 8, 7, 6, 5, 4, 3, 2, 1], "src/items and src's circuit, not src/orders nor other/items");
        assert_eq!(seqs(EventQuery { connection: Some("src".into()), limit: 100, ..Default::default() }).0.len(), 11);
        assert_eq!(seqs(EventQuery { kind: Some("page_applied".into()), limit: 100, ..Default::default() }).0, vec![11, 9, 8, 7, 6, 5, 4, 3, 2]);
        assert_eq!(seqs(EventQuery { text: Some("ab-77".into()), limit: 100, ..Default::default() }), (vec![1], false), "a Trackingid, any case");
        assert_eq!(seqs(EventQuery { text: Some(" Caught Up ".into()), limit: 100, ..Default::default() }).0, vec![1]);
        assert_eq!(seqs(EventQuery { text: Some("say \"no\"".into()), limit: 100, ..Default::default() }).0, vec![10], "quotes as the JSON has them");
        assert_eq!(seqs(EventQuery { text: Some("nothing like it".into()), limit: 100, ..Default::default() }), (vec![], false));
        assert_eq!(seqs(EventQuery { text: Some("SRC/Orders".into()), limit: 100, ..Default::default() }).0, vec![11], "the entity as people write it");
        assert_eq!(seqs(EventQuery { since: Some(3000), until: Some(5000), ..items() }).0, vec![5, 4, 3]);
        // Paging back: three at a time, then the three before the oldest shown.
        assert_eq!(seqs(EventQuery { limit: 3, ..items() }), (vec![10, 9, 8], true));
        assert_eq!(seqs(EventQuery { limit: 3, before_seq: Some(8), ..items() }), (vec![7, 6, 5], true));
        assert_eq!(seqs(EventQuery { limit: 3, before_seq: Some(4), ..items() }), (vec![3, 2, 1], false), "none older");
        // The in-memory check agrees with the store's.
        let q = EventQuery { text: Some("caught up".into()), ..items() };
        assert!(q.matches(1, 1000, "cycle_finished", Some("src"), Some("items"), r#"{"outcome":"CAUGHT_UP"}"#));
        assert!(q.matches(1, 1000, "cycle_finished", Some("src"), None, r#"{"outcome":"caught_up"}"#), "the connection's own event");
        assert!(!q.matches(1, 1000, "cycle_finished", Some("src"), Some("orders"), r#"{"outcome":"caught_up"}"#));
        assert!(!q.matches(1, 1000, "cycle_finished", Some("src"), Some("items"), r#"{"outcome":"failed"}"#));
        let named = EventQuery { text: Some("src/ITEMS".into()), ..Default::default() };
        assert!(named.matches(1, 1000, "nudged", Some("src"), Some("items"), "{}"));
    }
}
