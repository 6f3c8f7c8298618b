//! Several agents on one PostgreSQL replica: this agent's share of the entities. The lease loop
//! ([`keep`]) renews and balances the leases (`store/leases.rs` holds the rules). `[replica]
//! lease` is the longest a dead agent's entities wait: a lease row lasts two thirds of it and the
//! loop runs every sixth, so an expired lease is taken within `lease` of the agent's death; workers sync, deliver and apply pushed records only for the entities this
//! agent holds, and an entity it has just taken over syncs at once. On a clean shutdown the
//! leases are given back, so the other agents take over without waiting for them to run out.

use crate::engine::EntityRt;
use crate::events::{EventBus, EventKind};
use crate::store::{EntityKey, Store};
use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Leasing {
    /// This agent's name as the holder of its entities (`[replica] agent`, else host/pid).
    pub agent: String,
    pub host: String,
    pub lease: Duration,
    held: RwLock<HashSet<EntityKey>>,
}

impl Leasing {
    pub fn new(agent: Option<&str>, lease: Duration) -> Leasing {
        let host = crate::agent_lock::host_name();
        let agent = agent.map(str::to_string).unwrap_or_else(|| format!("{host}/{}", std::process::id()));
        Leasing { agent, host, lease, held: RwLock::new(HashSet::new()) }
    }

    /// How long a lease row lasts without renewal.
    pub fn hold(&self) -> Duration {
        self.lease * 2 / 3
    }

    pub fn holds(&self, key: &EntityKey) -> bool {
        self.held.read().unwrap_or_else(|p| p.into_inner()).contains(key)
    }

    /// Replaces what this agent holds; returns the entities it did not hold before.
    fn set_held(&self, now: Vec<EntityKey>) -> Vec<EntityKey> {
        let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
        let gained = now.iter().filter(|k| !held.contains(*k)).cloned().collect();
        *held = now.into_iter().collect();
        gained
    }
}

/// The lease loop, until `cancel`; gives every lease back when it ends.
pub async fn keep(store: Arc<Store>, leasing: Arc<Leasing>, entities: Vec<Arc<EntityRt>>, events: Arc<EventBus>, cancel: CancellationToken) {
    let keys: Vec<EntityKey> = entities.iter().map(|e| e.key.clone()).collect();
    let every = leasing.lease / 6;
    loop {
        let (s, l, k) = (store.clone(), leasing.clone(), keys.clone());
        let round = tokio::task::spawn_blocking(move || s.lease_round(&l.agent, &l.host, &k, l.hold())).await;
        match round {
            Ok(Ok(now)) => {
                let lost: Vec<EntityKey> = keys.iter().filter(|k| leasing.holds(k) && !now.contains(k)).cloned().collect();
                for key in leasing.set_held(now) {
                    tracing::info!(entity = %key, agent = %leasing.agent, "this agent now holds the entity");
                    events.emit(EventKind::LeaseTaken { connection: key.connection.clone(), entity: key.entity.clone(), agent: leasing.agent.clone() });
                    if let Some(e) = entities.iter().find(|e| e.key == key) {
                        e.nudge.notify_one();
                    }
                }
                for key in lost {
                    tracing::info!(entity = %key, agent = %leasing.agent, "the entity went to another agent");
                }
            }
            // The database is unreachable: hold nothing rather than write on a lease that may
            // have run out (the store's fencing would refuse the pages anyway).
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot renew the leases; syncing nothing until the database answers");
                leasing.set_held(Vec::new());
            }
            Err(_) => {
                leasing.set_held(Vec::new());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => break,
        }
    }
    leasing.set_held(Vec::new());
    let (s, l) = (store.clone(), leasing.clone());
    let _ = tokio::task::spawn_blocking(move || s.release_leases(&l.agent)).await;
}

/// A one-shot command's leases (`syncmon sync`, `resync` beside running agents): renewed while
/// it lives, given back when it is dropped.
pub struct OneShotLeases {
    store: Arc<Store>,
    agent: String,
    renewal: Option<tokio::task::JoinHandle<()>>,
}

impl OneShotLeases {
    /// Takes the leases of `keys`; refused, naming the holder, for an entity a live agent holds.
    pub fn take(store: Arc<Store>, leasing: &Leasing, keys: &[EntityKey]) -> crate::error::Result<OneShotLeases> {
        let held = store.take_free_leases(&leasing.agent, keys, leasing.hold())?;
        let guard = OneShotLeases { store: store.clone(), agent: leasing.agent.clone(), renewal: None };
        let busy: Vec<String> = keys.iter().filter(|k| !held.contains(k)).map(|k| k.to_string()).collect();
        if !busy.is_empty() {
            let holders = store.lease_holders()?;
            let named: Vec<String> = busy
                .iter()
                .map(|b| match holders.iter().find(|h| format!("{}/{}", h.connection, h.entity) == *b) {
                    Some(h) => format!("{b} (agent {})", h.holder),
                    None => b.clone(),
                })
                .collect();
            return Err(crate::error::Error::Usage(format!(
                "{} synced by a running agent: {}; it keeps them in sync (ask it with Sync now in the app, or `syncmon serve`), or stop it first",
                if named.len() == 1 { "this entity is" } else { "these entities are" },
                named.join(", ")
            )));
        }
        let mut guard = guard;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (store, agent, every, lease) = (store, leasing.agent.clone(), leasing.lease / 6, leasing.hold());
            guard.renewal = Some(rt.spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let (s, a) = (store.clone(), agent.clone());
                    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.renew_leases(&a, lease)).await {
                        tracing::warn!(error = %e, "cannot renew this command's leases");
                    }
                }
            }));
        }
        Ok(guard)
    }
}

impl Drop for OneShotLeases {
    fn drop(&mut self) {
        if let Some(r) = self.renewal.take() {
            r.abort();
        }
        let _ = self.store.release_leases(&self.agent);
    }
}
