//! The runtime context: what every cycle and every delivery pass shares, whichever entity it
//! is for. The engine and the forwarder both take it; neither owns it.

use crate::clock::Clock;
use crate::events::EventBus;
use crate::store::Store;
use std::sync::Arc;

/// Everything a cycle needs that is shared by all entities.
pub struct EngineCtx {
    pub store: Arc<Store>,
    pub events: Arc<EventBus>,
    pub clock: Arc<dyn Clock>,
    pub runs_kept: u32,
}
