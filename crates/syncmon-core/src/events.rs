//! The event stream front ends subscribe to. Every event has a sequence number, so a client
//! that sees a gap (it lagged behind the channel) knows to refetch the state.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

use crate::clock::Clock;
use crate::state::{Outcome, RunKind};

/// How many recent events `EventBus::recent` keeps for the Activity screen.
pub const RECENT_EVENTS: usize = 1000;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Event {
    pub seq: u64,
    pub at: i64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
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
}

impl EventBus {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        EventBus { tx: broadcast::channel(4096).0, seq: AtomicU64::new(0), clock, recent: Mutex::new(VecDeque::with_capacity(RECENT_EVENTS)) }
    }

    pub fn emit(&self, kind: EventKind) {
        let event = Event { seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1, at: self.clock.now_ms(), kind };
        tracing::debug!(?event, "event");
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() == RECENT_EVENTS {
                recent.pop_front();
            }
            recent.push_back(event.clone());
        }
        // No subscriber is fine: events are for whoever is watching.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Up to `limit` of the most recent events, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Event> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().rev().take(limit).cloned().collect()
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
