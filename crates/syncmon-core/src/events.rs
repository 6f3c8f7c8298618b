//! The event stream front ends subscribe to. Every event has a sequence number, so a client
//! that sees a gap (it lagged behind the channel) knows to refetch the state.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;

use crate::Clock;

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub seq: u64,
    pub at: i64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    CycleStarted { connection: String, entity: String, kind: String, from: String },
    PageApplied { connection: String, entity: String, records: usize, failed: usize, checkpoint: String },
    Retrying { connection: String, entity: String, attempt: u32, wait_ms: u64, reason: String, http_status: Option<u16>, tracking_id: Option<String> },
    CycleFinished { connection: String, entity: String, outcome: String, records: u64, error: Option<String>, tracking_id: Option<String> },
    FailedItemsAdded { connection: String, entity: String, count: usize },
    ResyncProgress { connection: String, entity: String, seen: i64, expected: i64 },
    DeletionGuardTripped { connection: String, entity: String, would_delete: i64, live: i64 },
    CircuitOpened { connection: String, until: i64, error: String },
    CircuitClosed { connection: String },
    Nudged { connection: String, entity: String },
}

pub struct EventBus {
    tx: broadcast::Sender<Event>,
    seq: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl EventBus {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        EventBus { tx: broadcast::channel(4096).0, seq: AtomicU64::new(0), clock }
    }

    pub fn emit(&self, kind: EventKind) {
        let event = Event { seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1, at: self.clock.now_ms(), kind };
        tracing::debug!(?event, "event");
        // No subscriber is fine: events are for whoever is watching.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
