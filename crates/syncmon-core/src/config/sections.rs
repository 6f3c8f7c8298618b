//! The tables of the configuration file as they are deserialized, and the defaults of what
//! they leave out.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Address of the webhook receiver; loopback unless a reverse proxy needs otherwise.
    pub listen: String,
    /// Largest body `POST /ingest/<connection>/<entity>` accepts (bytes); bigger ones get 413.
    #[serde(default = "d_ingest_max_bytes")]
    pub ingest_max_bytes: usize,
}

/// `[metrics]`: where the agent serves Prometheus metrics (`GET /metrics`); `--metrics ADDR`
/// on `run` and `serve` overrides it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the metrics endpoint, e.g. `127.0.0.1:9464`. Another address than loopback
    /// needs a bearer token (`SYNCMON_METRICS_TOKEN`, or the keyring account `metrics`).
    pub listen: String,
}

/// `[replica]`: the replica and all engine state in PostgreSQL instead of the embedded SQLite
/// file. Several agents with the same config share the entities through leases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaConfig {
    /// `postgresql://user@host:port/database`, without a password.
    pub url: String,
    /// The environment variable holding the password; without it the keyring account
    /// `replica` (`syncmon creds replica`), else none (trust or peer authentication).
    #[serde(default)]
    pub password_env: Option<String>,
    /// The longest a dead agent's entities wait before another agent takes them over.
    #[serde(default = "d_lease", deserialize_with = "de_duration")]
    pub lease: Duration,
    /// The name this agent shows as the holder of its entities, before `/<pid>` (default: the host name).
    #[serde(default)]
    pub agent: Option<String>,
    /// A PEM file of the CA that signed the server's certificate (a private CA), trusted besides
    /// the OS certificate store; a relative path is read from the config file's directory.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// `ca_file`'s certificates, read when the config loads (`load_ca_files`).
    #[serde(skip)]
    pub ca: Vec<rustls::pki_types::CertificateDer<'static>>,
}

fn d_lease() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// How long the request log keeps entries.
    #[serde(default = "d_request_log_retention", deserialize_with = "de_duration")]
    pub request_log_retention: Duration,
    /// How many finished runs are kept per entity.
    #[serde(default = "d_runs_kept")]
    pub runs_kept: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { request_log_retention: d_request_log_retention(), runs_kept: d_runs_kept() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    Rowversion,
    Cursor,
    /// No version at all: every poll reads the whole feed and compares content (store/snapshot.rs).
    Snapshot,
    /// A last-modified timestamp read with an inclusive "since" (the `[connection.cursor]` keys,
    /// `version_field` naming the timestamp): records at the checkpoint are read again and
    /// de-duplicated by content.
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    None,
    ApiKey,
    Bearer,
    Oauth2,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    pub id: String,
    pub base_url: String,
    #[serde(default = "d_profile")]
    pub profile: ProfileKind,
    #[serde(default = "d_auth")]
    pub auth: AuthKind,
    /// Header that carries the key when `auth = "api_key"`.
    #[serde(default = "d_api_key_header")]
    pub api_key_header: String,
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    /// Read the connection's secret from this environment variable instead of the keyring.
    pub secret_env: Option<String>,
    /// Read the webhook secret from this environment variable instead of the keyring.
    pub webhook_secret_env: Option<String>,
    /// JSON pointer to the entity name in a Standard Webhooks body.
    #[serde(default = "d_entity_pointer")]
    pub webhook_entity_pointer: String,
    /// Pinned `x-api-version` header (reference profile).
    pub api_version: Option<String>,
    #[serde(default = "d_max_concurrency")]
    pub max_concurrency: usize,
    #[serde(default = "d_rps")]
    pub requests_per_second: f64,
    #[serde(default = "d_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Retries of a transient failure (5xx, reset, timeout, bad body) before the cycle fails.
    #[serde(default = "d_max_retries")]
    pub max_retries: u32,
    #[serde(default = "d_backoff_base", deserialize_with = "de_duration")]
    pub backoff_base: Duration,
    #[serde(default = "d_backoff_max", deserialize_with = "de_duration")]
    pub backoff_max: Duration,
    /// Consecutive failed cycles that open the circuit.
    #[serde(default = "d_breaker_threshold")]
    pub breaker_threshold: u32,
    #[serde(default = "d_breaker_cooldown", deserialize_with = "de_duration")]
    pub breaker_cooldown: Duration,
    /// Late-commit lookback (DESIGN §2.5).
    #[serde(default = "d_lookback", deserialize_with = "de_duration")]
    pub lookback: Duration,
    /// `profile = "timestamp"`: how far below the checkpoint each poll reads again, for sources
    /// whose clocks are not monotonic (a record stamped a little in the past). 0 by default.
    #[serde(default, deserialize_with = "de_duration")]
    pub overlap: Duration,
    pub cursor: Option<CursorConfig>,
    /// A PEM file of CA certificates trusted for this connection besides the OS store (a private
    /// CA, an inspecting proxy's root); relative to the config file's directory.
    pub ca_file: Option<String>,
    /// `ca_file` read and parsed (by `Config::parse_in`, `load_ca_files`).
    #[serde(skip)]
    pub ca: Option<std::sync::Arc<crate::source::tls::CaFile>>,
    #[serde(default, rename = "entity")]
    pub entities: Vec<EntityConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NextPageMode {
    LinkHeader,
    ShortPage,
}

impl NextPageMode {
    /// As written in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            NextPageMode::LinkHeader => "link-header",
            NextPageMode::ShortPage => "short-page",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorConfig {
    #[serde(default = "d_id_field")]
    pub id_field: String,
    #[serde(default = "d_version_field")]
    pub version_field: String,
    /// JSON pointer to the records array; "" means the body is the array.
    #[serde(default)]
    pub records_pointer: String,
    /// Query parameter that carries the last version seen (required by `cursor`, refused by `snapshot`).
    #[serde(default)]
    pub filter_param: String,
    /// Fixed query appended as is, e.g. "order=seq".
    pub extra_query: Option<String>,
    pub page_size_param: Option<String>,
    pub next_token_pointer: Option<String>,
    pub next_token_param: Option<String>,
    pub next_url_pointer: Option<String>,
    pub next: Option<NextPageMode>,
    /// `profile = "timestamp"`: how `version_field` is written (default `rfc3339`).
    pub timestamp_format: Option<crate::timestamp::TimestampFormat>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityConfig {
    pub name: String,
    /// Path under the connection's base URL; defaults to "/<name>".
    pub path: Option<String>,
    /// None (`poll_every = "never"`): push-only, records arrive by `POST /ingest` and the
    /// scheduler never polls the entity.
    #[serde(default = "d_poll_every", deserialize_with = "de_poll_every")]
    pub poll_every: Option<Duration>,
    #[serde(default = "d_page_size")]
    pub page_size: u32,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub full_resync_every: Option<Duration>,
    /// Fields every record must have (non-null); records without them become failed items.
    #[serde(default)]
    pub required_fields: Vec<String>,
    /// Share of the entity a full resync may delete before it stops and asks.
    #[serde(default = "d_deletion_guard")]
    pub deletion_guard: f64,
    /// Id of a `[[target]]` that receives every change of this entity.
    pub forward_to: Option<String>,
    /// Path under the target's base URL; defaults to "/<name>". The record id is appended as a
    /// path segment, or goes where the path says `{id}` (`/v2/items/{id}/full`).
    pub forward_path: Option<String>,
    /// How an upsert is sent: PUT (default), POST or PATCH. Deletions are DELETE.
    pub forward_method: Option<String>,
    /// Top-level fields renamed in the body sent to the target (`{ sku = "productCode" }`);
    /// the replica keeps the source's names.
    #[serde(default)]
    pub forward_rename: std::collections::BTreeMap<String, String>,
    /// Top-level fields left out of the body sent to the target.
    #[serde(default)]
    pub forward_drop: Vec<String>,
    /// In a two-way pair, what happens to a record changed on both systems since they were
    /// last level: `manual` (default: a failed item of stage `conflict` to settle), `newest`
    /// (the change Syncmon saw last wins) or a connection id (that system wins).
    pub conflict: Option<String>,
    /// Flag-based sync: once a record is in the replica (and delivered, when it is forwarded),
    /// mark it at the source, e.g. `{ method = "PATCH", path = "/items/{id}", body = '{"synced": true}' }`.
    pub write_back: Option<WriteBackConfig>,
    /// A JSON Schema file every record must pass (relative to the config file's directory, or
    /// absolute); records that break it become failed items naming the rule.
    pub schema: Option<String>,
    /// The schema, read and compiled when the config was parsed (`Config::parse_in`).
    #[serde(skip)]
    pub record_schema: Option<crate::record_schema::RecordSchema>,
}

/// The call that marks a synced record at the source (`write_back` on an entity).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBackConfig {
    #[serde(default = "d_write_back_method")]
    pub method: String,
    /// Under the connection's base URL; `{id}` is the record id (one path segment).
    pub path: String,
    /// A JSON object: the fields set. A record that already holds them is not marked again.
    pub body: String,
}

fn d_write_back_method() -> String {
    "PATCH".into()
}

impl WriteBackConfig {
    /// The body's fields (validation made sure it is an object).
    pub fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::from_str(&self.body) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => Default::default(),
        }
    }
}

impl EntityConfig {
    pub fn path(&self) -> String {
        self.path.clone().unwrap_or_else(|| format!("/{}", self.name))
    }

    /// Path under the target's base URL that records are PUT below; defaults to "/<name>".
    pub fn forward_path(&self) -> String {
        self.forward_path.clone().unwrap_or_else(|| format!("/{}", self.name))
    }
}

/// A target API that entities forward their changes to: `PUT {base_url}{forward_path}/{id}`
/// for upserts, `DELETE` for deletions. Auth, limits and retries mean what they mean for a
/// connection; the secret comes from the keyring account `<target id>` or `secret_env`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub id: String,
    pub base_url: String,
    #[serde(default = "d_auth")]
    pub auth: AuthKind,
    #[serde(default = "d_api_key_header")]
    pub api_key_header: String,
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    pub secret_env: Option<String>,
    #[serde(default = "d_max_concurrency")]
    pub max_concurrency: usize,
    #[serde(default = "d_rps")]
    pub requests_per_second: f64,
    #[serde(default = "d_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Retries of a transient failure (408, 5xx, reset, timeout) before the record becomes a
    /// failed item.
    #[serde(default = "d_max_retries")]
    pub max_retries: u32,
    #[serde(default = "d_backoff_base", deserialize_with = "de_duration")]
    pub backoff_base: Duration,
    #[serde(default = "d_backoff_max", deserialize_with = "de_duration")]
    pub backoff_max: Duration,
    /// Consecutive records that exhaust their retries before delivery pauses for the cooldown
    /// (the changes wait in the outbox instead of all becoming failed items).
    #[serde(default = "d_breaker_threshold")]
    pub breaker_threshold: u32,
    #[serde(default = "d_breaker_cooldown", deserialize_with = "de_duration")]
    pub breaker_cooldown: Duration,
    /// The header every delivery carries its idempotency key in
    /// (`<connection>/<entity>/<id>/<rowVersion>`), so a target can drop a repeat.
    #[serde(default = "d_idempotency_header")]
    pub idempotency_header: String,
    /// Top-level fields the target sets itself (an `updatedAt`, a revision): left out when
    /// Syncmon recognises its own writes coming back in a two-way pair. The version field always is.
    #[serde(default)]
    pub ignore_fields: Vec<String>,
    /// As a connection's `ca_file`.
    pub ca_file: Option<String>,
    #[serde(skip)]
    pub ca: Option<std::sync::Arc<crate::source::tls::CaFile>>,
}

fn d_idempotency_header() -> String {
    "Idempotency-Key".into()
}

impl TargetConfig {
    /// The target as a connection, so that one HTTP client implementation (auth, TLS, limits,
    /// retries, breaker, request log) serves both sides.
    pub fn as_connection(&self) -> ConnectionConfig {
        ConnectionConfig {
            id: self.id.clone(),
            base_url: self.base_url.clone(),
            profile: ProfileKind::Rowversion,
            auth: self.auth,
            api_key_header: self.api_key_header.clone(),
            token_url: self.token_url.clone(),
            client_id: self.client_id.clone(),
            scope: self.scope.clone(),
            secret_env: self.secret_env.clone(),
            webhook_secret_env: None,
            webhook_entity_pointer: d_entity_pointer(),
            api_version: None,
            max_concurrency: self.max_concurrency,
            requests_per_second: self.requests_per_second,
            timeout: self.timeout,
            max_retries: self.max_retries,
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
            breaker_threshold: self.breaker_threshold,
            breaker_cooldown: self.breaker_cooldown,
            lookback: d_lookback(),
            overlap: Duration::ZERO,
            cursor: None,
            ca_file: self.ca_file.clone(),
            ca: self.ca.clone(),
            entities: Vec::new(),
        }
    }
}

fn d_profile() -> ProfileKind {
    ProfileKind::Rowversion
}
fn d_auth() -> AuthKind {
    AuthKind::None
}
fn d_api_key_header() -> String {
    "x-np-api-key".into()
}
fn d_entity_pointer() -> String {
    "/entity".into()
}
fn d_max_concurrency() -> usize {
    5
}
fn d_rps() -> f64 {
    10.0
}
fn d_timeout() -> Duration {
    Duration::from_secs(30)
}
fn d_max_retries() -> u32 {
    5
}
fn d_backoff_base() -> Duration {
    Duration::from_millis(500)
}
fn d_backoff_max() -> Duration {
    Duration::from_secs(30)
}
fn d_breaker_threshold() -> u32 {
    3
}
fn d_breaker_cooldown() -> Duration {
    Duration::from_secs(60)
}
fn d_lookback() -> Duration {
    Duration::from_secs(600)
}
fn d_id_field() -> String {
    "id".into()
}
fn d_version_field() -> String {
    "rowVersion".into()
}
/// The poll interval when none is configured.
pub const DEFAULT_POLL_EVERY: Duration = Duration::from_secs(300);
fn d_poll_every() -> Option<Duration> {
    Some(DEFAULT_POLL_EVERY)
}
/// 10 MiB: a large batch of records, small enough to hold in memory while it is stored.
pub const DEFAULT_INGEST_MAX_BYTES: usize = 10 * 1024 * 1024;
fn d_ingest_max_bytes() -> usize {
    DEFAULT_INGEST_MAX_BYTES
}
fn d_page_size() -> u32 {
    1000
}
fn d_deletion_guard() -> f64 {
    0.5
}
fn d_request_log_retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn d_runs_kept() -> u32 {
    500
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    // The text is not repeated: config errors never echo a value.
    humantime::parse_duration(&text).map_err(|_| serde::de::Error::custom("this is not a duration; write e.g. \"30s\", \"5m\", \"24h\" (no sign)"))
}

/// A duration, or "never" (push-only).
fn de_poll_every<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim() == "never" {
        return Ok(None);
    }
    humantime::parse_duration(&text)
        .map(Some)
        .map_err(|_| serde::de::Error::custom("this is not a duration; write e.g. \"30s\", \"5m\", \"24h\" (no sign), or \"never\" for a push-only entity"))
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}
