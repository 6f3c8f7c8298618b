//! The runtime context: what every cycle and every delivery pass shares, whichever entity it
//! is for. The engine and the forwarder both take it; neither owns it.

use crate::clock::Clock;
use crate::events::{EventBus, EventKind};
use crate::retry::Failure;
use crate::store::{EntityKey, Store};
use std::sync::Arc;
use std::time::Duration;

/// Everything a cycle needs that is shared by all entities.
pub struct EngineCtx {
    pub store: Arc<Store>,
    pub events: Arc<EventBus>,
    pub clock: Arc<dyn Clock>,
    pub runs_kept: u32,
    /// Several agents on one PostgreSQL replica: which entities this agent holds. None for the
    /// embedded SQLite replica, which has one agent, holding everything.
    pub leasing: Option<Arc<crate::leasing::Leasing>>,
}

impl EngineCtx {
    /// Whether this agent syncs the entity (always, but for another agent's lease).
    pub fn holds(&self, key: &EntityKey) -> bool {
        self.leasing.as_ref().is_none_or(|l| l.holds(key))
    }

    /// Tells the front ends that a call for the entity failed and will be tried again after
    /// `wait` (a source's page or a target's delivery alike); `reason` is the failure as shown.
    pub fn emit_retrying(&self, key: &EntityKey, attempt: u32, wait: Duration, reason: String, fail: &Failure) {
        self.events.emit(EventKind::Retrying {
            connection: key.connection.clone(),
            entity: key.entity.clone(),
            attempt,
            wait_ms: wait.as_millis() as u64,
            reason,
            http_status: fail.http_status,
            tracking_id: fail.tracking_id.clone(),
        });
    }
}
