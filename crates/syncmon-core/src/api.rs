//! The one RPC surface of the front ends (docs/api.md): a `Request` in, a JSON result or an
//! `ApiError` out. Transport-free: the desktop shell maps it onto a Tauri command, `syncmon serve`
//! onto `POST /api/rpc`; neither adds behaviour of its own.
//!
//! Every type that crosses to the UI derives `ts_rs::TS`; `tests/bindings.rs` generates the
//! TypeScript files in `ui/src/lib/generated/` and fails when the committed ones are stale.

use crate::config::{Config, ConfigWarning, ConnectionConfig, ProfileKind};
use crate::engine::CycleReport;
use crate::events::{Event, EventKind};
use crate::profile::Profile;
use crate::secrets::{self, Secret, SecretKind};
use crate::source::SourceClient;
use crate::store::{self, CheckpointPoint, FailedItem, RequestRow, RunRow};
use crate::{EntityStatus, Error, Health, ReplayReport, RowVersion, Syncmon};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

const HOUR_MS: i64 = 3_600_000;
/// Largest page of failed items a list may ask for.
pub const MAX_PAGE: u32 = 500;
/// Items replayed between two `replay_progress` events.
const REPLAY_CHUNK: usize = 100;
const SETTINGS_KEY: &str = "ui";

/// One call. JSON: `{ "method": "failed_page", "params": { … } }`.
#[derive(Clone, Serialize, Deserialize, TS)]
#[serde(tag = "method", content = "params", rename_all = "snake_case")]
pub enum Request {
    Overview {},
    SyncNow {
        #[ts(optional = nullable)]
        #[serde(default)]
        entity: Option<String>,
    },
    Resync {
        entity: String,
        #[serde(default)]
        allow_deletions: bool,
    },
    SetPaused {
        #[ts(optional = nullable)]
        #[serde(default)]
        entity: Option<String>,
        paused: bool,
    },
    ResetCheckpoint {
        entity: String,
    },
    EntityDetail {
        entity: String,
    },
    Requests {
        #[ts(optional = nullable)]
        #[serde(default)]
        entity: Option<String>,
        #[serde(default)]
        failed_only: bool,
        #[serde(default = "d_limit")]
        limit: u32,
    },
    FailedPage {
        #[serde(default)]
        filter: FailedFilter,
        #[serde(default)]
        offset: u32,
        #[serde(default = "d_limit")]
        limit: u32,
    },
    FailedItem {
        id: i64,
    },
    FailedReplay {
        #[ts(optional = nullable)]
        #[serde(default)]
        ids: Option<Vec<i64>>,
        #[ts(optional = nullable)]
        #[serde(default)]
        filter: Option<FailedFilter>,
    },
    FailedDiscard {
        #[ts(optional = nullable)]
        #[serde(default)]
        ids: Option<Vec<i64>>,
        #[ts(optional = nullable)]
        #[serde(default)]
        filter: Option<FailedFilter>,
    },
    Connections {},
    SaveConnection {
        connection: ConnectionView,
    },
    TestConnection {
        id: String,
    },
    SetSecret {
        connection: String,
        #[serde(default)]
        webhook: bool,
        secret: String,
    },
    Activity {
        #[serde(default = "d_limit")]
        limit: u32,
    },
    Settings {},
    SaveSettings {
        notifications: bool,
        failing_after_seconds: u64,
    },
}

fn d_limit() -> u32 {
    100
}

impl Request {
    /// The method name, for logs (a request may carry a secret, so it has no `Debug`).
    pub fn method(&self) -> &'static str {
        match self {
            Request::Overview {} => "overview",
            Request::SyncNow { .. } => "sync_now",
            Request::Resync { .. } => "resync",
            Request::SetPaused { .. } => "set_paused",
            Request::ResetCheckpoint { .. } => "reset_checkpoint",
            Request::EntityDetail { .. } => "entity_detail",
            Request::Requests { .. } => "requests",
            Request::FailedPage { .. } => "failed_page",
            Request::FailedItem { .. } => "failed_item",
            Request::FailedReplay { .. } => "failed_replay",
            Request::FailedDiscard { .. } => "failed_discard",
            Request::Connections {} => "connections",
            Request::SaveConnection { .. } => "save_connection",
            Request::TestConnection { .. } => "test_connection",
            Request::SetSecret { .. } => "set_secret",
            Request::Activity { .. } => "activity",
            Request::Settings {} => "settings",
            Request::SaveSettings { .. } => "save_settings",
        }
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Request({})", self.method())
    }
}

/// What went wrong, for a front end: a closed set of `code`s, a message that says what to do
/// next, and for form validation the offending `field` (e.g. `base_url`, `entities[0].page_size`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ApiError { code: code.into(), message: message.into(), field: None }
    }
    pub fn field(code: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { code: code.into(), message: message.into(), field: Some(field.into()) }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new("usage", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} ({}): {}", self.code, field, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        Error::from(e).into()
    }
}

/// Sent on the HTTP event stream in place of events a slow client missed: refetch what is shown.
#[derive(Debug, Clone, Copy, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamNotice {
    ResyncNeeded,
}

/// The failed-items filter of the UI: `entity` is written `connection/entity`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
pub struct FailedFilter {
    #[ts(optional = nullable)]
    #[serde(default)]
    pub entity: Option<String>,
    /// validate | apply | deliver
    #[ts(optional = nullable)]
    #[serde(default)]
    pub stage: Option<String>,
    #[ts(optional = nullable)]
    #[serde(default)]
    pub error_kind: Option<String>,
    /// pending (the default) | resolved | discarded
    #[ts(optional = nullable)]
    #[serde(default)]
    #[ts(type = "\"pending\" | \"resolved\" | \"discarded\" | null")]
    pub state: Option<String>,
    /// Matches the record id, the `Trackingid` or the message.
    #[ts(optional = nullable)]
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct OverviewHeader {
    /// The worst status of any entity.
    pub health: Health,
    /// Share of failed calls (no answer or HTTP 4xx/5xx) over the last 5 minutes, 0..1.
    pub error_rate_5m: f64,
    /// None when there were no calls in the last 5 minutes.
    pub p95_ms_5m: Option<i64>,
    pub pending_failed: i64,
    pub requests_5m: i64,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct OverviewResult {
    pub entities: Vec<EntityStatus>,
    pub header: OverviewHeader,
    /// `connection/entity` → records received per hour over the last 24 h, oldest first.
    pub sparklines: BTreeMap<String, Vec<i64>>,
    /// Risky settings in the config (plain HTTP to a remote host, an open webhook listener).
    pub warnings: Vec<ConfigWarning>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct SyncNowResult {
    pub nudged: usize,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct SetPausedResult {
    pub changed: usize,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct ThroughputPoint {
    /// Start of the hour (ms since the epoch).
    pub at: i64,
    pub records: i64,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct EntityDetailResult {
    pub status: EntityStatus,
    /// The latest 50 runs, newest first.
    pub runs: Vec<RunRow>,
    /// Checkpoint after each cycle that moved it, last 7 days, oldest first.
    pub checkpoints: Vec<CheckpointPoint>,
    /// Records received per hour, last 24 h, oldest first.
    pub throughput: Vec<ThroughputPoint>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct FailedPageResult {
    pub total: i64,
    /// Payloads cut to 2 KB; `failed_item` gives the full one.
    pub items: Vec<FailedItem>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct FailedDiscardResult {
    pub discarded: usize,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct TestConnectionResult {
    pub ok: bool,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    pub tracking_id: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct SaveConnectionResult {
    /// The file that was written.
    pub path: String,
    /// The running engine keeps its config until it is restarted.
    pub restart_required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Settings {
    /// Desktop notifications on or off.
    pub notifications: bool,
    /// Notify when an entity has been failing for this long.
    pub failing_after_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { notifications: true, failing_after_seconds: 600 }
    }
}

/// A connection as the Connections screen edits it: the config without any secret, plus whether
/// the secrets are there. Durations are written like the config file ("30s", "5m", "24h").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ConnectionView {
    pub id: String,
    pub base_url: String,
    #[ts(type = "\"rowversion\" | \"cursor\"")]
    pub profile: String,
    #[ts(type = "\"none\" | \"api_key\" | \"bearer\" | \"oauth2\"")]
    pub auth: String,
    /// Header that carries the key when auth = api_key (default `x-np-api-key`).
    #[serde(default)]
    pub api_key_header: Option<String>,
    #[serde(default)]
    pub token_url: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    /// Name of an environment variable holding the secret (headless machines), instead of the keyring.
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    pub max_concurrency: usize,
    pub requests_per_second: f64,
    pub timeout: String,
    #[serde(default)]
    pub entities: Vec<EntityView>,
    /// Ignored on save.
    #[serde(default)]
    pub has_secret: bool,
    /// Ignored on save.
    #[serde(default)]
    pub has_webhook_secret: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct EntityView {
    pub name: String,
    /// Path under the base URL; default `/<name>`.
    #[serde(default)]
    pub path: Option<String>,
    pub poll_every: String,
    pub page_size: u32,
    #[serde(default)]
    pub full_resync_every: Option<String>,
    #[serde(default)]
    pub required_fields: Vec<String>,
    pub deletion_guard: f64,
}

/// Reads a request from JSON, treating a missing `params` as `{}`, with a message that says what
/// was wrong. A plaintext secret inside `save_connection` is refused with its `field`.
pub fn parse_request(mut v: Value) -> Result<Request, ApiError> {
    let Some(obj) = v.as_object_mut() else {
        return Err(ApiError::usage("the request must be a JSON object {\"method\": …, \"params\": {…}}; see docs/api.md"));
    };
    if !obj.contains_key("params") {
        obj.insert("params".into(), json!({}));
    }
    if obj.get("method").and_then(Value::as_str) == Some("save_connection") {
        if let Some(conn) = obj.get("params").and_then(|p| p.get("connection")).and_then(Value::as_object) {
            if let Some(key) = conn.keys().find(|k| crate::config::SECRET_KEYS.contains(&k.as_str())) {
                return Err(ApiError::field(
                    "config",
                    key.clone(),
                    format!("`{key}` would store a secret in the config file, which Syncmon refuses; store it with set_secret (the OS keyring) instead"),
                ));
            }
        }
    }
    serde_json::from_value(v).map_err(|e| ApiError::usage(format!("bad request: {e}; docs/api.md lists the methods and their params")))
}

/// Runs one request against the engine.
pub async fn call(sm: &Arc<Syncmon>, req: Request) -> Result<Value, ApiError> {
    match req {
        Request::Overview {} => to_json(overview(sm)?),
        Request::SyncNow { entity } => {
            let selected = sm.select(None, &entity.into_iter().collect::<Vec<_>>())?;
            let nudged = selected.iter().filter(|e| sm.nudge(&e.key.connection, &e.key.entity)).count();
            to_json(SyncNowResult { nudged })
        }
        Request::Resync { entity, allow_deletions } => {
            let report: CycleReport = sm.resync(&entity, allow_deletions, &CancellationToken::new()).await?;
            to_json(report)
        }
        Request::SetPaused { entity, paused } => to_json(SetPausedResult { changed: sm.set_paused_where(entity.as_deref(), paused)? }),
        Request::ResetCheckpoint { entity } => {
            sm.reset_checkpoint(&entity).await?;
            Ok(json!({}))
        }
        Request::EntityDetail { entity } => to_json(entity_detail(sm, &entity)?),
        Request::Requests { entity, failed_only, limit } => {
            let rows: Vec<RequestRow> = sm.requests(entity.as_deref(), failed_only, limit.min(1000))?;
            to_json(rows)
        }
        Request::FailedPage { filter, offset, limit } => {
            if limit > MAX_PAGE {
                return Err(ApiError::field("usage", "limit", format!("a page holds at most {MAX_PAGE} items; ask for the next page with offset")));
            }
            let f = store_filter(sm, &filter)?;
            let (total, items) = sm.store().failed_page_with_total(&f, offset, limit)?;
            to_json(FailedPageResult { total, items })
        }
        Request::FailedItem { id } => to_json(sm.failed_item(id)?),
        Request::FailedReplay { ids, filter } => {
            let ids = selection(sm, ids, filter)?;
            to_json(replay(sm, &ids).await?)
        }
        Request::FailedDiscard { ids, filter } => {
            let ids = selection(sm, ids, filter)?;
            to_json(FailedDiscardResult { discarded: sm.discard(&ids)? })
        }
        Request::Connections {} => {
            let config = current_config(sm)?;
            let views = tokio::task::spawn_blocking(move || config.connections.iter().map(connection_view).collect::<Vec<_>>())
                .await
                .map_err(|e| ApiError::new("io", format!("looking up the keyring failed: {e}")))?;
            to_json(views)
        }
        Request::SaveConnection { connection } => to_json(save_connection(sm, &connection)?),
        Request::TestConnection { id } => to_json(test_connection(sm, &id).await?),
        Request::SetSecret { connection, webhook, secret } => {
            set_secret(sm, &connection, webhook, secret).await?;
            Ok(json!({}))
        }
        Request::Activity { limit } => {
            let events: Vec<Event> = sm.recent_events(limit as usize);
            to_json(events)
        }
        Request::Settings {} => to_json(settings(sm)?),
        Request::SaveSettings { notifications, failing_after_seconds } => {
            let s = Settings { notifications, failing_after_seconds };
            let text = serde_json::to_string(&s).map_err(|e| ApiError::new("storage", e.to_string()))?;
            sm.store().set_setting(SETTINGS_KEY, &text)?;
            to_json(s)
        }
    }
}

fn to_json<T: Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::new("storage", format!("cannot encode the result: {e}")))
}

/// The stored settings, or the defaults.
pub fn settings(sm: &Syncmon) -> Result<Settings, ApiError> {
    Ok(sm.store().setting(SETTINGS_KEY)?.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
}

fn severity(h: Health) -> u8 {
    match h {
        Health::Healthy => 0,
        Health::Paused => 1,
        Health::Pending => 2,
        Health::Resyncing => 3,
        Health::Waiting => 4,
        Health::Lagging => 5,
        Health::Failing => 6,
        Health::CircuitOpen => 7,
    }
}

pub fn overview(sm: &Syncmon) -> Result<OverviewResult, ApiError> {
    let now = sm.ctx.clock.now_ms();
    let entities = sm.status()?;
    let stats = sm.store().request_stats(now - 5 * 60_000)?;
    let mut hourly = sm.store().hourly_changes(now, 24)?;
    let sparklines = entities
        .iter()
        .map(|e| {
            let key = store::EntityKey::new(&e.connection, &e.entity);
            (key.to_string(), hourly.remove(&key).unwrap_or_else(|| vec![0; 24]))
        })
        .collect();
    let health = entities.iter().map(|e| e.health).max_by_key(|h| severity(*h)).unwrap_or(Health::Healthy);
    let header = OverviewHeader {
        health,
        error_rate_5m: stats.error_rate,
        p95_ms_5m: stats.p95_ms,
        pending_failed: entities.iter().map(|e| e.pending_failed).sum(),
        requests_5m: stats.requests,
    };
    Ok(OverviewResult { entities, header, sparklines, warnings: sm.config_warnings().to_vec() })
}

fn entity_detail(sm: &Syncmon, name: &str) -> Result<EntityDetailResult, ApiError> {
    let e = sm.one(name)?;
    let now = sm.ctx.clock.now_ms();
    let status = sm
        .status()?
        .into_iter()
        .find(|s| s.connection == e.key.connection && s.entity == e.key.entity)
        .ok_or_else(|| ApiError::new("not_found", format!("no status for {}", e.key)))?;
    let runs = sm.store().runs(&e.key, 50)?;
    let checkpoints = sm.store().checkpoint_history(&e.key, now - 7 * 24 * HOUR_MS)?;
    let start = now - 24 * HOUR_MS;
    let counts = sm.store().hourly_changes(now, 24)?.remove(&e.key).unwrap_or_else(|| vec![0; 24]);
    let throughput = counts.into_iter().enumerate().map(|(i, records)| ThroughputPoint { at: start + i as i64 * HOUR_MS, records }).collect();
    Ok(EntityDetailResult { status, runs, checkpoints, throughput })
}

fn store_filter(sm: &Syncmon, f: &FailedFilter) -> Result<store::FailedFilter, ApiError> {
    let mut out = store::FailedFilter::default();
    if let Some(name) = f.entity.as_deref().filter(|n| !n.is_empty()) {
        let e = sm.one(name).map_err(|e| ApiError::field(e.code(), "entity", e.to_string()))?;
        out.connection = Some(e.key.connection.clone());
        out.entity = Some(e.key.entity.clone());
    }
    if let Some(state) = f.state.as_deref() {
        if !matches!(state, "pending" | "resolved" | "discarded") {
            return Err(ApiError::field("usage", "state", format!("state `{state}` is none of pending, resolved, discarded")));
        }
    }
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    out.stage = nonempty(&f.stage);
    out.error_kind = nonempty(&f.error_kind);
    out.state = nonempty(&f.state);
    out.text = nonempty(&f.text);
    Ok(out)
}

fn selection(sm: &Syncmon, ids: Option<Vec<i64>>, filter: Option<FailedFilter>) -> Result<Vec<i64>, ApiError> {
    match (ids, filter) {
        (Some(ids), None) => Ok(ids),
        (None, Some(f)) => Ok(sm.failed_ids(&store_filter(sm, &f)?)?),
        (Some(_), Some(_)) => Err(ApiError::usage("give either ids or a filter, not both")),
        (None, None) => Err(ApiError::usage("give the failed item ids, or a filter to act on every matching item")),
    }
}

/// Replays in chunks so a bulk replay reports progress (`replay_progress`) as it goes.
async fn replay(sm: &Syncmon, ids: &[i64]) -> Result<ReplayReport, ApiError> {
    let cancel = CancellationToken::new();
    let mut total = ReplayReport { replayed: 0, superseded: 0, still_failing: 0 };
    let mut done = 0;
    for chunk in ids.chunks(REPLAY_CHUNK) {
        let r = sm.replay(chunk, &cancel).await?;
        total.replayed += r.replayed;
        total.superseded += r.superseded;
        total.still_failing += r.still_failing;
        done += chunk.len();
        sm.ctx.events.emit(EventKind::ReplayProgress {
            done,
            total: ids.len(),
            replayed: total.replayed,
            superseded: total.superseded,
            still_failing: total.still_failing,
        });
    }
    Ok(total)
}

/// The config as it is on disk now (so a saved connection shows at once), or the one the engine
/// was opened with when there is no file.
fn current_config(sm: &Syncmon) -> Result<Config, ApiError> {
    match sm.config_path() {
        Some(path) if path.exists() => Ok(Config::load(path).map_err(Error::from)?),
        _ => Ok(sm.config().clone()),
    }
}

fn has_secret(c: &ConnectionConfig, kind: SecretKind) -> bool {
    let env = match kind {
        SecretKind::Connection => &c.secret_env,
        SecretKind::Webhook => &c.webhook_secret_env,
    };
    match env {
        Some(var) => std::env::var(var).is_ok_and(|v| !v.is_empty()),
        // An unreachable keyring reads as "no secret": the Connections screen offers to set one.
        None => secrets::keyring_get(&secrets::keyring_account(&c.id, kind)).ok().flatten().is_some(),
    }
}

fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The config as the screen shows it; looks up the keyring (blocking).
pub fn connection_view(c: &ConnectionConfig) -> ConnectionView {
    ConnectionView {
        id: c.id.clone(),
        base_url: c.base_url.clone(),
        profile: match c.profile {
            ProfileKind::Rowversion => "rowversion",
            ProfileKind::Cursor => "cursor",
        }
        .into(),
        auth: match c.auth {
            crate::config::AuthKind::None => "none",
            crate::config::AuthKind::ApiKey => "api_key",
            crate::config::AuthKind::Bearer => "bearer",
            crate::config::AuthKind::Oauth2 => "oauth2",
        }
        .into(),
        api_key_header: Some(c.api_key_header.clone()),
        token_url: c.token_url.clone(),
        client_id: c.client_id.clone(),
        scope: c.scope.clone(),
        secret_env: c.secret_env.clone(),
        webhook_secret_env: c.webhook_secret_env.clone(),
        api_version: c.api_version.clone(),
        max_concurrency: c.max_concurrency,
        requests_per_second: c.requests_per_second,
        timeout: fmt_duration(c.timeout),
        entities: c
            .entities
            .iter()
            .map(|e| EntityView {
                name: e.name.clone(),
                path: e.path.clone(),
                poll_every: fmt_duration(e.poll_every),
                page_size: e.page_size,
                full_resync_every: e.full_resync_every.map(fmt_duration),
                required_fields: e.required_fields.clone(),
                deletion_guard: e.deletion_guard,
            })
            .collect(),
        has_secret: c.auth != crate::config::AuthKind::None && has_secret(c, SecretKind::Connection),
        has_webhook_secret: has_secret(c, SecretKind::Webhook),
    }
}

fn valid_env_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Checks what the TOML types alone cannot say well, naming the form field.
fn check_view(v: &ConnectionView) -> Result<(), ApiError> {
    for (field, value) in [("secret_env", &v.secret_env), ("webhook_secret_env", &v.webhook_secret_env)] {
        if let Some(name) = value.as_deref().filter(|s| !s.is_empty()) {
            if !valid_env_name(name) {
                // Most likely the secret itself pasted into the wrong box: never write it.
                return Err(ApiError::field(
                    "config",
                    field,
                    "this must be the NAME of an environment variable (letters, digits, `_`), not the secret itself; \
                     to store the secret, use Set secret (the OS keyring)",
                ));
            }
        }
    }
    if !matches!(v.profile.as_str(), "rowversion" | "cursor") {
        return Err(ApiError::field("config", "profile", format!("profile `{}` is none of rowversion, cursor", v.profile)));
    }
    if !matches!(v.auth.as_str(), "none" | "api_key" | "bearer" | "oauth2") {
        return Err(ApiError::field("config", "auth", format!("auth `{}` is none of none, api_key, bearer, oauth2", v.auth)));
    }
    let duration = |field: String, text: &str| {
        humantime::parse_duration(text)
            .map(|_| ())
            .map_err(|_| ApiError::field("config", field, "this is not a duration; write e.g. \"30s\", \"5m\", \"24h\""))
    };
    duration("timeout".into(), &v.timeout)?;
    for (i, e) in v.entities.iter().enumerate() {
        duration(format!("entities[{i}].poll_every"), &e.poll_every)?;
        if let Some(f) = &e.full_resync_every {
            duration(format!("entities[{i}].full_resync_every"), f)?;
        }
    }
    Ok(())
}

/// Names the form field a config validation message is about.
fn field_of(message: &str, v: &ConnectionView) -> Option<String> {
    const ENTITY_KEYS: &[&str] = &["page_size", "deletion_guard", "poll_every", "full_resync_every", "required_fields", "path"];
    const CONN_KEYS: &[&str] = &[
        "base_url", "token_url", "client_id", "max_concurrency", "requests_per_second", "api_key_header", "secret_env", "webhook_secret_env",
        "timeout", "profile", "auth", "cursor",
    ];
    // "connections[2].entities[1].page_size (line 14) …": the key path, within the connection.
    if let Some(rest) = message.strip_prefix("connections[").and_then(|r| r.split_once("].")).map(|(_, r)| r) {
        let key = rest.split([' ', ':']).next().unwrap_or("");
        if !key.is_empty() {
            return Some(key.to_string());
        }
    }
    if let Some(rest) = message.split("entity `").nth(1) {
        let name = rest.split('`').next().unwrap_or("");
        let i = v.entities.iter().position(|e| e.name == name)?;
        let key = ENTITY_KEYS.iter().find(|k| message.contains(*k)).copied().unwrap_or("name");
        return Some(format!("entities[{i}].{key}"));
    }
    if let Some(k) = CONN_KEYS.iter().find(|k| message.contains(*k)) {
        return Some(k.to_string());
    }
    (message.contains("id may hold") || message.contains("unique `id`")).then(|| "id".into())
}

/// Writes `v` into the table, keeping the comments around an existing key and value (replacing
/// the item in place: inserting anew would drop the comment lines above the key).
fn set(table: &mut toml_edit::Table, key: &str, v: impl Into<toml_edit::Value>) {
    let mut v: toml_edit::Value = v.into();
    match table.get_mut(key) {
        Some(item) => {
            if let Some(old) = item.as_value() {
                *v.decor_mut() = old.decor().clone();
            }
            *item = toml_edit::Item::Value(v);
        }
        None => {
            table.insert(key, toml_edit::Item::Value(v));
        }
    }
}

/// Like `set`, but a value equal to the default is only written when the file already has the key.
fn set_unless_default<T: PartialEq + Into<toml_edit::Value>>(table: &mut toml_edit::Table, key: &str, v: T, default: T) {
    if table.contains_key(key) || v != default {
        set(table, key, v);
    }
}

fn set_opt(table: &mut toml_edit::Table, key: &str, v: &Option<String>) {
    match v.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => set(table, key, s),
        None => {
            table.remove(key);
        }
    }
}

fn set_duration(table: &mut toml_edit::Table, key: &str, text: &str, default: Duration) {
    let same = humantime::parse_duration(text).is_ok_and(|d| d == default);
    if table.contains_key(key) || !same {
        set(table, key, text);
    }
}

fn fill_entity(t: &mut toml_edit::Table, e: &EntityView) {
    set(t, "name", e.name.as_str());
    set_opt(t, "path", &e.path);
    set_duration(t, "poll_every", &e.poll_every, Duration::from_secs(300));
    set_unless_default(t, "page_size", e.page_size as i64, 1000);
    set_opt(t, "full_resync_every", &e.full_resync_every);
    if e.required_fields.is_empty() {
        t.remove("required_fields");
    } else {
        set(t, "required_fields", e.required_fields.iter().collect::<toml_edit::Array>());
    }
    set_unless_default(t, "deletion_guard", e.deletion_guard, 0.5);
}

fn fill_connection(t: &mut toml_edit::Table, v: &ConnectionView) {
    set(t, "id", v.id.as_str());
    set(t, "base_url", v.base_url.as_str());
    set_unless_default(t, "profile", v.profile.as_str(), "rowversion");
    set_unless_default(t, "auth", v.auth.as_str(), "none");
    match v.api_key_header.as_deref().filter(|s| !s.is_empty()) {
        Some(h) => set_unless_default(t, "api_key_header", h, "x-np-api-key"),
        None => {
            t.remove("api_key_header");
        }
    }
    for (key, value) in [
        ("token_url", &v.token_url),
        ("client_id", &v.client_id),
        ("scope", &v.scope),
        ("secret_env", &v.secret_env),
        ("webhook_secret_env", &v.webhook_secret_env),
        ("api_version", &v.api_version),
    ] {
        set_opt(t, key, value);
    }
    set_unless_default(t, "max_concurrency", v.max_concurrency as i64, 5);
    set_unless_default(t, "requests_per_second", v.requests_per_second, 10.0);
    set_duration(t, "timeout", &v.timeout, Duration::from_secs(30));

    // Entities in the order the screen lists them; existing tables (and their comments) are kept.
    let mut old: Vec<toml_edit::Table> = match t.remove("entity") {
        Some(toml_edit::Item::ArrayOfTables(a)) => a.into_iter().collect(),
        _ => Vec::new(),
    };
    let mut entities = toml_edit::ArrayOfTables::new();
    for e in &v.entities {
        let mut table = match old.iter().position(|o| o.get("name").and_then(|n| n.as_str()) == Some(e.name.as_str())) {
            Some(i) => old.remove(i),
            None => toml_edit::Table::new(),
        };
        fill_entity(&mut table, e);
        entities.push(table);
    }
    if !entities.is_empty() {
        t.insert("entity", toml_edit::Item::ArrayOfTables(entities));
    }
}

/// Saves one connection into the config file, editing it in place (comments and the other
/// connections stay as they are). Validated with the same rules as loading; never writes a secret.
pub fn save_connection(sm: &Syncmon, v: &ConnectionView) -> Result<SaveConnectionResult, ApiError> {
    let path = sm.config_path().ok_or_else(|| {
        ApiError::usage("this engine was started without a config file, so there is nothing to save to; start it with --config PATH")
    })?;
    check_view(v)?;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(ApiError::new("io", format!("cannot read {}: {e}", path.display()))),
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| ApiError::new("config", format!("{} is not valid TOML ({e}); fix it by hand first", path.display())))?;
    if !doc.contains_key("connection") {
        doc.insert("connection", toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new()));
    }
    let connections = doc["connection"]
        .as_array_of_tables_mut()
        .ok_or_else(|| ApiError::new("config", format!("{}: `connection` must be written [[connection]]", path.display())))?;
    let existing = connections.iter_mut().find(|t| t.get("id").and_then(|i| i.as_str()) == Some(v.id.as_str()));
    match existing {
        Some(table) => fill_connection(table, v),
        None => {
            let mut table = toml_edit::Table::new();
            fill_connection(&mut table, v);
            connections.push(table);
        }
    }
    let new_text = doc.to_string();
    let parsed = Config::parse(&new_text).map_err(|message| {
        let field = field_of(&message, v);
        ApiError { code: "config".into(), message, field }
    })?;
    // The written file must say what the screen said: the entities under this connection.
    let names: Vec<&str> = parsed.connection(&v.id).map(|c| c.entities.iter().map(|e| e.name.as_str()).collect()).unwrap_or_default();
    if names != v.entities.iter().map(|e| e.name.as_str()).collect::<Vec<_>>() {
        return Err(ApiError::new("config", format!("could not place the entities of `{}` in {}; edit the file by hand", v.id, path.display())));
    }
    // Written next to the file and renamed over it, so a crash never leaves half a config.
    let tmp = path.with_extension("toml.saving");
    std::fs::write(&tmp, new_text.as_bytes())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| ApiError::new("io", format!("cannot write {}: {e}", path.display())))?;
    Ok(SaveConnectionResult { path: path.display().to_string(), restart_required: true })
}

/// One GET of the first entity's first page (page size 1), with the connection's own auth, TLS
/// and headers: what the engine would see, without retries.
pub async fn test_connection(sm: &Syncmon, id: &str) -> Result<TestConnectionResult, ApiError> {
    let config = current_config(sm)?;
    let c = config
        .connection(id)
        .ok_or_else(|| ApiError::field("not_found", "id", format!("no connection `{id}` in the config; save it first")))?
        .clone();
    let (url, entity) = match c.entities.first() {
        Some(e) => {
            let mut one = e.clone();
            one.page_size = 1;
            let profile = Profile::new(&c, &one).map_err(|m| ApiError::new("config", m))?;
            (profile.first_url(&RowVersion::zero()), Some(e.name.clone()))
        }
        None => (
            url::Url::parse(&c.base_url).map_err(|e| ApiError::field("config", "base_url", format!("base_url is not a URL: {e}")))?,
            None,
        ),
    };
    let client = SourceClient::new(c, SourceClient::http_client(), sm.ctx.store.clone(), sm.ctx.clock.clone());
    let started = Instant::now();
    let result = client.get_once(&url, entity.as_deref(), 1).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    Ok(match result {
        Ok(f) => TestConnectionResult {
            ok: true,
            http_status: Some(f.status),
            latency_ms,
            message: format!("the source answered {} in {latency_ms} ms", f.status),
            tracking_id: f.tracking_id,
        },
        Err(f) => {
            let hint = match (f.class, f.http_status) {
                (crate::source::FailureClass::Auth, _) => "check the credentials (Set secret) and the auth settings",
                (_, None) => "check base_url and that the source is reachable from this machine",
                _ => "check base_url, the entity's path and the credentials' permissions",
            };
            TestConnectionResult { ok: false, http_status: f.http_status, latency_ms, message: format!("{}; {hint}", f.message), tracking_id: f.tracking_id }
        }
    })
}

async fn set_secret(sm: &Syncmon, connection: &str, webhook: bool, secret: String) -> Result<(), ApiError> {
    if current_config(sm)?.connection(connection).is_none() {
        return Err(ApiError::field("not_found", "connection", format!("no connection `{connection}` in the config; save it first")));
    }
    if secret.trim().is_empty() {
        return Err(ApiError::field("usage", "secret", "the secret is empty; nothing was stored"));
    }
    let kind = if webhook { SecretKind::Webhook } else { SecretKind::Connection };
    let account = secrets::keyring_account(connection, kind);
    let secret = Secret::new(secret);
    tokio::task::spawn_blocking(move || secrets::keyring_set(&account, &secret))
        .await
        .map_err(|e| ApiError::new("credentials", format!("the keyring call failed: {e}")))?
        .map_err(|e| ApiError::from(Error::from(e)))
}
