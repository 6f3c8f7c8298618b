//! Several agents on one PostgreSQL replica: this agent's share of the entities. The lease loop
//! ([`keep`]) renews and balances the leases (`store/leases.rs` holds the rules). `[replica]
//! lease` is the longest a dead agent's entities wait: a lease row lasts two thirds of it and the
//! loop runs every sixth, so an expired lease is taken within `lease` of the agent's death.
//! Workers sync, deliver and apply pushed records only for the entities this agent holds, and an
//! entity it has just taken over syncs at once. On a clean shutdown the leases are given back, so
//! the other agents take over without waiting for them to run out.

use crate::engine::EntityRt;
use crate::events::{EventBus, EventKind};
use crate::store::{EntityKey, Store};
use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Leasing {
    /// This agent's name as the holder of its entities: `[replica] agent` (else the host name)/pid.
    pub agent: String,
    pub host: String,
    pub lease: Duration,
    held: RwLock<HashSet<EntityKey>>,
}

impl Leasing {
    /// `name` (`[replica] agent`, else the host name) and this process's id: unique even when
    /// every machine shares one config that names an agent (two holders of one name would both
    /// believe they hold an entity).
    pub fn new(name: Option<&str>, lease: Duration) -> Leasing {
        let host = crate::agent_lock::host_name();
        let agent = format!("{}/{}", name.unwrap_or(&host), std::process::id());
        Leasing { agent, host, lease, held: RwLock::new(HashSet::new()) }
    }

    /// A one-shot command's leases: named as such, and short ([`ONE_SHOT_LEASE`]).
    pub fn one_shot(name: Option<&str>, lease: Duration) -> Leasing {
        let mut l = Leasing::new(name, lease.min(ONE_SHOT_LEASE));
        l.agent.push_str(ONE_SHOT_SUFFIX);
        l
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

/// How long a one-shot command's lease lasts (`[replica] lease` when shorter): short, so that
/// one killed mid-sync holds its entities back only seconds.
pub const ONE_SHOT_LEASE: Duration = Duration::from_secs(6);

/// What a one-shot command's holder name ends with.
pub const ONE_SHOT_SUFFIX: &str = " (one-shot)";

/// A one-shot command's leases (`syncmon sync`, `resync` beside running agents): renewed while
/// it lives, given back when it is dropped.
pub struct OneShotLeases {
    store: Arc<Store>,
    agent: String,
    renewal: Option<tokio::task::JoinHandle<()>>,
}

impl OneShotLeases {
    /// Takes the leases of `keys`; refused, naming the holder, for an entity a live agent holds.
    /// A lease left by a one-shot command that died (killed mid-sync) runs out within
    /// [`ONE_SHOT_LEASE`]'s two thirds: this waits for it rather than refusing.
    pub fn take(store: Arc<Store>, leasing: &Leasing, keys: &[EntityKey]) -> crate::error::Result<OneShotLeases> {
        let guard = OneShotLeases { store: store.clone(), agent: leasing.agent.clone(), renewal: None };
        let deadline = std::time::Instant::now() + leasing.hold() + Duration::from_secs(1);
        loop {
            let held = store.take_free_leases(&leasing.agent, keys, leasing.hold())?;
            let busy: Vec<String> = keys.iter().filter(|k| !held.contains(k)).map(|k| k.to_string()).collect();
            if busy.is_empty() {
                break;
            }
            let holders: Vec<(String, String)> =
                store.lease_holders()?.into_iter().filter(|h| h.live).map(|h| (format!("{}/{}", h.connection, h.entity), h.holder)).collect();
            let by_agents: Vec<String> = busy
                .iter()
                .filter_map(|b| holders.iter().find(|(k, _)| k == b).map(|(_, holder)| (b, holder)))
                .filter(|(_, holder)| !holder.ends_with(ONE_SHOT_SUFFIX))
                .map(|(b, holder)| format!("{b} (agent {holder})"))
                .collect();
            if !by_agents.is_empty() {
                return Err(crate::error::Error::Usage(format!(
                    "{} synced by a running agent: {}; it keeps them in sync (ask it with Sync now in the app, or `syncmon serve`), or stop it first",
                    if by_agents.len() == 1 { "this entity is" } else { "these entities are" },
                    by_agents.join(", ")
                )));
            }
            if std::time::Instant::now() > deadline {
                return Err(crate::error::Error::Usage(format!("{} held by another `syncmon sync` or `resync`; try again when it ends", busy.join(", "))));
            }
            std::thread::sleep(Duration::from_millis(250));
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
