//! The agent loop: one worker per entity. Each catches up once at start, then waits for the
//! first of its poll timer (with jitter, so entities do not fire together), a nudge, or
//! shutdown. A poll is an incremental cycle, which the engine turns into a lookback sweep when
//! one is due (`engine::cycle_kind`), so `syncmon sync` sweeps on the same schedule. The webhook
//! receiver, when configured, turns verified calls into nudges and stores pushed records, which
//! the ingest worker (`ingest.rs`) applies. A push-only entity (`poll_every = "never"`) has no
//! poll worker. An entity that forwards to a target also has a delivery worker, woken by the
//! writes that queue changes.

use crate::config::Config;
use crate::context::EngineCtx;
use crate::engine::{self, CycleKind, EntityRt};
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::forward::Forwarder;
use crate::ingest;
use crate::secrets::{self, SecretKind};
use crate::state::{Outcome, ResyncState};
use crate::store::EntityKey;
use crate::webhook::{self, IngestOptions, IngestTarget, NudgeTarget, WebhookConnection};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What the agent loop needs from the handle that runs it: the config, the shared context and
/// the entities (not the façade itself).
pub struct Agent {
    pub config: Config,
    pub ctx: Arc<EngineCtx>,
    pub entities: Vec<Arc<EntityRt>>,
}

/// Asks for a cycle of the entity now. Returns false for an unknown entity.
pub fn nudge(ctx: &EngineCtx, entities: &[Arc<EntityRt>], connection: &str, entity: &str) -> bool {
    match entities.iter().find(|e| e.key.connection == connection && e.key.entity == entity) {
        Some(e) => {
            e.nudge.notify_one();
            ctx.events.emit(EventKind::Nudged { connection: connection.into(), entity: entity.into() });
            true
        }
        None => false,
    }
}

pub async fn run(sm: Arc<Agent>, cancel: CancellationToken) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    // Wakes the ingest worker when the receiver has stored a batch.
    let ingest_wake = Arc::new(Notify::new());
    if let Some(w) = &sm.config.webhooks {
        let listener = tokio::net::TcpListener::bind(&w.listen)
            .await
            .map_err(|e| Error::Io(format!("cannot listen for webhooks on {}: {e}; pick a free port in [webhooks] listen", w.listen)))?;
        let ingest = IngestOptions { target: Arc::new(IngestQueue { agent: sm.clone(), wake: ingest_wake.clone() }), max_body_bytes: w.ingest_max_bytes };
        let router = webhook::router(webhook_connections(&sm), Arc::new(Nudger(sm.clone())), Some(ingest), sm.ctx.clock.clone());
        tracing::info!("webhook receiver listening on http://{0}/webhooks/<connection>, pushed records on http://{0}/ingest/<connection>/<entity>", w.listen);
        let stop = cancel.clone();
        tasks.spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "the webhook receiver stopped");
            }
        });
    }
    for e in sm.entities.clone() {
        if let Some(f) = e.forward.clone() {
            let (sm, e, cancel) = (sm.clone(), e.clone(), cancel.clone());
            tasks.spawn(async move { deliverer(sm, e, f, cancel).await });
        }
        // Push-only (`poll_every = "never"`): never polled, its records arrive by POST /ingest.
        if e.cfg.poll_every.is_some() {
            let sm = sm.clone();
            let cancel = cancel.clone();
            tasks.spawn(async move { worker(sm, e, cancel).await });
        }
    }
    // Applies what an earlier agent left queued, then each batch the receiver stores.
    tasks.spawn(ingest::worker(sm.ctx.clone(), sm.entities.clone(), ingest_wake, cancel.clone()));
    // Several agents on one PostgreSQL replica: this agent's share of the entities.
    if let Some(leasing) = sm.ctx.leasing.clone() {
        let ctx = sm.ctx.clone();
        tasks.spawn(crate::leasing::keep(ctx.store.clone(), leasing, sm.entities.clone(), ctx.events.clone(), cancel.clone()));
    }
    {
        let sm = sm.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move { housekeeping(sm, cancel).await });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn worker(sm: Arc<Agent>, e: Arc<EntityRt>, cancel: CancellationToken) {
    let mut first = true;
    loop {
        if !first {
            let row = sm.ctx.store.entity(&e.key).ok();
            let now = sm.ctx.clock.now_ms();
            let poll = e.cfg.poll_every.unwrap_or(crate::config::DEFAULT_POLL_EVERY).mul_f64(rand::thread_rng().gen_range(0.9..1.1));
            // While the circuit is open (or the source asked to wait), wake when it half-opens
            // (or the wait ends) rather than at the next poll.
            let wait = match row.and_then(|r| r.next_attempt_at).filter(|t| *t > now) {
                Some(t) => Duration::from_millis((t - now) as u64 + 10).min(poll),
                None => poll,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = e.nudge.notified() => {}
                _ = cancel.cancelled() => return,
            }
        }
        first = false;
        if cancel.is_cancelled() {
            return;
        }
        // Another agent's entity (leases on a shared PostgreSQL replica): the lease loop wakes
        // this worker when the entity comes to this agent.
        if !sm.ctx.holds(&e.key) {
            continue;
        }
        let Ok(row) = sm.ctx.store.entity(&e.key) else { continue };
        if row.paused {
            continue;
        }
        let now = sm.ctx.clock.now_ms();
        // The source asked for a long wait (Retry-After): neither polls nor nudges call it before
        // then (an explicit `syncmon sync` still does).
        if row.last_outcome == Some(Outcome::Waiting) && row.next_attempt_at.is_some_and(|t| t > now) {
            continue;
        }
        let resync_due = e
            .cfg
            .full_resync_every
            .is_some_and(|every| row.last_caught_up_at.is_some() && row.last_full_resync_at.is_none_or(|t| now - t >= every.as_millis() as i64));
        let kind = if row.resync_state == Some(ResyncState::Running) || (resync_due && row.resync_state.is_none()) {
            CycleKind::Resync { allow_deletions: false }
        } else {
            CycleKind::Incremental
        };
        engine::run_cycle(&sm.ctx, &e, kind, &cancel).await;
        // A forwarding entity's records are synced once delivered: its deliverer marks them.
        if let Some(wb) = e.write_back.as_ref().filter(|_| e.forward.is_none()) {
            crate::write_back::mark_pending(&sm.ctx, &e, wb, &cancel).await;
        }
    }
}

/// Delivers the entity's outbox whenever a write queues changes, and at every poll interval
/// (changes left by a stopped pass or a previous run). While the target's circuit is open it
/// waits for the half-open time instead. A paused entity delivers nothing.
async fn deliverer(sm: Arc<Agent>, e: Arc<EntityRt>, f: Arc<Forwarder>, cancel: CancellationToken) {
    loop {
        let paused = sm.ctx.store.entity(&e.key).map(|r| r.paused).unwrap_or(false);
        let mut wait = e.cfg.poll_every.unwrap_or(crate::config::DEFAULT_POLL_EVERY);
        if !paused && sm.ctx.holds(&e.key) {
            let report = engine::deliver(&sm.ctx, &e, &sm.entities, &cancel).await.unwrap_or_default();
            if let Some(wb) = &e.write_back {
                crate::write_back::mark_pending(&sm.ctx, &e, wb, &cancel).await;
            }
            let now = sm.ctx.clock.now_ms();
            if let Some(t) = report.next_attempt_at.filter(|t| *t > now) {
                wait = Duration::from_millis((t - now) as u64 + 10).min(wait);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = f.nudge.notified() => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// How often housekeeping runs: twice per retention period, so the request log never holds more
/// than 1.5 × its retention, and at least hourly; never more often than every second.
fn housekeeping_interval(retention: Duration) -> Duration {
    (retention / 2).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Bounded upkeep: the request log keeps its retention, and so do applied pushed batches.
async fn housekeeping(sm: Arc<Agent>, cancel: CancellationToken) {
    let every = housekeeping_interval(sm.config.storage.request_log_retention);
    loop {
        let cutoff = sm.ctx.clock.now_ms() - sm.config.storage.request_log_retention.as_millis() as i64;
        let s = sm.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let _ = s.ctx.store.prune_request_log(cutoff);
            let _ = s.ctx.store.prune_events(s.ctx.clock.now_ms() - crate::store::EVENTS_RETENTION_MS, crate::store::EVENTS_KEPT);
            s.ctx.store.prune_ingest_batches(cutoff)
        })
        .await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

fn webhook_connections(sm: &Agent) -> Vec<WebhookConnection> {
    sm.config
        .connections
        .iter()
        .map(|c| {
            // One webhook secret per connection: the Standard Webhooks signing secret, which is
            // also the clientState chosen when subscribing in the Business Central dialect.
            let secret = match secrets::resolve(c, SecretKind::Webhook) {
                Ok(s) => Some(s.expose().to_string()),
                Err(e) => {
                    tracing::warn!(connection = %c.id, "webhooks for this connection will be refused: {e}");
                    None
                }
            };
            WebhookConnection {
                id: c.id.clone(),
                entities: c.entities.iter().map(|e| e.name.clone()).collect(),
                entity_pointer: c.webhook_entity_pointer.clone(),
                signing_secret: secret.clone(),
                client_state: secret,
            }
        })
        .collect()
}

struct Nudger(Arc<Agent>);

impl NudgeTarget for Nudger {
    fn nudge(&self, connection: &str, entity: &str) -> bool {
        nudge(&self.0.ctx, &self.0.entities, connection, entity)
    }
}

/// Stores pushed batches for the ingest worker, and wakes it.
struct IngestQueue {
    agent: Arc<Agent>,
    wake: Arc<Notify>,
}

impl IngestTarget for IngestQueue {
    fn store(&self, connection: &str, entity: &str, webhook_id: &str, body: &str) -> std::result::Result<(String, bool), String> {
        let ctx = &self.agent.ctx;
        let stored = ctx.store.ingest_enqueue(&EntityKey::new(connection, entity), webhook_id, body, ctx.clock.now_ms()).map_err(|e| e.to_string())?;
        self.wake.notify_one();
        Ok(stored)
    }
}
