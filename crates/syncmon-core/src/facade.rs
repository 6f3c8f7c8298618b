//! The façade: [`Syncmon`], the one door into the engine. It opens the replica, builds each
//! entity's runtime from the config, and answers the front ends' queries and commands.

use crate::agent_lock::AgentLock;
use crate::config::Config;
use crate::context::EngineCtx;
use crate::engine::{CycleKind, CycleReport, EntityRt, Outcome};
use crate::events::{Event, EventBus, EventKind};
use crate::profile::Profile;
use crate::record::Rejected;
use crate::retry::FailureClass;
use crate::source::SourceClient;
use crate::store::{EntityKey, FailedFilter, FailedItem, RequestRow, RunRow, Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::rowversion::RowVersion;
use crate::state::{FailedStage, FailedState, Health, ResyncState};
use crate::{config, engine, forward, scheduler, store};

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct EntityStatus {
    pub connection: String,
    pub entity: String,
    pub health: Health,
    /// Why, for anything but healthy: the last error in plain words.
    pub reason: Option<String>,
    pub checkpoint: String,
    pub last_caught_up_at: Option<i64>,
    pub lag_seconds: Option<i64>,
    pub replica_rows: i64,
    pub pending_failed: i64,
    pub last_http_status: Option<u16>,
    pub last_tracking_id: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub poll_every_seconds: u64,
    pub resync_seen: Option<i64>,
    /// Changes waiting to be delivered to the entity's target (0 when it forwards nowhere).
    pub forward_pending: i64,
    /// Why delivery to the target is stuck (credentials, circuit open), while changes wait.
    pub forward_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct ReplayReport {
    pub replayed: usize,
    pub superseded: usize,
    pub still_failing: usize,
}

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
}

impl Syncmon {
    /// Opens the replica in `data_dir` (created if needed) for the configured connections,
    /// without the agent lock: for embedding and tests. Front ends use [`Syncmon::open_agent`]
    /// to write and [`Syncmon::open_read_only`] to read.
    pub fn open(config: Config, data_dir: &Path) -> Result<Syncmon> {
        Self::open_with_clock(config, data_dir, Arc::new(SystemClock))
    }

    pub fn open_with_clock(config: Config, data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Syncmon> {
        let store = Arc::new(Store::open(&data_dir.join(DB_FILE))?);
        Self::build(config, store, clock, None)
    }

    /// Opens the replica for an agent (`run`, `serve`, `demo`, the desktop app): takes the data
    /// directory's agent lock (refused, naming the holder, while another agent runs), checks the
    /// database (`PRAGMA quick_check`: a damaged replica refuses to start, saying what to do),
    /// then migrates it. The lock is held until the handle is dropped.
    pub fn open_agent(config: Config, data_dir: &Path) -> Result<Syncmon> {
        let lock = AgentLock::acquire(data_dir, SystemClock.now_ms())?;
        Self::open_agent_locked(config, data_dir, Arc::new(lock))
    }

    /// [`Syncmon::open_agent`] with the lock already taken, for a front end that must hold it
    /// before it prepares the data directory (the demo writes its config there).
    pub fn open_agent_locked(config: Config, data_dir: &Path, lock: Arc<AgentLock>) -> Result<Syncmon> {
        let store = Arc::new(Store::open_checked(&data_dir.join(DB_FILE))?);
        Self::build(config, store, Arc::new(SystemClock), Some(lock))
    }

    /// Opens the replica for a one-shot writer (`sync`, `resync`): the agent lock as for
    /// [`Syncmon::open_agent`], without the quick check, which reads the whole file (about 0.2 s
    /// per 100,000 records) and would cost a `sync` run from cron every few minutes that much.
    pub fn open_one_shot(config: Config, data_dir: &Path) -> Result<Syncmon> {
        let lock = AgentLock::acquire(data_dir, SystemClock.now_ms())?;
        let store = Arc::new(Store::open(&data_dir.join(DB_FILE))?);
        Self::build(config, store, Arc::new(SystemClock), Some(Arc::new(lock)))
    }

    /// Opens the replica for reading only (`status`, `export`, `failed list|show`, `requests`):
    /// no lock, no migration, no write; works beside a busy agent and on a read-only copy.
    /// Commands that would write fail with a message saying the database is read-only.
    pub fn open_read_only(config: Config, data_dir: &Path) -> Result<Syncmon> {
        let store = Arc::new(Store::open_read_only(&data_dir.join(DB_FILE))?);
        Self::build(config, store, Arc::new(SystemClock), None)
    }

    /// SQLite's full integrity check of the replica in `data_dir`, read-only: the problems found,
    /// none when it is sound. [`store::damaged_advice`] says what to do otherwise.
    pub fn check_integrity(data_dir: &Path) -> Result<Vec<String>> {
        match Store::open_read_only(&data_dir.join(DB_FILE)) {
            Ok(store) => Ok(store.integrity_check()?),
            Err(StoreError::Damaged { problems, .. }) => Ok(problems),
            Err(e) => Err(e.into()),
        }
    }

    fn build(config: Config, store: Arc<Store>, clock: Arc<dyn Clock>, agent_lock: Option<Arc<AgentLock>>) -> Result<Syncmon> {
        let writable = !store.is_read_only();
        let http = SourceClient::http_client();
        let targets: BTreeMap<&str, Arc<SourceClient>> =
            config.targets.iter().map(|t| (t.id.as_str(), Arc::new(SourceClient::for_target(t, http.clone(), store.clone(), clock.clone())))).collect();
        let mut entities = Vec::new();
        for c in &config.connections {
            let source = Arc::new(SourceClient::new(c.clone(), http.clone(), store.clone(), clock.clone()));
            for e in &c.entities {
                let key = EntityKey::new(&c.id, &e.name);
                if writable {
                    store.ensure_entity(&key)?;
                }
                let profile = Profile::new(c, e).map_err(Error::Usage)?;
                let forward = match e.forward_to.as_deref().and_then(|t| targets.get(t)) {
                    Some(target) => Some(Arc::new(forward::Forwarder::new(target.clone(), &e.forward_path()).map_err(Error::Usage)?)),
                    None => None,
                };
                if writable {
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
                }));
            }
        }
        let events = Arc::new(EventBus::new(clock.clone()));
        let ctx = Arc::new(EngineCtx { store, events, clock, runs_kept: config.storage.runs_kept });
        let warnings = config.warnings();
        Ok(Syncmon { config, ctx, entities, config_path: None, warnings, agent_lock })
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

    /// Up to `limit` of the last events (at most `events::RECENT_EVENTS`), newest first.
    pub fn recent_events(&self, limit: usize) -> Vec<Event> {
        self.ctx.events.recent(limit)
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

    /// One catch-up cycle per selected entity (an interrupted resync pass resumes instead).
    pub async fn sync_once(&self, entities: &[Arc<EntityRt>], cancel: &CancellationToken) -> Vec<CycleReport> {
        let runs = entities.iter().map(|e| {
            let resuming = self.ctx.store.entity(&e.key).map(|r| r.resync_state == Some(ResyncState::Running)).unwrap_or(false);
            let kind = if resuming { CycleKind::Resync { allow_deletions: false } } else { CycleKind::Incremental };
            async move { self.then_forward(e, engine::run_cycle(&self.ctx, e, kind, cancel).await, cancel).await }
        });
        futures::future::join_all(runs).await
    }

    /// Delivers what the cycle queued (and anything left from before) to the entity's target,
    /// so that one-shot commands forward too; the agent's delivery workers do it continuously.
    async fn then_forward(&self, e: &EntityRt, mut report: CycleReport, cancel: &CancellationToken) -> CycleReport {
        if let Some(f) = e.forward.as_ref().filter(|_| !cancel.is_cancelled()) {
            report.forwarded = Some(forward::deliver_pending(&self.ctx, &e.key, f, cancel).await);
        }
        report
    }

    /// A full resync pass of one entity: tombstones what the source no longer has, under the
    /// deletion guard unless `allow_deletions`. After the guard tripped, allowing deletions
    /// applies the finished pass's deletions.
    pub async fn resync(&self, name: &str, allow_deletions: bool, cancel: &CancellationToken) -> Result<CycleReport> {
        let e = self.one(name)?;
        let row = self.ctx.store.entity(&e.key)?;
        if row.resync_state == Some(ResyncState::GuardTripped) && allow_deletions {
            let now = self.ctx.clock.now_ms();
            let end = self.ctx.store.resync_finish(&e.key, row.resync_pass, e.cfg.deletion_guard, true, now)?;
            let run = self.ctx.store.begin_run(&e.key, "resync", now)?;
            self.ctx.store.finish_run(&e.key, run, Outcome::CaughtUp, None, None, None, false, now, self.ctx.runs_kept)?;
            let mut report = engine::run_cycle(&self.ctx, &e, CycleKind::Incremental, cancel).await;
            report.kind = "resync";
            report.pass = Some(end);
            return Ok(self.then_forward(&e, report, cancel).await);
        }
        let report = engine::run_cycle(&self.ctx, &e, CycleKind::Resync { allow_deletions }, cancel).await;
        Ok(self.then_forward(&e, report, cancel).await)
    }

    /// Asks for a cycle of the entity now. Returns false for an unknown entity.
    pub fn nudge(&self, connection: &str, entity: &str) -> bool {
        scheduler::nudge(&self.ctx, &self.entities, connection, entity)
    }

    pub fn status(&self) -> Result<Vec<EntityStatus>> {
        let now = self.ctx.clock.now_ms();
        let rows: BTreeMap<EntityKey, store::EntityRow> = self.ctx.store.entities()?.into_iter().map(|r| (r.key.clone(), r)).collect();
        let mut out = Vec::new();
        for e in &self.entities {
            let Some(row) = rows.get(&e.key) else {
                // Read-only: an entity added to the config that no agent has opened yet.
                out.push(EntityStatus {
                    connection: e.key.connection.clone(),
                    entity: e.key.entity.clone(),
                    health: Health::Pending,
                    reason: Some("not synced yet".to_string()),
                    checkpoint: RowVersion::zero().to_string(),
                    last_caught_up_at: None,
                    lag_seconds: None,
                    replica_rows: 0,
                    pending_failed: 0,
                    last_http_status: None,
                    last_tracking_id: None,
                    next_attempt_at: None,
                    poll_every_seconds: e.cfg.poll_every.as_secs(),
                    resync_seen: None,
                    forward_pending: 0,
                    forward_error: None,
                });
                continue;
            };
            let poll_ms = e.cfg.poll_every.as_millis() as i64;
            let lag_ms = row.last_caught_up_at.map(|t| (now - t).max(0));
            let (health, reason) = if row.paused {
                (Health::Paused, Some("paused by the user".to_string()))
            } else if row.next_attempt_at.is_some_and(|t| t > now) && row.last_outcome == Some(Outcome::Waiting) {
                // Front ends say "waiting for the source until 14:05" from next_attempt_at, in local time.
                (Health::Waiting, row.last_error.clone())
            } else if row.next_attempt_at.is_some_and(|t| t > now) && row.last_outcome != Some(Outcome::CaughtUp) {
                (Health::CircuitOpen, row.last_error.clone())
            } else if row.resync_state == Some(ResyncState::Running) && row.last_outcome != Some(Outcome::Failed) {
                // A resync pass whose last cycle failed is failing (it resumes at the next cycle).
                (Health::Resyncing, Some(format!("full resync in progress: {} records read", row.resync_seen)))
            } else if row.resync_state == Some(ResyncState::GuardTripped) {
                (Health::Failing, row.last_error.clone().or(Some("the full resync stopped at the deletion guard".into())))
            } else if row.last_outcome == Some(Outcome::Failed) {
                (Health::Failing, row.last_error.clone())
            } else if lag_ms.is_none() {
                (Health::Pending, Some("not synced yet".to_string()))
            } else if lag_ms.is_some_and(|l| l > 2 * poll_ms) {
                (Health::Lagging, Some(format!("not caught up for {}", humanize_ms(lag_ms.unwrap_or(0)))))
            } else {
                (Health::Healthy, None)
            };
            out.push(EntityStatus {
                connection: e.key.connection.clone(),
                entity: e.key.entity.clone(),
                health,
                reason,
                checkpoint: row.checkpoint.to_string(),
                last_caught_up_at: row.last_caught_up_at,
                lag_seconds: lag_ms.map(|l| l / 1000),
                replica_rows: self.ctx.store.replica_count(&e.key)?,
                pending_failed: self.ctx.store.pending_failed_count(&e.key)?,
                last_http_status: row.last_http_status,
                last_tracking_id: row.last_tracking_id.clone(),
                next_attempt_at: row.next_attempt_at.filter(|t| *t > now),
                poll_every_seconds: e.cfg.poll_every.as_secs(),
                resync_seen: (row.resync_state == Some(ResyncState::Running)).then_some(row.resync_seen),
                forward_pending: self.ctx.store.outbox_count(&e.key)?,
                forward_error: e.forward.as_ref().and_then(|f| f.last_error.lock().unwrap().clone()),
            });
        }
        Ok(out)
    }

    pub fn runs(&self, name: &str, limit: u32) -> Result<Vec<RunRow>> {
        Ok(self.ctx.store.runs(&self.one(name)?.key, limit)?)
    }

    pub fn requests(&self, entity: Option<&str>, failed_only: bool, limit: u32) -> Result<Vec<RequestRow>> {
        let key = match entity {
            Some(n) => Some(self.one(n)?.key.clone()),
            None => None,
        };
        Ok(self.ctx.store.requests(key.as_ref(), failed_only, limit)?)
    }

    /// Streams the replica as `{"id","rowVersion","data"}` lines.
    pub fn export(&self, name: &str, include_deleted: bool, out: &mut dyn std::io::Write) -> Result<u64> {
        let e = self.one(name)?;
        self.ctx.store.entity(&e.key)?; // "no entity … in the replica" rather than "no such table"
        let mut n = 0u64;
        self.ctx.store.for_each_replica_row(&e.key, include_deleted, |row| {
            serde_json::to_writer(&mut *out, &row)?;
            out.write_all(b"\n")?;
            n += 1;
            Ok(())
        })?;
        out.flush().map_err(|x| Error::Io(x.to_string()))?;
        Ok(n)
    }

    pub fn failed_items(&self, filter: &FailedFilter, before_id: Option<i64>, limit: u32) -> Result<Vec<FailedItem>> {
        Ok(self.ctx.store.failed_items(filter, before_id, limit)?)
    }

    pub fn failed_item(&self, id: i64) -> Result<FailedItem> {
        Ok(self.ctx.store.failed_item(id)?)
    }

    /// Expands an entity filter given as NAME or CONNECTION/NAME into the store's filter.
    pub fn failed_filter_for(&self, entity: Option<&str>) -> Result<FailedFilter> {
        let mut f = FailedFilter::default();
        if let Some(n) = entity {
            let e = self.one(n)?;
            f.connection = Some(e.key.connection.clone());
            f.entity = Some(e.key.entity.clone());
        }
        Ok(f)
    }

    pub fn failed_ids(&self, filter: &FailedFilter) -> Result<Vec<i64>> {
        Ok(self.ctx.store.failed_ids(filter)?)
    }

    /// Re-runs the failed stage of pending items. `validate`: with the current record re-fetched
    /// by id where the profile knows its URL, else with the stored payload; an item whose record
    /// the replica already holds in a newer version is resolved as superseded. `deliver`: sends
    /// the record to the target again (see [`forward::replay`]).
    pub async fn replay(&self, ids: &[i64], cancel: &CancellationToken) -> Result<ReplayReport> {
        let mut report = ReplayReport { replayed: 0, superseded: 0, still_failing: 0 };
        for id in ids {
            if cancel.is_cancelled() {
                break;
            }
            let item = self.ctx.store.failed_item(*id)?;
            if item.state != FailedState::Pending {
                continue;
            }
            let Some(e) = self.entities.iter().find(|e| e.key.connection == item.connection && e.key.entity == item.entity) else {
                continue;
            };
            if item.stage == FailedStage::Deliver {
                let outcome = match &e.forward {
                    Some(f) => forward::replay(&self.ctx, &e.key, f, &item, cancel).await?,
                    None => {
                        let rej = Rejected {
                            id: item.record_id.clone(),
                            version: None,
                            payload: item.payload.clone(),
                            kind: "not_forwarded",
                            message: format!("{} forwards to no target any more (no forward_to in the config); discard the item", e.key),
                        };
                        self.ctx.store.replay_failed_again(*id, &rej, None, self.ctx.clock.now_ms())?;
                        forward::Replayed::StillFailing
                    }
                };
                match outcome {
                    forward::Replayed::Replayed => report.replayed += 1,
                    forward::Replayed::Superseded => report.superseded += 1,
                    forward::Replayed::StillFailing => report.still_failing += 1,
                }
                continue;
            }
            let now = self.ctx.clock.now_ms();
            let (payload, tracking) = match item.record_id.as_deref().and_then(|rid| e.profile.record_url(rid)) {
                Some(url) => match e.source.fetch(&url, Some(&e.key.entity), cancel, |f| Ok(String::from_utf8_lossy(&f.body).into_owned()), |_, _, _| {}).await
                {
                    Ok((body, f)) => (body, f.tracking_id),
                    Err(f) if f.class == FailureClass::Config && f.http_status == Some(404) => {
                        // Gone at the source: nothing left to replay.
                        self.ctx.store.replay_failed_again(
                            *id,
                            &Rejected {
                                id: item.record_id.clone(),
                                version: None,
                                payload: item.payload.clone(),
                                kind: "not_found",
                                message: format!("the record no longer exists at the source ({f}); discard the item"),
                            },
                            f.tracking_id.as_deref(),
                            now,
                        )?;
                        report.still_failing += 1;
                        continue;
                    }
                    Err(f) => {
                        self.ctx.store.replay_failed_again(
                            *id,
                            &Rejected {
                                id: item.record_id.clone(),
                                version: None,
                                payload: item.payload.clone(),
                                kind: "fetch_failed",
                                message: f.to_string(),
                            },
                            f.tracking_id.as_deref(),
                            now,
                        )?;
                        report.still_failing += 1;
                        continue;
                    }
                },
                None => (item.payload.clone(), None),
            };
            match e.profile.validate_text(&payload) {
                Ok(record) => {
                    if self.ctx.store.apply_replayed(&e.key, &record, *id, now)? {
                        report.superseded += 1;
                    } else {
                        report.replayed += 1;
                    }
                }
                Err(rej) => {
                    self.ctx.store.replay_failed_again(*id, &rej, tracking.as_deref(), now)?;
                    report.still_failing += 1;
                }
            }
        }
        Ok(report)
    }

    pub fn discard(&self, ids: &[i64]) -> Result<usize> {
        Ok(self.ctx.store.discard_failed(ids, self.ctx.clock.now_ms())?)
    }

    pub fn set_paused(&self, name: &str, paused: bool) -> Result<()> {
        Ok(self.ctx.store.set_paused(&self.one(name)?.key, paused)?)
    }

    /// Pauses or resumes one entity (`Some(name)`) or all of them; returns how many changed.
    pub fn set_paused_where(&self, name: Option<&str>, paused: bool) -> Result<usize> {
        let keys: Vec<EntityKey> = match name {
            Some(n) => vec![self.one(n)?.key.clone()],
            None => self.entities.iter().map(|e| e.key.clone()).collect(),
        };
        Ok(self.ctx.store.set_paused_many(&keys, paused)?)
    }

    /// Sets the entity's checkpoint back to 0: the next cycle re-reads everything (the replica is
    /// kept; older versions never overwrite newer ones). Waits for a running cycle to end so that
    /// it cannot move the checkpoint forward again right after the reset.
    pub async fn reset_checkpoint(&self, name: &str) -> Result<()> {
        let e = self.one(name)?;
        let _idle = e.busy.lock().await;
        Ok(self.ctx.store.reset_checkpoint(&e.key, &RowVersion::zero())?)
    }

    /// Runs the agent until `cancel`: scheduled polls, nudges, the webhook receiver.
    pub async fn run(self: &Arc<Self>, cancel: CancellationToken) -> Result<()> {
        for w in &self.warnings {
            tracing::warn!("config: {}", w.message);
        }
        // The handle (and with it the agent lock) lives until the loop ends: this call awaits it.
        let agent = scheduler::Agent { config: self.config.clone(), ctx: self.ctx.clone(), entities: self.entities.clone() };
        scheduler::run(Arc::new(agent), cancel).await
    }
}

fn humanize_ms(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86399 => format!("{:.1} h", s as f64 / 3600.0),
        _ => format!("{:.1} days", s as f64 / 86400.0),
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

    /// Asks one entity (`Some(name)`) or all of them for a cycle now; returns how many were asked.
    pub fn nudge_where(&self, name: Option<&str>) -> Result<usize> {
        let selected = self.select(None, &name.into_iter().map(str::to_string).collect::<Vec<_>>())?;
        Ok(selected.iter().filter(|e| self.nudge(&e.key.connection, &e.key.entity)).count())
    }

    /// Calls, failures and latency of the request log since `since_ms`.
    pub fn request_stats(&self, since_ms: i64) -> Result<store::RequestStats> {
        Ok(self.ctx.store.request_stats(since_ms)?)
    }

    /// Records received per hour over the last `hours` hours before `now_ms`, oldest first.
    pub fn hourly_changes(&self, now_ms: i64, hours: usize) -> Result<BTreeMap<EntityKey, Vec<i64>>> {
        Ok(self.ctx.store.hourly_changes(now_ms, hours)?)
    }

    pub fn runs_of(&self, key: &EntityKey, limit: u32) -> Result<Vec<RunRow>> {
        Ok(self.ctx.store.runs(key, limit)?)
    }

    pub fn checkpoint_history(&self, key: &EntityKey, since_ms: i64) -> Result<Vec<store::CheckpointPoint>> {
        Ok(self.ctx.store.checkpoint_history(key, since_ms)?)
    }

    /// One page of failed items with the number of all that match.
    pub fn failed_page(&self, filter: &FailedFilter, offset: u32, limit: u32) -> Result<(i64, Vec<FailedItem>)> {
        Ok(self.ctx.store.failed_page_with_total(filter, offset, limit)?)
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self.ctx.store.setting(key)?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        Ok(self.ctx.store.set_setting(key, value)?)
    }

    /// Tells the subscribers (e.g. a bulk replay's progress).
    pub(crate) fn emit(&self, kind: EventKind) {
        self.ctx.events.emit(kind);
    }

    /// An HTTP client for `c` that logs its calls in the request log, like the engine's.
    pub(crate) fn source_client(&self, c: config::ConnectionConfig) -> SourceClient {
        SourceClient::new(c, SourceClient::http_client(), self.ctx.store.clone(), self.ctx.clock.clone())
    }
}
