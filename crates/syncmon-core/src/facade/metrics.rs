//! The Prometheus exposition: the gauges read now (status, failed items, outboxes, circuits)
//! beside the engine's process-lifetime counters (`crate::metrics`). Front ends serve the text.

use super::Syncmon;
use crate::error::{Error, Result};
use crate::metrics::{EntityLabels, PREFIX};
use crate::state::{FailedStage, FailedState, Health};
use crate::store::EntityKey;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabels {
    connection: String,
    entity: String,
    health: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HolderLabels {
    connection: String,
    entity: String,
    agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailedLabels {
    connection: String,
    entity: String,
    stage: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxLabels {
    connection: String,
    entity: String,
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    connection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

impl Syncmon {
    /// Every metric as OpenMetrics text (`crate::metrics::CONTENT_TYPE`): what a scrape of
    /// `GET /metrics` answers. Reads the store (a few indexed queries, one pass over the failed
    /// items) and the in-process breakers.
    pub fn metrics_text(&self) -> Result<String> {
        let now = self.ctx.clock.now_ms();
        let status = self.status()?;
        let mut registry = Registry::with_prefix(PREFIX);
        self.ctx.events.metrics().register(&mut registry);

        let lag = Family::<EntityLabels, Gauge>::default();
        let rows = Family::<EntityLabels, Gauge>::default();
        let health = Family::<HealthLabels, Gauge>::default();
        let held = Family::<HolderLabels, Gauge>::default();
        for s in &status {
            if let Some(agent) = &s.holder {
                held.get_or_create(&HolderLabels { connection: s.connection.clone(), entity: s.entity.clone(), agent: agent.clone() }).set(1);
            }
            let l = EntityLabels { connection: s.connection.clone(), entity: s.entity.clone() };
            // No sample before the first catch-up: "never synced" is not a lag of 0.
            if let Some(secs) = s.lag_seconds {
                lag.get_or_create(&l).set(secs);
            }
            rows.get_or_create(&l).set(s.replica_rows);
            // A state set: one series per word, 1 for the entity's current one.
            for h in Health::ALL {
                let hl = HealthLabels { connection: s.connection.clone(), entity: s.entity.clone(), health: h.as_str().to_string() };
                health.get_or_create(&hl).set(i64::from(*h == s.health));
            }
        }
        registry.register(
            "entity_lag_seconds",
            "Seconds since the entity last caught up (delivery to its target counted); absent before the first catch-up",
            lag,
        );
        registry.register("entity_replica_rows", "Rows in the entity's replica (tombstones not counted)", rows);
        registry.register("entity_health", "The entity's status word (state set: 1 for the current one), as `syncmon status` shows it", health);
        registry.register(
            "entity_lease_held",
            "Several agents on a PostgreSQL replica: 1 for the agent holding the entity's lease (no series on SQLite, nor while no agent holds it)",
            held,
        );

        // Every stage and state of every entity, 0 included, so that alerts on growth see a series
        // from the start rather than one that appears with the first failure.
        let failed = Family::<FailedLabels, Gauge>::default();
        let counted: BTreeMap<(EntityKey, &str, &str), i64> =
            self.ctx.store.failed_counts_by_stage_and_state()?.into_iter().map(|(k, stage, state, n)| ((k, stage.as_str(), state.as_str()), n)).collect();
        for e in &self.entities {
            for stage in FailedStage::ALL {
                for state in FailedState::ALL {
                    let n = counted.get(&(e.key.clone(), stage.as_str(), state.as_str())).copied().unwrap_or(0);
                    let l = FailedLabels {
                        connection: e.key.connection.clone(),
                        entity: e.key.entity.clone(),
                        stage: stage.as_str().to_string(),
                        state: state.as_str().to_string(),
                    };
                    failed.get_or_create(&l).set(n);
                }
            }
        }
        registry.register("failed_items", "Failed items (the dead-letter queue) by stage and state", failed);

        let pending = Family::<OutboxLabels, Gauge>::default();
        let oldest = Family::<OutboxLabels, Gauge>::default();
        for e in &self.entities {
            let Some(f) = &e.forward else { continue };
            let (n, since) = self.ctx.store.outbox_pending(&e.key)?;
            let l = OutboxLabels { connection: e.key.connection.clone(), entity: e.key.entity.clone(), target: f.target.cfg.id.clone() };
            pending.get_or_create(&l).set(n);
            oldest.get_or_create(&l).set(since.map_or(0, |t| (now - t).max(0) / 1000));
        }
        registry.register("outbox_pending", "Changes waiting in the entity's outbox for its target", pending);
        registry.register("outbox_oldest_age_seconds", "Age of the oldest change waiting for the target; 0 when none waits", oldest);

        // A connection's circuit is open while its breaker holds, or while an entity of it waits
        // out a circuit the last agent opened (kept in the store across restarts).
        let circuit = Family::<ConnectionLabels, Gauge>::default();
        let mut seen = BTreeSet::new();
        for e in &self.entities {
            if !seen.insert(e.key.connection.clone()) {
                continue;
            }
            let breaker = e.source.breaker.lock().unwrap_or_else(|p| p.into_inner()).open_until(now).is_some();
            let stored = status.iter().any(|s| s.connection == e.key.connection && s.health == Health::CircuitOpen);
            circuit.get_or_create(&ConnectionLabels { connection: e.key.connection.clone() }).set(i64::from(breaker || stored));
        }
        registry.register("circuit_open", "1 while the connection's circuit breaker has stopped calls to the source", circuit);
        let target_circuit = Family::<TargetLabels, Gauge>::default();
        for t in &self.config.targets {
            let open = self
                .entities
                .iter()
                .filter_map(|e| e.forward.as_ref())
                .filter(|f| f.target.cfg.id == t.id)
                .any(|f| f.target.breaker.lock().unwrap_or_else(|p| p.into_inner()).open_until(now).is_some());
            target_circuit.get_or_create(&TargetLabels { target: t.id.clone() }).set(i64::from(open));
        }
        registry.register("target_circuit_open", "1 while the target's circuit breaker has paused delivery to it", target_circuit);

        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).map_err(|e| Error::Io(format!("cannot write the metrics: {e}")))?;
        Ok(out)
    }
}
