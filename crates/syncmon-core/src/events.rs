//! The event stream front ends subscribe to. Every event has a sequence number, so a client
//! that sees a gap (it lagged behind the channel) knows to refetch the state. An engine on a
//! store also keeps every event there (`store/events.rs`), so Activity and the diagnostics
//! bundle show what happened before a restart; the sequence numbers carry on from the stored.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

use crate::clock::Clock;
use crate::metrics::EngineMetrics;
use crate::state::{Outcome, RunKind};
use crate::store::{EventQuery, Store, StoredEvent, MAX_EVENTS_PAGE};

/// How many recent events `EventBus::recent` keeps in memory (an engine without a store).
pub const RECENT_EVENTS: usize = 1000;

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct Event {
    pub seq: u64,
    pub at: i64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    CycleStarted {
        connection: String,
        entity: String,
        kind: RunKind,
        /// The checkpoint it reads from, as people read it (a timestamp feed's as a date).
        from: String,
    },
    PageApplied {
        connection: String,
        entity: String,
        records: usize,
        failed: usize,
        /// The page's highest version, as people read it (a timestamp feed's as a date).
        checkpoint: String,
    },
    /// A batch pushed to `POST /ingest` has been applied (its correlation id is `batch`).
    IngestApplied {
        connection: String,
        entity: String,
        batch: String,
        /// Records in the batch, the failed ones included.
        records: usize,
        failed: usize,
        /// `applied` or `partly_failed`, as `syncmon ingest show` says.
        state: String,
    },
    Retrying {
        connection: String,
        entity: String,
        attempt: u32,
        wait_ms: u64,
        reason: String,
        http_status: Option<u16>,
        tracking_id: Option<String>,
    },
    CycleFinished {
        connection: String,
        entity: String,
        outcome: Outcome,
        records: u64,
        error: Option<String>,
        tracking_id: Option<String>,
    },
    FailedItemsAdded {
        connection: String,
        entity: String,
        count: usize,
    },
    /// A full resync (or snapshot pass) under way: `seen` records read by the whole pass so far,
    /// of about `expected` (the replica's rows when the cycle began).
    ResyncProgress {
        connection: String,
        entity: String,
        seen: i64,
        expected: i64,
        /// The replica rows the pass has not seen yet, which it deletes at its end unless the
        /// rest of the feed names them; None for a snapshot feed.
        would_delete: Option<i64>,
    },
    /// A verify under way (`syncmon verify`, the app's Verify button): pages and records read so
    /// far, and what it found missing or stale in them (the extra rows are counted at its end).
    VerifyProgress {
        connection: String,
        entity: String,
        pages: u64,
        records: u64,
        missing: u64,
        stale: u64,
    },
    DeletionGuardTripped {
        connection: String,
        entity: String,
        would_delete: i64,
        live: i64,
    },
    CircuitOpened {
        connection: String,
        until: i64,
        error: String,
    },
    CircuitClosed {
        connection: String,
    },
    Nudged {
        connection: String,
        entity: String,
    },
    /// Several agents on one PostgreSQL replica: `agent` now holds the entity (it started, or
    /// took the entity over from an agent that stopped or died).
    LeaseTaken {
        connection: String,
        entity: String,
        agent: String,
    },
    /// A bulk replay of failed items: `done` of `total` processed so far.
    ReplayProgress {
        done: usize,
        total: usize,
        replayed: usize,
        superseded: usize,
        still_failing: usize,
    },
    /// A delivery pass to the entity's target: what went out, what failed, what is left and why.
    Forwarded {
        connection: String,
        entity: String,
        target: String,
        delivered: u64,
        failed: u64,
        pending: i64,
        error: Option<String>,
    },
    /// A record of a two-way pair changed on both systems and the entity's policy (or a person)
    /// kept one side: `kept` is that connection, whose version goes to the other.
    ConflictSettled {
        connection: String,
        entity: String,
        record_id: String,
        kept: String,
        policy: String,
    },
}

pub struct EventBus {
    tx: broadcast::Sender<Event>,
    seq: AtomicU64,
    clock: Arc<dyn Clock>,
    /// The last `RECENT_EVENTS` events, so a screen opened late still shows what happened.
    recent: Mutex<VecDeque<Event>>,
    /// Where events are kept across restarts; `recent` reads them from there.
    store: Option<Arc<Store>>,
    /// The Prometheus counters fed by every event (`metrics.rs`).
    metrics: EngineMetrics,
}

impl EventBus {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        EventBus {
            tx: broadcast::channel(4096).0,
            seq: AtomicU64::new(0),
            clock,
            recent: Mutex::new(VecDeque::with_capacity(RECENT_EVENTS)),
            store: None,
            metrics: EngineMetrics::default(),
        }
    }

    /// A bus that keeps its events in `store` (a writable one stores them, a read-only one only
    /// reads them) and numbers on from the last stored event.
    pub fn persisted(clock: Arc<dyn Clock>, store: Arc<Store>) -> Self {
        let last = store.last_event_seq().unwrap_or_else(|e| {
            tracing::warn!("cannot read the stored activity: {e}");
            0
        });
        let bus = EventBus { store: Some(store), ..Self::new(clock) };
        bus.seq.store(last.max(0) as u64, Ordering::Relaxed);
        bus
    }

    /// The bus counts into `metrics` (shared with the engine's HTTP clients).
    pub(crate) fn with_metrics(self, metrics: EngineMetrics) -> Self {
        EventBus { metrics, ..self }
    }

    pub(crate) fn metrics(&self) -> &EngineMetrics {
        &self.metrics
    }

    pub fn emit(&self, kind: EventKind) {
        self.metrics.observe_event(&kind);
        let event = Event { seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1, at: self.clock.now_ms(), kind };
        tracing::debug!(?event, "event");
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() == RECENT_EVENTS {
                recent.pop_front();
            }
            recent.push_back(event.clone());
        }
        if let Some(store) = &self.store {
            if let Err(e) =
                serde_json::to_string(&event).map_err(|e| e.to_string()).and_then(|body| store.log_event(stored(&event, body)).map_err(|e| e.to_string()))
            {
                tracing::warn!("cannot keep an event in the activity log: {e}");
            }
        }
        // No subscriber is fine: events are for whoever is watching.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Up to `limit` of the most recent events, newest first: the stored ones (those of earlier
    /// runs too) when the bus has a store, else the last [`RECENT_EVENTS`] of this process.
    pub fn recent(&self, limit: usize) -> Vec<Event> {
        self.search(&EventQuery { limit, ..Default::default() }).0
    }

    /// The newest events matching `q`, newest first, and whether older ones match too: searched
    /// in the store when the bus has one, else in this process's last [`RECENT_EVENTS`].
    pub fn search(&self, q: &EventQuery) -> (Vec<Event>, bool) {
        if let Some(store) = &self.store {
            match store.find_events(q) {
                // An event this build cannot read (written by another version) is left out.
                Ok((rows, more)) => return (rows.into_iter().filter_map(|r| serde_json::from_str(&r.body).ok()).collect(), more),
                Err(e) => tracing::warn!("cannot read the stored activity, showing this run's: {e}"),
            }
        }
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let limit = q.limit.min(MAX_EVENTS_PAGE);
        let mut found = recent.iter().rev().filter(|e| {
            let body = serde_json::to_string(e).unwrap_or_default();
            let row = stored(e, body);
            q.matches(row.seq, row.at, &row.kind, row.connection.as_deref(), row.entity.as_deref(), &row.body)
        });
        let page: Vec<Event> = found.by_ref().take(limit).cloned().collect();
        let more = found.next().is_some();
        (page, more)
    }
}

/// The row kept for `event`: its type word, entity and JSON alongside.
fn stored(event: &Event, body: String) -> StoredEvent {
    let kind = serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v["type"].as_str().map(String::from)).unwrap_or_default();
    let (connection, entity) = event.kind.entity();
    StoredEvent { seq: event.seq as i64, at: event.at, kind, connection: connection.map(String::from), entity: entity.map(String::from), body }
}

impl EventKind {
    /// The connection and entity the event is about, when it names them.
    pub fn entity(&self) -> (Option<&str>, Option<&str>) {
        use EventKind::*;
        match self {
            CycleStarted { connection, entity, .. }
            | PageApplied { connection, entity, .. }
            | IngestApplied { connection, entity, .. }
            | Retrying { connection, entity, .. }
            | CycleFinished { connection, entity, .. }
            | FailedItemsAdded { connection, entity, .. }
            | ResyncProgress { connection, entity, .. }
            | DeletionGuardTripped { connection, entity, .. }
            | Nudged { connection, entity, .. }
            | LeaseTaken { connection, entity, .. }
            | Forwarded { connection, entity, .. }
            | ConflictSettled { connection, entity, .. }
            | VerifyProgress { connection, entity, .. } => (Some(connection), Some(entity)),
            CircuitOpened { connection, .. } | CircuitClosed { connection } => (Some(connection), None),
            ReplayProgress { .. } => (None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_thousand_newest_first() {
        let bus = EventBus::new(Arc::new(crate::clock::SystemClock));
        for _ in 0..(RECENT_EVENTS + 5) {
            bus.emit(EventKind::CircuitClosed { connection: "c".into() });
        }
        let all = bus.recent(usize::MAX);
        assert_eq!(all.len(), RECENT_EVENTS);
        assert_eq!(all[0].seq, (RECENT_EVENTS + 5) as u64);
        assert_eq!(all.last().unwrap().seq, 6);
        assert_eq!(bus.recent(3).len(), 3);
    }
}
