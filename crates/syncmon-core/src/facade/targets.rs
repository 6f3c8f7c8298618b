//! What `syncmon targets` shows: per target the changes waiting for it, the oldest wait,
//! deliveries per minute and whether delivery is paused by its circuit.

use super::Syncmon;
use crate::error::Result;
use serde::Serialize;

/// The window deliveries per minute are counted over.
const RATE_WINDOW_MS: i64 = 5 * 60_000;
/// At most this many of the target's logged writes are read for the rate and the circuit.
const WRITES_READ: u32 = 5_000;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct TargetStatus {
    pub id: String,
    pub base_url: String,
    /// `connection/entity` of every entity forwarding to it.
    pub entities: Vec<String>,
    /// The target is a connection's system (its entities may flow both ways).
    pub is_connection: bool,
    /// Changes waiting in the outboxes.
    pub pending: i64,
    /// When the oldest waiting change was queued (ms since 1970).
    pub oldest_queued_at: Option<i64>,
    /// Successful writes per minute over the last five minutes.
    pub deliveries_per_minute: f64,
    /// Failed writes (calls, retries included) over the last five minutes.
    pub failed_calls: u64,
    /// Delivery pauses until then: the target's last `breaker_threshold` writes failed within
    /// its cooldown (the agent's own breaker when this process runs it).
    pub circuit_open_until: Option<i64>,
    /// The last failed write's error, when it came after the last successful one.
    pub last_error: Option<String>,
}

impl Syncmon {
    pub fn targets(&self) -> Result<Vec<TargetStatus>> {
        let now = self.ctx.clock.now_ms();
        let waiting = self.ctx.store.outbox_by_target()?;
        let mut out = Vec::new();
        for t in &self.config.targets {
            let entities: Vec<String> =
                self.entities.iter().filter(|e| e.forward.as_ref().is_some_and(|f| f.target.cfg.id == t.id)).map(|e| e.key.to_string()).collect();
            let (pending, oldest_queued_at) = waiting.iter().find(|(id, _, _)| *id == t.id).map(|(_, n, at)| (*n, *at)).unwrap_or((0, None));
            let writes = self.ctx.store.target_writes(&t.id, now - RATE_WINDOW_MS.max(t.breaker_cooldown.as_millis() as i64), WRITES_READ)?;
            let ok = |s: Option<u16>| s.is_some_and(|s| (200..300).contains(&s));
            let recent = writes.iter().filter(|(at, _, _)| *at >= now - RATE_WINDOW_MS);
            let (good, bad) = recent.fold((0u64, 0u64), |(g, b), (_, s, _)| if ok(*s) { (g + 1, b) } else { (g, b + 1) });
            let failing_run: Vec<_> = writes.iter().take_while(|(_, s, _)| !ok(*s)).collect();
            let in_process = self
                .entities
                .iter()
                .filter_map(|e| e.forward.as_ref())
                .find(|f| f.target.cfg.id == t.id)
                .and_then(|f| f.target.breaker.lock().unwrap().open_until(now));
            let from_log = (failing_run.len() as u32 >= t.breaker_threshold.max(1))
                .then(|| failing_run[0].0 + t.breaker_cooldown.as_millis() as i64)
                .filter(|until| *until > now);
            out.push(TargetStatus {
                id: t.id.clone(),
                base_url: crate::redact::redact_url_text(&t.base_url),
                entities,
                is_connection: self.config.connection(&t.id).is_some(),
                pending,
                oldest_queued_at,
                deliveries_per_minute: good as f64 * 60_000.0 / RATE_WINDOW_MS as f64,
                failed_calls: bad,
                circuit_open_until: in_process.or(from_log),
                last_error: failing_run.first().map(|(_, s, e)| match (s, e) {
                    (_, Some(e)) => e.clone(),
                    (Some(s), None) => format!("HTTP {s}"),
                    (None, None) => "no answer".into(),
                }),
            });
        }
        Ok(out)
    }
}

impl Syncmon {
    /// An HTTP client for a target as configured (auth, limits, TLS, the request log), for a test
    /// call outside delivery.
    pub(crate) fn target_client(&self, t: &crate::config::TargetConfig) -> crate::source::SourceClient {
        let client = crate::source::SourceClient::for_target(t, crate::source::SourceClient::http_client(), self.ctx.store.clone(), self.ctx.clock.clone())
            .with_metrics(self.ctx.events.metrics().clone());
        match self.config.targets.iter().position(|x| x.id == t.id) {
            Some(i) => client.at(format!("targets[{i}]")),
            None => client,
        }
    }
}
