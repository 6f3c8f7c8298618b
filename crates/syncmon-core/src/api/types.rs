//! The params and results of the RPC methods, as the UI sees them (exported with ts-rs).

use crate::config::ConfigWarning;
pub use crate::store::FailedFilter;
use crate::store::{CheckpointPoint, FailedItem, RuleCount, RunRow};
use crate::{EntityStatus, Health, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ts_rs::TS;

/// Sent on the HTTP event stream in place of events a slow client missed: refetch what is shown.
#[derive(Debug, Clone, Copy, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamNotice {
    ResyncNeeded,
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
    /// How it all reads at a glance: the banner, each card's and row's tone, the overall word.
    pub verdict: Verdict,
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
    /// Lag (now − the last catch-up) over the last 7 days, oldest first, at most 500 points: the
    /// exact sawtooth (a peak and a 0 at each catch-up) or each bucket's worst lag.
    pub lag: Vec<crate::store::LagPoint>,
    /// The entity's last verify (the app's Verify button, `syncmon verify` run with write access).
    pub last_verify: Option<crate::engine::VerifyResult>,
}

/// A page of the Activity log: the newest matching events, newest first.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ActivityResult {
    pub events: Vec<crate::events::Event>,
    /// Older events match too (ask again with `before_seq`: the last one's seq).
    pub more: bool,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct FailedPageResult {
    pub total: i64,
    /// Payloads cut to 2 KB; `failed_item` gives the full one.
    pub items: Vec<FailedItem>,
    /// Items per JSON Schema rule under the filter, whatever its `rule`, most first: on the first
    /// page (offset 0) only, null on the others.
    pub rules: Option<Vec<RuleCount>>,
    /// Items per error kind under the filter, whatever its `error_kind`, most first: the
    /// summary whose groups filter on click. On the first page only, null on the others.
    #[serde(default)]
    pub kinds: Option<Vec<crate::KindCount>>,
}

/// The params of `failed_replay` and `failed_discard`: the items to act on, given either as their
/// ids or as a filter (every item it matches).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct FailedSelection {
    #[ts(optional = nullable)]
    #[serde(default)]
    pub ids: Option<Vec<i64>>,
    #[ts(optional = nullable)]
    #[serde(default)]
    pub filter: Option<FailedFilter>,
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
    #[ts(type = "\"rowversion\" | \"cursor\" | \"timestamp\" | \"snapshot\"")]
    pub profile: String,
    /// `auth` and its settings, flattened: the same keys as a target's.
    #[serde(flatten)]
    pub credentials: AuthView,
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    pub max_concurrency: usize,
    pub requests_per_second: f64,
    pub timeout: String,
    /// `profile = "timestamp"`: how far below the checkpoint each poll reads again ("0s" by default).
    #[serde(default)]
    pub overlap: Option<String>,
    /// The `[connection.cursor]` keys (cursor, timestamp and snapshot profiles); absent for rowversion.
    #[serde(default)]
    pub cursor: Option<CursorView>,
    #[serde(default)]
    pub entities: Vec<EntityView>,
    /// Ignored on save.
    #[serde(default)]
    pub has_webhook_secret: bool,
}

/// How a connection or a target authenticates, as the form edits it: `[[connection]]` and
/// `[[target]]` take the same keys. The secret itself is never here (write-only, `set_secret`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct AuthView {
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
    /// Whether the keyring or the environment variable holds a secret. Ignored on save.
    #[serde(default)]
    pub has_secret: bool,
}

/// `[connection.cursor]` as the form edits it: which field is the id and which the version, where
/// the records are in a page and how the next page is found. Absent optional keys are `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct CursorView {
    pub id_field: String,
    /// The version (cursor) or last-modified (timestamp) field; `null` for snapshot, which has none.
    #[serde(default)]
    pub version_field: Option<String>,
    /// JSON pointer to the records array; "" means the body is the array.
    #[serde(default)]
    pub records_pointer: String,
    /// Query parameter that receives the checkpoint; `null` for snapshot.
    #[serde(default)]
    pub filter_param: Option<String>,
    #[serde(default)]
    pub extra_query: Option<String>,
    #[serde(default)]
    pub page_size_param: Option<String>,
    #[serde(default)]
    pub next_token_pointer: Option<String>,
    #[serde(default)]
    pub next_token_param: Option<String>,
    #[serde(default)]
    pub next_url_pointer: Option<String>,
    #[serde(default)]
    #[ts(type = "\"link-header\" | \"short-page\" | null")]
    pub next: Option<String>,
    /// `profile = "timestamp"` only: how the last-modified field is written.
    #[serde(default)]
    #[ts(type = "\"rfc3339\" | \"epoch_seconds\" | \"epoch_millis\" | null")]
    pub timestamp_format: Option<String>,
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
    /// A JSON Schema file every record is checked against (relative to the config file).
    #[serde(default)]
    pub schema: Option<String>,
}

/// The answer of a method that has nothing to report (`reset_checkpoint`, `set_secret`): `{}`.
#[derive(Debug, Clone, Copy, Default, Serialize, TS)]
#[ts(type = "Record<string, never>")]
pub struct Empty {}

/// A `[[target]]` as the Connections screen edits it: the config without any secret, plus whether
/// the secret is there. Keys the form does not show (backoff, breaker) stay in the file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct TargetView {
    pub id: String,
    pub base_url: String,
    /// `auth` and its settings, flattened: the same keys as a connection's (keyring account = the id).
    #[serde(flatten)]
    pub credentials: AuthView,
    pub max_concurrency: usize,
    pub requests_per_second: f64,
    pub timeout: String,
    /// Retries of a transient failure before the record becomes a failed item (default 5).
    pub max_retries: u32,
    /// The header each delivery carries its idempotency key in (default `Idempotency-Key`).
    #[serde(default)]
    pub idempotency_header: Option<String>,
    /// Top-level fields the target sets itself, left out when Syncmon recognises its own writes.
    #[serde(default)]
    pub ignore_fields: Vec<String>,
    /// The target is a connection's system (same id): it shares that connection's credential.
    /// Ignored on save.
    #[serde(default)]
    pub is_connection: bool,
    /// `connection/entity` of every entity forwarding to it. Ignored on save.
    #[serde(default)]
    pub entities: Vec<String>,
    /// The path under `base_url` that Test connection GETs by default: the first forwarding
    /// entity's `forward_path`, else "". Ignored on save.
    #[serde(default)]
    pub test_path: String,
}
