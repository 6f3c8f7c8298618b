//! The façade: [`Syncmon`], the one door into the engine. It opens the replica, builds each
//! entity's runtime from the config, and answers the front ends' queries and commands.
//!
//! `mod.rs` opens the engine and finds entities; `status.rs` the status words, `verdict.rs` the one rule
//! that turns them and the last calls into tones and the banner's words, `commands.rs`
//! what changes the sync (cycles, pause, reset, the agent loop), `failed.rs` failed items and
//! their replay, `queries.rs` the reads (runs, requests, export, statistics, settings).

mod commands;
mod diagnostics;
mod failed;
mod metrics;
mod queries;
mod status;
mod targets;
mod verdict;

pub use commands::ResyncPreview;
pub use diagnostics::{DiagnosticsOptions, DiagnosticsReport, SavedDiagnostics};
pub use failed::{ExportFormat, KindCount, ReplayReport};
pub use status::EntityStatus;
pub use targets::TargetStatus;
pub use verdict::{CardTones, OverallWord, Verdict, METRICS_WINDOW_MS};

use crate::agent_lock::AgentLock;
use crate::config::Config;
use crate::context::EngineCtx;
use crate::engine::EntityRt;
use crate::events::{Event, EventBus, EventKind};
use crate::leasing::Leasing;
use crate::metrics::EngineMetrics;
use crate::profile::Profile;
use crate::source::SourceClient;
use crate::store::{EntityKey, Store, StoreError, TwoWayRules};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::broadcast;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::{config, forward};

pub struct Syncmon {
    pub(crate) config: Config,
    pub(crate) ctx: Arc<EngineCtx>,
    pub(crate) entities: Vec<Arc<EntityRt>>,
    /// The file the config came from; the Connections screen edits it in place.
    pub(crate) config_path: Option<PathBuf>,
    /// Risky settings (plain HTTP to a remote host, an open webhook listener), computed once.
    pub(crate) warnings: Vec<config::ConfigWarning>,
    /// Held by an agent (and one-shot writers) for as long as this handle lives.
    agent_lock: Option<Arc<AgentLock>>,
    /// A one-shot writer on a PostgreSQL replica: the name it holds its entities' leases under.
    one_shot: Option<Arc<Leasing>>,
}

/// How the store is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opening {
    Write,
    /// For an agent: SQLite's quick check first.
    WriteChecked,
    ReadOnly,
}

/// What the handle is, among several agents sharing a PostgreSQL replica.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fleet {
    None,
    Agent,
    OneShot,
}

/// The embedded SQLite file in the data directory, or the `[replica]` PostgreSQL database.
fn open_store(config: &Config, data_dir: &Path, how: Opening) -> Result<Store> {
    let Some(replica) = &config.replica else {
        let db = data_dir.join(DB_FILE);
        return Ok(match how {
            Opening::Write => Store::open(&db)?,
            Opening::WriteChecked => Store::open_checked(&db)?,
            Opening::ReadOnly => Store::open_read_only(&db)?,
        });
    };
    let password = crate::secrets::replica_password(replica)?;
    Ok(Store::open_postgres(replica, password.as_ref(), how == Opening::ReadOnly)?)
}

impl Syncmon {
    /// Opens the replica in `data_dir` (created if needed) for the configured connections,
    /// without the agent lock: for embedding and tests. Front ends use [`Syncmon::open_agent`]
    /// to write and [`Syncmon::open_read_only`] to read.
    pub fn open(config: Config, data_dir: &Path) -> Result<Syncmon> {
        Self::open_with_clock(config, data_dir, Arc::new(SystemClock))
    }

    pub fn open_with_clock(config: Config, data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Syncmon> {
        let store = Arc::new(open_store(&config, data_dir, Opening::Write)?);
        Self::build(config, store, clock, None, Fleet::None)
    }

    /// Opens the replica for an agent (`run`, `serve`, `demo`, the desktop app): takes the data
    /// directory's agent lock (refused, naming the holder, while another agent runs), checks the
    /// database (`PRAGMA quick_check`: a damaged replica refuses to start, saying what to do),
    /// then migrates it. The lock is held until the handle is dropped. On a PostgreSQL replica
    /// the agent shares the entities with the other agents through leases.
    pub fn open_agent(config: Config, data_dir: &Path) -> Result<Syncmon> {
        let lock = AgentLock::acquire(data_dir, SystemClock.now_ms())?;
        Self::open_agent_locked(config, data_dir, Arc::new(lock))
    }

    /// [`Syncmon::open_agent`] with the lock already taken, for a front end that must hold it
    /// before it prepares the data directory (the demo writes its config there).
    pub fn open_agent_locked(config: Config, data_dir: &Path, lock: Arc<AgentLock>) -> Result<Syncmon> {
        let store = Arc::new(open_store(&config, data_dir, Opening::WriteChecked)?);
        Self::build(config, store, Arc::new(SystemClock), Some(lock), Fleet::Agent)
    }

    /// Opens the replica for a one-shot writer (`sync`, `resync`): the agent lock as for
    /// [`Syncmon::open_agent`], without the quick check, which reads the whole file (about 0.2 s
    /// per 100,000 records) and would cost a `sync` run from cron every few minutes that much.
    /// On a PostgreSQL replica it syncs only entities no agent holds ([`Syncmon::claim`]).
    pub fn open_one_shot(config: Config, data_dir: &Path) -> Result<Syncmon> {
        let lock = AgentLock::acquire(data_dir, SystemClock.now_ms())?;
        let store = Arc::new(open_store(&config, data_dir, Opening::Write)?);
        Self::build(config, store, Arc::new(SystemClock), Some(Arc::new(lock)), Fleet::OneShot)
    }

    /// Opens the replica for reading only (`status`, `export`, `failed list|show`, `requests`):
    /// no lock, no migration, no write; works beside a busy agent and on a read-only copy.
    /// Commands that would write fail with a message saying the database is read-only.
    pub fn open_read_only(config: Config, data_dir: &Path) -> Result<Syncmon> {
        let store = Arc::new(open_store(&config, data_dir, Opening::ReadOnly)?);
        Self::build(config, store, Arc::new(SystemClock), None, Fleet::None)
    }

    /// SQLite's full integrity check of the replica in `data_dir`, read-only: the problems found,
    /// none when it is sound. [`Syncmon::damaged_advice`] says what to do otherwise.
    pub fn check_integrity(data_dir: &Path) -> Result<Vec<String>> {
        match Store::open_read_only(&data_dir.join(DB_FILE)) {
            Ok(store) => Ok(store.integrity_check()?),
            Err(StoreError::Damaged { problems, .. }) => Ok(problems),
            Err(e) => Err(e.into()),
        }
    }

    /// What to do about a damaged replica in `data_dir`.
    pub fn damaged_advice(data_dir: &Path) -> String {
        crate::store::damaged_advice(&data_dir.join(DB_FILE))
    }

    fn build(config: Config, store: Arc<Store>, clock: Arc<dyn Clock>, agent_lock: Option<Arc<AgentLock>>, fleet: Fleet) -> Result<Syncmon> {
        let writable = !store.is_read_only();
        let http = SourceClient::http_client();
        // One set of Prometheus counters: every client times its calls into it, the bus counts events.
        let metrics = EngineMetrics::default();
        let targets: BTreeMap<&str, (Arc<SourceClient>, &str)> = config
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                // A target that is a connection's system shares its credential: the keyring entry
                // of the same id, and its `secret_env` unless the target names its own.
                let mut shared = t.clone();
                if let Some(c) = config.connection(&t.id).filter(|_| t.secret_env.is_none()) {
                    shared.secret_env = c.secret_env.clone();
                }
                let http = if t.ca.is_some() { SourceClient::http_client_for(&t.as_connection()) } else { http.clone() };
                let client =
                    Arc::new(SourceClient::for_target(&shared, http, store.clone(), clock.clone()).at(format!("targets[{i}]")).with_metrics(metrics.clone()));
                (t.id.as_str(), (client, t.idempotency_header.as_str()))
            })
            .collect();
        let mut entities = Vec::new();
        for (i, c) in config.connections.iter().enumerate() {
            // A connection with its own `ca_file` gets its own client (its own trust).
            let client = if c.ca.is_some() { SourceClient::http_client_for(c) } else { http.clone() };
            let source =
                Arc::new(SourceClient::new(c.clone(), client, store.clone(), clock.clone()).at(format!("connections[{i}]")).with_metrics(metrics.clone()));
            for e in &c.entities {
                let key = EntityKey::new(&c.id, &e.name);
                if writable {
                    store.ensure_entity(&key)?;
                }
                let profile = Profile::new(c, e).map_err(Error::Usage)?;
                let forward = match e.forward_to.as_deref().and_then(|t| targets.get(t)) {
                    Some((target, header)) => {
                        let mut f = forward::Forwarder::new(target.clone(), &e.forward_path(), header).map_err(Error::Usage)?;
                        if let Some(m) = &e.forward_method {
                            f.method =
                                reqwest::Method::from_bytes(m.as_bytes()).map_err(|_| Error::Usage(format!("forward_method `{m}` is not an HTTP method")))?;
                        }
                        f.rename = e.forward_rename.clone();
                        f.drop = e.forward_drop.clone();
                        f.pair = two_way_pair(&config, c, e, &profile)?;
                        Some(Arc::new(f))
                    }
                    None => None,
                };
                if writable {
                    let rules =
                        forward.as_ref().and_then(|f| f.pair.as_ref()).map(|p| TwoWayRules { peer: p.peer.connection.clone(), ignore: p.ignore.clone() });
                    store.set_two_way(&key, rules.as_ref())?;
                    store.set_write_back(&key, e.write_back.is_some())?;
                    let queued = store.set_forward_target(&key, forward.as_ref().map(|f| f.target.cfg.id.as_str()), clock.now_ms())?;
                    if queued > 0 {
                        tracing::info!("{key}: forwarding to `{}` starts; {queued} records queued for it", e.forward_to.as_deref().unwrap_or(""));
                    }
                }
                entities.push(Arc::new(EntityRt {
                    key,
                    cfg: e.clone(),
                    source: source.clone(),
                    profile,
                    nudge: tokio::sync::Notify::new(),
                    busy: tokio::sync::Mutex::new(()),
                    forward,
                    write_back: match &e.write_back {
                        Some(wb) => Some(Arc::new(crate::write_back::WriteBack::new(wb).map_err(|m| Error::Usage(format!("{}/{}: {m}", c.id, e.name)))?)),
                        None => None,
                    },
                }));
            }
        }
        if writable {
            // The Activity log is bounded: 30 days, the newest EVENTS_KEPT (also in housekeeping).
            if let Err(e) = store.prune_events(clock.now_ms() - crate::store::EVENTS_RETENTION_MS, crate::store::EVENTS_KEPT) {
                tracing::warn!("cannot prune the activity log: {e}");
            }
        }
        let events = Arc::new(EventBus::persisted(clock.clone(), store.clone()).with_metrics(metrics));
        // Several agents on a PostgreSQL replica: an agent takes its share of the entities by
        // leases; a one-shot command those no agent holds. Every page write checks the lease.
        let (leasing, one_shot) = match (&config.replica, fleet) {
            (Some(r), Fleet::Agent) => (Some(Arc::new(Leasing::new(r.agent.as_deref(), r.lease))), None),
            (Some(r), Fleet::OneShot) => (None, Some(Arc::new(Leasing::one_shot(r.agent.as_deref(), r.lease)))),
            _ => (None, None),
        };
        if let Some(l) = leasing.as_ref().or(one_shot.as_ref()) {
            store.fence_with_lease(&l.agent);
        }
        let ctx = Arc::new(EngineCtx { store, events, clock, runs_kept: config.storage.runs_kept, leasing });
        let warnings = config.warnings();
        Ok(Syncmon { config, ctx, entities, config_path: None, warnings, agent_lock, one_shot })
    }

    /// Whether this handle holds the data directory's agent lock.
    pub fn holds_agent_lock(&self) -> bool {
        self.agent_lock.is_some()
    }

    /// Remembers which file the config was loaded from, so front ends can save edits to it.
    pub fn with_config_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_path = Some(path.into());
        self
    }

    pub fn config_path(&self) -> Option<&Path> {
        self.config_path.as_deref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What in the config may work but is risky; `status`, the UI and the agent's log show it.
    pub fn config_warnings(&self) -> &[config::ConfigWarning] {
        &self.warnings
    }

    /// Up to `limit` of the last events, newest first, those before a restart too (the stored
    /// activity log: 30 days, at most `store::EVENTS_KEPT`).
    pub fn recent_events(&self, limit: usize) -> Vec<Event> {
        self.ctx.events.recent(limit)
    }

    /// The data directory this engine's replica lives in.
    pub fn data_dir(&self) -> &Path {
        self.ctx.store.path().parent().unwrap_or(Path::new("."))
    }

    /// Where the agent and the desktop app write their log files (`<data dir>/logs`).
    pub fn log_dir(&self) -> PathBuf {
        crate::logfile::log_dir(self.data_dir())
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.ctx.events.subscribe()
    }

    /// Finds entities by `NAME` or `CONNECTION/NAME`; an ambiguous bare name is an error.
    pub fn select(&self, connection: Option<&str>, names: &[String]) -> Result<Vec<Arc<EntityRt>>> {
        let mut out: Vec<Arc<EntityRt>> = Vec::new();
        let in_conn = |e: &EntityRt| connection.is_none_or(|c| e.key.connection == c);
        if let Some(c) = connection {
            if self.config.connection(c).is_none() {
                return Err(Error::NotFound(format!("no connection `{c}` in the config; `syncmon status` lists them")));
            }
        }
        if names.is_empty() {
            return Ok(self.entities.iter().filter(|e| in_conn(e)).cloned().collect());
        }
        for name in names {
            let (conn, ent) = match name.split_once('/') {
                Some((c, e)) => (Some(c), e),
                None => (connection, name.as_str()),
            };
            let found: Vec<_> = self.entities.iter().filter(|e| e.key.entity == ent && conn.is_none_or(|c| e.key.connection == c)).cloned().collect();
            match found.len() {
                0 => return Err(Error::NotFound(format!("no entity `{name}` in the config; `syncmon status` lists them"))),
                1 => out.extend(found),
                _ => return Err(Error::Usage(format!("`{name}` exists in several connections; write CONNECTION/{ent}, e.g. {}", found[0].key))),
            }
        }
        Ok(out)
    }

    pub(crate) fn one(&self, name: &str) -> Result<Arc<EntityRt>> {
        Ok(self.select(None, &[name.to_string()])?.remove(0))
    }
}

/// Where the config lives when neither `--config` nor `SYNCMON_CONFIG` says.
pub fn default_config_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "syncmon").map(|d| d.config_dir().join("syncmon.toml")).unwrap_or_else(|| PathBuf::from("syncmon.toml"))
}

/// The replica's file inside the data directory.
pub const DB_FILE: &str = "syncmon.db";

/// Where the replica lives when neither `--data-dir` nor `SYNCMON_DATA_DIR` says.
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "syncmon").map(|d| d.data_dir().to_path_buf()).unwrap_or_else(|| PathBuf::from("."))
}

/// What the RPC's views and actions (`api`) read and do, so that they go through the façade
/// rather than into the store and the engine.
impl Syncmon {
    /// The engine's clock (ms since the epoch).
    pub fn now_ms(&self) -> i64 {
        self.ctx.clock.now_ms()
    }

    /// `NAME` or `CONNECTION/NAME` as the entity's key.
    pub fn entity_key(&self, name: &str) -> Result<EntityKey> {
        Ok(self.one(name)?.key.clone())
    }

    /// Tells the subscribers (e.g. a bulk replay's progress).
    pub(crate) fn emit(&self, kind: EventKind) {
        self.ctx.events.emit(kind);
    }

    /// An HTTP client for `c` that logs its calls in the request log, like the engine's.
    pub(crate) fn source_client(&self, c: config::ConnectionConfig) -> SourceClient {
        let http = SourceClient::http_client_for(&c);
        let place = self.config.connections.iter().position(|x| x.id == c.id).map(|i| format!("connections[{i}]"));
        let client = SourceClient::new(c, http, self.ctx.store.clone(), self.ctx.clock.clone()).with_metrics(self.ctx.events.metrics().clone());
        match place {
            Some(p) => client.at(p),
            None => client,
        }
    }
}

/// The entity's side of a two-way pair: it forwards to a connection's system whose entity of the
/// same name forwards back. Fingerprints leave out both sides' version fields and the fields both
/// targets set themselves.
fn two_way_pair(config: &Config, c: &config::ConnectionConfig, e: &config::EntityConfig, profile: &Profile) -> Result<Option<crate::two_way::Pair>> {
    let Some(peer_conn) = e.forward_to.as_deref().and_then(|t| config.connection(t)) else { return Ok(None) };
    let Some(peer_entity) = peer_conn.entities.iter().find(|pe| pe.name == e.name && pe.forward_to.as_deref() == Some(c.id.as_str())) else {
        return Ok(None);
    };
    let peer_profile = Profile::new(peer_conn, peer_entity).map_err(Error::Usage)?;
    let mut ignore: Vec<String> = vec![profile.version_field().to_string(), peer_profile.version_field().to_string()];
    for t in config.targets.iter().filter(|t| t.id == c.id || t.id == peer_conn.id) {
        ignore.extend(t.ignore_fields.iter().cloned());
    }
    ignore.sort();
    ignore.dedup();
    Ok(Some(crate::two_way::Pair {
        peer: EntityKey::new(&peer_conn.id, &peer_entity.name),
        ignore,
        policy: crate::two_way::ConflictPolicy::parse(e.conflict.as_deref().or(peer_entity.conflict.as_deref())),
    }))
}
