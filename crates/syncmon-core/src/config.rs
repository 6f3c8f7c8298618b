//! The configuration file (TOML, DESIGN §7). Fields may be added, never renamed.
//!
//! Secrets are never values in this file: a connection's secret comes from the OS keyring
//! (service `syncmon`, account = connection id) or from an environment variable named by
//! `secret_env`. A plaintext secret is refused with the line it is on.

use crate::redact;
use serde::{Deserialize, Deserializer};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}. Create it (see README) or pass --config PATH")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: ConfigProblem },
}

/// What the rules refuse in a config: the message as shown (it names the key and its line where
/// that reads best for the rule), and the key it is about as a dotted path
/// (`connections[0].entities[1].page_size`, `storage.runs_kept`) with its line when known, so
/// that a form can show the message beside the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: Option<String>,
    pub line: Option<usize>,
    pub message: String,
}

impl ConfigProblem {
    fn unplaced(message: String) -> Self {
        ConfigProblem { key: None, line: None, message }
    }
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigProblem {}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, rename = "connection")]
    pub connections: Vec<ConnectionConfig>,
    #[serde(default)]
    pub webhooks: Option<WebhooksConfig>,
    #[serde(default)]
    pub storage: StorageConfig,
    /// Target APIs that entities forward their changes to (`forward_to`).
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Address of the webhook receiver; loopback unless a reverse proxy needs otherwise.
    pub listen: String,
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
    pub cursor: Option<CursorConfig>,
    #[serde(default, rename = "entity")]
    pub entities: Vec<EntityConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NextPageMode {
    LinkHeader,
    ShortPage,
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
    /// Query parameter that carries the last version seen.
    pub filter_param: String,
    /// Fixed query appended as is, e.g. "order=seq".
    pub extra_query: Option<String>,
    pub page_size_param: Option<String>,
    pub next_token_pointer: Option<String>,
    pub next_token_param: Option<String>,
    pub next_url_pointer: Option<String>,
    pub next: Option<NextPageMode>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityConfig {
    pub name: String,
    /// Path under the connection's base URL; defaults to "/<name>".
    pub path: Option<String>,
    #[serde(default = "d_poll_every", deserialize_with = "de_duration")]
    pub poll_every: Duration,
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
    /// Path under the target's base URL; defaults to "/<name>".
    pub forward_path: Option<String>,
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
            cursor: None,
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
fn d_poll_every() -> Duration {
    Duration::from_secs(300)
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

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// Keys that would hold a secret in plain text. Refused wherever they appear.
pub const SECRET_KEYS: &[&str] = &["secret", "client_secret", "password", "api_key", "token", "access_token", "bearer_token", "webhook_secret", "client_state"];

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(&text).map_err(|problem| ConfigError::Invalid { path: path.to_path_buf(), problem })
    }

    /// Parses and validates; the error names the key, its line and what to write instead, and
    /// never repeats a value (it may be a secret pasted into the wrong key).
    pub fn parse(text: &str) -> Result<Config, ConfigProblem> {
        let at = Locator::new(text);
        let secret_keys: Vec<String> = SECRET_KEYS.iter().map(|k| normalized_key(k)).collect();
        for (n, line) in text.lines().enumerate() {
            let key = line.trim_start().split('=').next().unwrap_or("").trim().trim_matches(['"', '\'']);
            // `clientSecret`, `Client-Secret` and `client_secret` are one key here.
            if line.contains('=') && secret_keys.contains(&normalized_key(key)) {
                return Err(ConfigProblem {
                    key: at.key_at_line(n + 1),
                    line: Some(n + 1),
                    message: format!(
                        "line {}: `{key}` would store a secret in plain text, which Syncmon refuses (the value is not shown). Remove \
                     the line and run `syncmon creds set <connection id>` to keep it in the OS keyring, or name an environment \
                     variable with `secret_env = \"VAR\"` (`webhook_secret_env` for the webhook secret)",
                        n + 1
                    ),
                });
            }
        }
        let config: Config = toml::from_str(text).map_err(|e| toml_error(&at, &e))?;
        config.validate(&at)?;
        config.validate_targets(text, &at)?;
        Ok(config)
    }

    /// What may work but is risky: plain HTTP to another machine, a webhook listener other
    /// machines can reach. Logged when the agent starts, shown by `status` and the UI.
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        let mut out = Vec::new();
        let mut plain_http = |key: String, url: &str, what: &str| {
            if let Some(host) = url::Url::parse(url).ok().filter(|u| u.scheme() == "http").and_then(|u| remote_host(&u)) {
                out.push(ConfigWarning {
                    message: format!(
                        "{key} uses plain http:// to {host}, a host that is not this machine: {what} and the data cross the network \
                         unencrypted; use https://"
                    ),
                    key,
                });
            }
        };
        for (i, c) in self.connections.iter().enumerate() {
            let what = if c.auth == AuthKind::None { "requests" } else { "the credentials" };
            plain_http(format!("connections[{i}].base_url"), &c.base_url, what);
            if let Some(t) = &c.token_url {
                plain_http(format!("connections[{i}].token_url"), t, "the client secret");
            }
        }
        for (i, t) in self.targets.iter().enumerate() {
            let what = if t.auth == AuthKind::None { "requests" } else { "the credentials" };
            plain_http(format!("targets[{i}].base_url"), &t.base_url, what);
            if let Some(u) = &t.token_url {
                plain_http(format!("targets[{i}].token_url"), u, "the client secret");
            }
        }
        if let Some(addr) = self.webhooks.as_ref().and_then(|w| w.listen.parse::<std::net::SocketAddr>().ok()) {
            if !addr.ip().is_loopback() {
                out.push(ConfigWarning {
                    key: "webhooks.listen".into(),
                    message: format!(
                        "webhooks.listen = {addr} accepts calls from other machines; unless they must reach it directly, listen on \
                         127.0.0.1 behind a reverse proxy that terminates TLS"
                    ),
                });
            }
        }
        out
    }

    /// Targets and the entities' `forward_to`; errors name the line that is wrong.
    fn validate_targets(&self, text: &str, at: &Locator) -> Result<(), ConfigProblem> {
        let at_line = |key: &str, value: &str, msg: String| match line_of(text, key, value) {
            Some(n) => format!("line {n}: {msg}"),
            None => msg,
        };
        let mut ids = HashSet::new();
        for (ti, t) in self.targets.iter().enumerate() {
            let table = [Seg::Key("target"), Seg::Index(ti)];
            let err = |key: &str, msg: String| at.problem(&table, key, at_line("id", &t.id, format!("target `{}`: {msg}", t.id)));
            if !valid_name(&t.id) {
                return Err(err("id", "id may hold only letters, digits, `-` and `_` (it names the keyring entry)".into()));
            }
            if !ids.insert(t.id.as_str()) {
                return Err(err("id", "two targets have this id; give each a unique `id`".into()));
            }
            // Some keyrings (Windows) ignore case in account names.
            if self.connections.iter().any(|c| c.id.eq_ignore_ascii_case(&t.id)) {
                return Err(err("id", "a connection has the same id, and both would read the same keyring entry; rename the target".into()));
            }
            let url = url::Url::parse(&t.base_url).map_err(|e| {
                err(
                    "base_url",
                    format!(
                        "base_url `{}` is not a URL ({e}); write e.g. \"https://api.example.com/tenant/prod/company\"",
                        redact::redact_url_text(&t.base_url)
                    ),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(err("base_url", "base_url must start with https:// (or http:// for a local target)".into()));
            }
            at.refuse_secret_in_url(&table, "base_url", &t.id, &url)?;
            if let Some(token_url) = &t.token_url {
                at.refuse_secret_in_url_text(&table, "token_url", &t.id, token_url)?;
            }
            if t.auth == AuthKind::Oauth2 && (t.token_url.is_none() || t.client_id.is_none()) {
                let missing = if t.token_url.is_none() { "token_url" } else { "client_id" };
                return Err(err(missing, "auth = \"oauth2\" needs `token_url` and `client_id` (the client secret goes in the keyring)".into()));
            }
            at.check_env_names(&table, [("secret_env", &t.secret_env)])?;
            at.check_client_limits(&table, &t.as_connection())?;
        }
        for (ci, c) in self.connections.iter().enumerate() {
            for (ei, e) in c.entities.iter().enumerate() {
                let table = [Seg::Key("connection"), Seg::Index(ci), Seg::Key("entity"), Seg::Index(ei)];
                if let Some(p) = &e.forward_path {
                    at.refuse_secret_in_path(&table, "forward_path", &c.id, p)?;
                }
                let loc = at;
                let at = format!("connection `{}`, entity `{}`", c.id, e.name);
                match &e.forward_to {
                    Some(t) if !ids.contains(t.as_str()) => {
                        let known = if ids.is_empty() {
                            "there is no [[target]] section".to_string()
                        } else {
                            let mut v: Vec<&str> = ids.iter().copied().collect();
                            v.sort();
                            format!("the targets are: {}", v.join(", "))
                        };
                        return Err(loc.problem(
                            &table,
                            "forward_to",
                            at_line("forward_to", t, format!("{at}: forward_to = \"{t}\" names no [[target]] ({known})")),
                        ));
                    }
                    None if e.forward_path.is_some() => {
                        return Err(loc.problem(&table, "forward_path", format!("{at}: forward_path needs forward_to = \"<target id>\"")));
                    }
                    _ => {}
                }
                if let Some(p) = e.forward_path.as_deref().filter(|p| !p.starts_with('/')) {
                    return Err(loc.problem(
                        &table,
                        "forward_path",
                        at_line("forward_path", p, format!("{at}: forward_path must start with `/`, e.g. \"/{p}\"")),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate(&self, loc: &Locator) -> Result<(), ConfigProblem> {
        let mut ids = HashSet::new();
        // Lowercased id → index: SQLite table names ignore case, so ids must differ in more than case.
        let mut folded_ids: HashMap<String, usize> = HashMap::new();
        // Lowercased replica table → (connection, entity) index, for names that map to one table.
        let mut tables: HashMap<String, (usize, usize)> = HashMap::new();
        for (ci, c) in self.connections.iter().enumerate() {
            let at = format!("connection `{}`", c.id);
            let table = [Seg::Key("connection"), Seg::Index(ci)];
            if !valid_name(&c.id) {
                return Err(loc.problem(&table, "id", format!("{at}: id may hold only letters, digits, `-` and `_` (it names keyring entries and tables)")));
            }
            if !ids.insert(c.id.as_str()) {
                return Err(loc.problem(&table, "id", format!("{at}: two connections have this id; give each a unique `id`")));
            }
            if let Some(&other) = folded_ids.get(&c.id.to_ascii_lowercase()) {
                let o = &self.connections[other];
                return Err(loc.problem(
                    &table,
                    "id",
                    format!(
                        "connection \"{}\"{} differs from \"{}\"{} only in case; replica tables ignore case: rename one",
                        c.id,
                        loc.at_line(&[&table[..], &[Seg::Key("id")]].concat()),
                        o.id,
                        loc.at_line(&[Seg::Key("connection"), Seg::Index(other), Seg::Key("id")]),
                    ),
                ));
            }
            folded_ids.insert(c.id.to_ascii_lowercase(), ci);
            let url = url::Url::parse(&c.base_url).map_err(|e| {
                loc.problem(
                    &table,
                    "base_url",
                    format!(
                        "{at}: base_url `{}` is not a URL ({e}); write e.g. \"https://api.example.com/tenant/prod/company\"",
                        redact::redact_url_text(&c.base_url)
                    ),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(loc.problem(&table, "base_url", format!("{at}: base_url must start with https:// (or http:// for a local source)")));
            }
            loc.refuse_secret_in_url(&table, "base_url", &c.id, &url)?;
            if let Some(token_url) = &c.token_url {
                loc.refuse_secret_in_url_text(&table, "token_url", &c.id, token_url)?;
            }
            if let Some(q) = c.cursor.as_ref().and_then(|cur| cur.extra_query.as_deref()) {
                if let Some(name) = url::form_urlencoded::parse(q.as_bytes()).map(|(k, _)| k).find(|k| redact::is_secret_param(k)) {
                    let cursor = [&table[..], &[Seg::Key("cursor")]].concat();
                    return Err(loc.problem(
                        &cursor,
                        "extra_query",
                        secret_in_url_message(&loc.key(&cursor, "extra_query"), &c.id, &format!("carries the credential-looking query parameter `{name}`")),
                    ));
                }
            }
            if c.auth == AuthKind::Oauth2 && (c.token_url.is_none() || c.client_id.is_none()) {
                let missing = if c.token_url.is_none() { "token_url" } else { "client_id" };
                return Err(loc.problem(
                    &table,
                    missing,
                    format!("{at}: auth = \"oauth2\" needs `token_url` and `client_id` (the client secret goes in the keyring)"),
                ));
            }
            loc.check_env_names(&table, [("secret_env", &c.secret_env), ("webhook_secret_env", &c.webhook_secret_env)])?;
            loc.check_client_limits(&table, c)?;
            loc.check_duration(&table, "lookback", c.lookback, Duration::ZERO, MAX_DURATION)?;
            match (c.profile, &c.cursor) {
                (ProfileKind::Cursor, None) => {
                    return Err(loc.problem(
                        &table,
                        "profile",
                        format!("{at}: profile = \"cursor\" needs a [connection.cursor] section with at least `filter_param`"),
                    ))
                }
                (ProfileKind::Cursor, Some(cur)) => {
                    let cursor = [&table[..], &[Seg::Key("cursor")]].concat();
                    let ways = [cur.next_token_pointer.is_some(), cur.next_url_pointer.is_some(), cur.next.is_some()].iter().filter(|x| **x).count();
                    if ways != 1 {
                        return Err(loc.problem(
                            &table,
                            "cursor",
                            format!(
                                "{at}: the cursor profile needs exactly one way to find the next page: `next_token_pointer` + \
                             `next_token_param`, `next_url_pointer`, `next = \"link-header\"` or `next = \"short-page\"`"
                            ),
                        ));
                    }
                    if cur.next_token_pointer.is_some() && cur.next_token_param.is_none() {
                        return Err(loc.problem(
                            &cursor,
                            "next_token_param",
                            format!("{at}: `next_token_pointer` needs `next_token_param` (the query parameter that carries the token)"),
                        ));
                    }
                    if cur.next == Some(NextPageMode::ShortPage) && cur.page_size_param.is_none() {
                        return Err(loc.problem(
                            &cursor,
                            "page_size_param",
                            format!("{at}: `next = \"short-page\"` needs `page_size_param`, or a short page cannot be told apart"),
                        ));
                    }
                }
                _ => {}
            }
            let mut names = HashSet::new();
            let mut folded_names: HashMap<String, usize> = HashMap::new();
            for (ei, e) in c.entities.iter().enumerate() {
                let at = format!("{at}, entity `{}`", e.name);
                let entity = [&table[..], &[Seg::Key("entity"), Seg::Index(ei)]].concat();
                let name_line = |i: usize| loc.at_line(&[&table[..], &[Seg::Key("entity"), Seg::Index(i), Seg::Key("name")]].concat());
                if !valid_name(&e.name) {
                    return Err(loc.problem(&entity, "name", format!("{at}: name may hold only letters, digits, `-` and `_`")));
                }
                if !names.insert(e.name.as_str()) {
                    return Err(loc.problem(&entity, "name", format!("{at}: listed twice")));
                }
                if let Some(&other) = folded_names.get(&e.name.to_ascii_lowercase()) {
                    return Err(loc.problem(
                        &entity,
                        "name",
                        format!(
                            "{at}: entity \"{}\"{} differs from \"{}\"{} only in case; replica tables ignore case: rename one",
                            e.name,
                            name_line(ei),
                            c.entities[other].name,
                            name_line(other),
                        ),
                    ));
                }
                folded_names.insert(e.name.to_ascii_lowercase(), ei);
                let replica = crate::store::EntityKey::new(&c.id, &e.name).table().to_ascii_lowercase();
                if let Some(&(oc, oe)) = tables.get(&replica) {
                    let (other_conn, other) = (&self.connections[oc], &self.connections[oc].entities[oe]);
                    return Err(loc.problem(
                        &entity,
                        "name",
                        format!(
                            "entity {}/{}{} and {}/{}{} would share the replica table `{replica}` (`-` becomes `_` in table names, \
                         and they ignore case): rename one",
                            c.id,
                            e.name,
                            name_line(ei),
                            other_conn.id,
                            other.name,
                            loc.at_line(&[Seg::Key("connection"), Seg::Index(oc), Seg::Key("entity"), Seg::Index(oe), Seg::Key("name")]),
                        ),
                    ));
                }
                tables.insert(replica, (ci, ei));
                if let Some(p) = &e.path {
                    loc.refuse_secret_in_path(&entity, "path", &c.id, p)?;
                }
                if !(1..=MAX_PAGE_SIZE).contains(&e.page_size) {
                    return Err(loc.problem(
                        &entity,
                        "page_size",
                        format!("{at}: page_size must be between 1 and {MAX_PAGE_SIZE}{}", loc.at_line(&[&entity[..], &[Seg::Key("page_size")]].concat())),
                    ));
                }
                if !(e.deletion_guard > 0.0 && e.deletion_guard <= 1.0) {
                    return Err(loc.problem(&entity, "deletion_guard", format!("{at}: deletion_guard is a share between 0 and 1, e.g. 0.5")));
                }
                loc.check_duration(&entity, "poll_every", e.poll_every, Duration::from_secs(1), MAX_DURATION)?;
                if let Some(every) = e.full_resync_every {
                    loc.check_duration(&entity, "full_resync_every", every, Duration::from_secs(1), MAX_DURATION)?;
                }
            }
        }
        if let Some(w) = &self.webhooks {
            w.listen.parse::<std::net::SocketAddr>().map_err(|_| {
                loc.problem(&[Seg::Key("webhooks")], "listen", format!("[webhooks] listen = \"{}\" is not an address; write e.g. \"127.0.0.1:8385\"", w.listen))
            })?;
        }
        let storage = [Seg::Key("storage")];
        loc.check_duration(
            &storage,
            "request_log_retention",
            self.storage.request_log_retention,
            Duration::from_secs(1),
            Duration::from_secs(10 * 365 * 86400),
        )?;
        if self.storage.runs_kept == 0 {
            return Err(loc.problem(
                &storage,
                "runs_kept",
                format!("{} must be at least 1 (the last run of each entity is what status shows)", loc.key(&storage, "runs_kept")),
            ));
        }
        Ok(())
    }

    pub fn connection(&self, id: &str) -> Option<&ConnectionConfig> {
        self.connections.iter().find(|c| c.id == id)
    }

    pub fn target(&self, id: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.id == id)
    }
}

/// The 1-based line holding `key = "value"`, for errors about a value that parsed fine.
fn line_of(text: &str, key: &str, value: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let Some((k, v)) = l.split_once('=') else { return false };
            k.trim().trim_matches('"') == key && v.split('#').next().unwrap_or("").trim().trim_matches(['"', '\'']) == value
        })
        .map(|i| i + 1)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A risky but workable setting, by its key (e.g. `connections[0].base_url`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct ConfigWarning {
    pub key: String,
    pub message: String,
}

/// Longest duration any setting takes; beyond it timers would overflow (and nothing would happen).
const MAX_DURATION: Duration = Duration::from_secs(365 * 86400);
const MAX_PAGE_SIZE: u32 = 100_000;

/// `clientSecret`, `client-secret` and `client_secret` compare equal.
fn normalized_key(k: &str) -> String {
    k.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_ascii_lowercase()
}

/// The host of a URL unless it is this machine (loopback address or `localhost`).
fn remote_host(u: &url::Url) -> Option<String> {
    match u.host()? {
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost") => None,
        url::Host::Domain(d) => Some(d.to_string()),
        url::Host::Ipv4(ip) if ip.is_loopback() => None,
        url::Host::Ipv6(ip) if ip.is_loopback() => None,
        h => Some(h.to_string()),
    }
}

fn secret_in_url_message(key: &str, id: &str, problem: &str) -> String {
    format!(
        "{key} {problem}; put credentials in the keyring with `syncmon creds set {id}` (or name an environment variable \
         with `secret_env`) and choose the auth method with `auth` — the value is not shown"
    )
}

/// A step on the way to a key: a table name or an index into an array of tables.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Finds where keys are in the file, from the TOML parser's spans, so that an error can name the
/// line without repeating the value.
struct Locator<'a> {
    text: &'a str,
    doc: Option<toml_edit::ImDocument<&'a str>>,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str) -> Locator<'a> {
        Locator { text, doc: toml_edit::ImDocument::parse(text).ok() }
    }

    fn line(&self, path: &[Seg]) -> Option<usize> {
        let mut item = self.doc.as_ref()?.as_item();
        let mut table_in_array: Option<&toml_edit::Table> = None;
        for seg in path {
            match *seg {
                Seg::Key(k) => {
                    item = match table_in_array.take() {
                        Some(t) => t.get(k)?,
                        None => item.get(k)?,
                    }
                }
                Seg::Index(i) => table_in_array = Some(item.as_array_of_tables()?.get(i)?),
            }
        }
        let span = match table_in_array {
            Some(t) => t.span()?,
            None => item.span()?,
        };
        Some(line_of_offset(self.text, span.start))
    }

    /// " (line N)", or "" when the key is not in the file (a default).
    fn at_line(&self, path: &[Seg]) -> String {
        self.line(path).map(|n| format!(" (line {n})")).unwrap_or_default()
    }

    /// `connections[0].entities[1].page_size (line 14)`: the key as the error names it.
    fn key(&self, table: &[Seg], key: &str) -> String {
        let path = [table, &[Seg::Key(key)]].concat();
        format!("{}{}", dotted(table, key), self.at_line(&path))
    }

    /// A refusal of `key` in `table`, carrying the key and its line.
    fn problem(&self, table: &[Seg], key: &str, message: String) -> ConfigProblem {
        let line = self.line(&[table, &[Seg::Key(key)]].concat());
        ConfigProblem { key: Some(dotted(table, key)), line, message }
    }

    /// The dotted key written on 1-based `line`, for what the TOML parser and the secret scan
    /// report by position only.
    fn key_at_line(&self, line: usize) -> Option<String> {
        let mut path = Vec::new();
        self.find_key(self.doc.as_ref()?.as_table(), line, &mut path)
    }

    fn find_key<'d>(&self, table: &'d toml_edit::Table, line: usize, path: &mut Vec<Seg<'d>>) -> Option<String> {
        for (k, item) in table.iter() {
            let found = match item {
                toml_edit::Item::Table(t) => {
                    path.push(Seg::Key(k));
                    let found = self.find_key(t, line, path);
                    path.pop();
                    found
                }
                toml_edit::Item::ArrayOfTables(a) => a.iter().enumerate().find_map(|(i, t)| {
                    path.extend([Seg::Key(k), Seg::Index(i)]);
                    let found = self.find_key(t, line, path);
                    path.truncate(path.len() - 2);
                    found
                }),
                _ => {
                    let key_line = table.key(k).and_then(|key| key.span()).map(|s| line_of_offset(self.text, s.start));
                    (key_line == Some(line)).then(|| dotted(path, k))
                }
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

/// `connections[0].entities[1].page_size`: `connection`, `entity` and `target` tables are named
/// like the fields that hold them.
fn dotted(table: &[Seg], key: &str) -> String {
    let mut name = String::new();
    for seg in table {
        match *seg {
            Seg::Key(k) => {
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(match k {
                    "connection" => "connections",
                    "entity" => "entities",
                    "target" => "targets",
                    other => other,
                });
            }
            Seg::Index(i) => name.push_str(&format!("[{i}]")),
        }
    }
    if name.is_empty() {
        key.to_string()
    } else {
        format!("{name}.{key}")
    }
}

impl<'a> Locator<'a> {
    fn check_duration(&self, table: &[Seg], key: &str, d: Duration, min: Duration, max: Duration) -> Result<(), ConfigProblem> {
        if d < min || d > max {
            // Whole days as "365d": humantime would write a year as "11months 30days 3h 50m 24s".
            let fmt = |d: Duration| match d.as_secs() {
                _ if d.is_zero() => "0s".to_string(),
                s if s >= 2 * 86400 && s % 86400 == 0 && d.subsec_nanos() == 0 => format!("{}d", s / 86400),
                _ => humantime::format_duration(d).to_string(),
            };
            return Err(self.problem(
                table,
                key,
                format!("{} must be between {} and {}: a value outside cannot work", self.key(table, key), fmt(min), fmt(max)),
            ));
        }
        Ok(())
    }

    /// `secret_env` names a variable; anything else is most likely the secret itself, pasted into
    /// the wrong key, and is refused without being repeated.
    fn check_env_names<const N: usize>(&self, table: &[Seg], keys: [(&str, &Option<String>); N]) -> Result<(), ConfigProblem> {
        for (key, value) in keys {
            let Some(name) = value else { continue };
            let mut b = name.bytes();
            let valid = b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') && b.all(|c| c.is_ascii_alphanumeric() || c == b'_');
            if !valid {
                return Err(self.problem(
                    table,
                    key,
                    format!(
                        "{} must be the NAME of an environment variable (letters, digits, `_`), not the secret itself — the value \
                     is not shown; keep the secret in the keyring with `syncmon creds set <id>` or in that variable",
                        self.key(table, key)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The limits a connection and a target share.
    fn check_client_limits(&self, table: &[Seg], c: &ConnectionConfig) -> Result<(), ConfigProblem> {
        if !(1..=256).contains(&c.max_concurrency) {
            return Err(self.problem(table, "max_concurrency", format!("{} must be between 1 and 256", self.key(table, "max_concurrency"))));
        }
        if !(c.requests_per_second.is_finite() && (0.001..=1_000_000.0).contains(&c.requests_per_second)) {
            return Err(self.problem(
                table,
                "requests_per_second",
                format!("{} must be between 0.001 (one request in about 17 minutes) and 1000000", self.key(table, "requests_per_second")),
            ));
        }
        self.check_duration(table, "timeout", c.timeout, Duration::from_millis(100), Duration::from_secs(3600))?;
        if c.max_retries > 100 {
            return Err(self.problem(table, "max_retries", format!("{} must be between 0 and 100", self.key(table, "max_retries"))));
        }
        self.check_duration(table, "backoff_base", c.backoff_base, Duration::from_millis(1), Duration::from_secs(3600))?;
        self.check_duration(table, "backoff_max", c.backoff_max, c.backoff_base, Duration::from_secs(86400))?;
        if !(1..=10_000).contains(&c.breaker_threshold) {
            return Err(self.problem(table, "breaker_threshold", format!("{} must be between 1 and 10000", self.key(table, "breaker_threshold"))));
        }
        self.check_duration(table, "breaker_cooldown", c.breaker_cooldown, Duration::from_millis(10), Duration::from_secs(86400))
    }

    fn refuse_secret_in_url(&self, table: &[Seg], key: &str, id: &str, url: &url::Url) -> Result<(), ConfigProblem> {
        let problem = if !url.username().is_empty() || url.password().is_some() {
            Some("contains a user name/password".to_string())
        } else {
            url.query_pairs().map(|(k, _)| k).find(|k| redact::is_secret_param(k)).map(|k| format!("carries the credential-looking query parameter `{k}`"))
        };
        match problem {
            Some(p) => Err(self.problem(table, key, secret_in_url_message(&self.key(table, key), id, &p))),
            None => Ok(()),
        }
    }

    fn refuse_secret_in_url_text(&self, table: &[Seg], key: &str, id: &str, text: &str) -> Result<(), ConfigProblem> {
        let url = url::Url::parse(text).map_err(|e| {
            self.problem(table, key, format!("{} is not a URL ({e}); write e.g. \"https://login.example.com/oauth2/token\"", self.key(table, key)))
        })?;
        self.refuse_secret_in_url(table, key, id, &url)
    }

    /// A path below a base URL (`/items?api_key=…` is refused like a URL).
    fn refuse_secret_in_path(&self, table: &[Seg], key: &str, id: &str, path: &str) -> Result<(), ConfigProblem> {
        let base = url::Url::parse("http://localhost/").expect("a constant URL");
        match base.join(path) {
            Ok(u) => self.refuse_secret_in_url(table, key, id, &u),
            Err(_) => Ok(()),
        }
    }
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// A TOML or type error as "line N: `key`: reason", built from the error's span: the parser's
/// own display quotes the source line, and with it a value that may be a secret.
fn toml_error(at: &Locator, e: &toml::de::Error) -> ConfigProblem {
    let text = at.text;
    let message = e.message().trim_end();
    // serde names the value in "invalid type: string \"…\", expected …": keep what was expected.
    let reason = match message.split_once(", expected ") {
        Some((head, expected)) if head.starts_with("invalid type") || head.starts_with("invalid value") => {
            format!("wrong kind of value: expected {expected}")
        }
        Some((head, expected)) if head.starts_with("unknown variant") => format!("unknown value: expected {expected}"),
        _ => message.to_string(),
    };
    let Some(span) = e.span() else { return ConfigProblem::unplaced(reason) };
    let n = line_of_offset(text, span.start);
    let line = text.lines().nth(n - 1).unwrap_or("");
    let key = line.split_once('=').map(|(k, _)| k.trim().trim_matches(['"', '\''])).filter(|k| !k.is_empty() && !k.starts_with('['));
    let message = match key {
        Some(k) if !reason.contains(&format!("`{k}`")) => format!("line {n}: `{k}`: {reason}"),
        _ => format!("line {n}: {reason}"),
    };
    ConfigProblem { key: at.key_at_line(n), line: Some(n), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[connection]]
id = "retail-prod"
base_url = "https://api.example.com/tenant/prod/company"
auth = "oauth2"
token_url = "https://login.example.com/oauth2/token"
client_id = "syncmon"

[[connection.entity]]
name = "items"
poll_every = "5m"
full_resync_every = "24h"
"#;

    #[test]
    fn the_design_example_parses_with_defaults() {
        let c = Config::parse(MINIMAL).unwrap();
        let conn = &c.connections[0];
        assert_eq!(conn.max_concurrency, 5);
        assert_eq!(conn.profile, ProfileKind::Rowversion);
        assert_eq!(conn.entities[0].path(), "/items");
        assert_eq!(conn.entities[0].page_size, 1000);
        assert_eq!(conn.entities[0].full_resync_every, Some(Duration::from_secs(86400)));
        assert_eq!(conn.lookback, Duration::from_secs(600));
    }

    #[test]
    fn a_plaintext_secret_is_refused_with_its_line() {
        let text = format!("{MINIMAL}client_secret = \"hunter2\"\n");
        let err = Config::parse(&text).unwrap_err().to_string();
        assert!(err.contains("line 13"), "{err}");
        assert!(err.contains("syncmon creds set"), "the error must say what to do: {err}");
        assert!(!err.contains("hunter2"), "the error must not echo the secret: {err}");
    }

    #[test]
    fn a_typo_names_the_line_and_the_expected_fields() {
        let err = Config::parse("[[connection]]\nid = \"a\"\nbase_url = \"http://x\"\npoll_evry = \"5m\"\n").unwrap_err().to_string();
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("poll_evry"), "{err}");
    }

    #[test]
    fn a_bad_duration_says_how_to_write_one() {
        let err = Config::parse(&MINIMAL.replace("\"5m\"", "\"five minutes\"")).unwrap_err().to_string();
        assert!(err.contains("e.g. \"30s\""), "{err}");
    }

    #[test]
    fn oauth2_without_a_token_url_is_refused() {
        let err = Config::parse(&MINIMAL.replace("token_url = \"https://login.example.com/oauth2/token\"\n", "")).unwrap_err().to_string();
        assert!(err.contains("token_url"), "{err}");
    }

    #[test]
    fn the_cursor_profile_needs_one_way_to_page() {
        let text = "[[connection]]\nid = \"a\"\nbase_url = \"http://127.0.0.1:1\"\nprofile = \"cursor\"\n[connection.cursor]\nfilter_param = \"since\"\n";
        assert!(Config::parse(text).unwrap_err().to_string().contains("exactly one way"));
        let ok = format!("{text}next = \"link-header\"\n");
        Config::parse(&ok).unwrap();
    }

    #[test]
    fn duplicate_ids_and_bad_names_are_refused() {
        let two = "[[connection]]\nid = \"a\"\nbase_url = \"http://x\"\n[[connection]]\nid = \"a\"\nbase_url = \"http://y\"\n";
        assert!(Config::parse(two).unwrap_err().to_string().contains("unique"));
        let bad = "[[connection]]\nid = \"a b\"\nbase_url = \"http://x\"\n";
        assert!(Config::parse(bad).unwrap_err().to_string().contains("letters"));
    }

    const FORWARDING: &str = r#"
[[target]]
id = "erp"
base_url = "https://erp.example.com/api"
auth = "api_key"
max_concurrency = 2

[[connection]]
id = "retail-prod"
base_url = "https://api.example.com/tenant/prod/company"

[[connection.entity]]
name = "items"
forward_to = "erp"
"#;

    #[test]
    fn a_target_parses_with_connection_defaults_and_a_default_forward_path() {
        let c = Config::parse(FORWARDING).unwrap();
        let t = c.target("erp").unwrap();
        assert_eq!((t.auth, t.max_concurrency, t.max_retries), (AuthKind::ApiKey, 2, 5));
        assert_eq!(t.api_key_header, "x-np-api-key");
        let e = &c.connections[0].entities[0];
        assert_eq!(e.forward_to.as_deref(), Some("erp"));
        assert_eq!(e.forward_path(), "/items");
        let conn = t.as_connection();
        assert_eq!((conn.id.as_str(), conn.timeout), ("erp", Duration::from_secs(30)));
        let custom = Config::parse(&format!("{FORWARDING}forward_path = \"/v2/products\"\n")).unwrap();
        assert_eq!(custom.connections[0].entities[0].forward_path(), "/v2/products");
    }

    #[test]
    fn an_unknown_target_is_refused_with_its_line_and_the_known_targets() {
        let err = Config::parse(&FORWARDING.replace("forward_to = \"erp\"", "forward_to = \"crm\"")).unwrap_err().to_string();
        assert!(err.contains("line 14"), "{err}");
        assert!(err.contains("crm") && err.contains("the targets are: erp"), "{err}");
        let none = "[[connection]]\nid = \"a\"\nbase_url = \"http://x\"\n[[connection.entity]]\nname = \"items\"\nforward_to = \"erp\"\n";
        let err = Config::parse(none).unwrap_err().to_string();
        assert!(err.contains("line 6") && err.contains("no [[target]] section"), "{err}");
    }

    #[test]
    fn bad_targets_are_refused_naming_the_target() {
        let dup = FORWARDING.replace("[[connection]]", "[[target]]\nid = \"erp\"\nbase_url = \"http://y\"\n\n[[connection]]");
        assert!(Config::parse(&dup).unwrap_err().to_string().contains("unique"));
        let clash = FORWARDING.replace("id = \"erp\"", "id = \"retail-prod\"").replace("forward_to = \"erp\"", "forward_to = \"retail-prod\"");
        let err = Config::parse(&clash).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("keyring"), "{err}");
        let err = Config::parse(
            &clash.replacen("id = \"retail-prod\"", "id = \"Retail-Prod\"", 1).replace("forward_to = \"retail-prod\"", "forward_to = \"Retail-Prod\""),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 3") && err.contains("keyring"), "a target id that differs only in case: {err}");
        let err = Config::parse(&FORWARDING.replace("https://erp.example.com/api", "ftp://erp")).unwrap_err().to_string();
        assert!(err.contains("target `erp`") && err.contains("https://"), "{err}");
        let err = Config::parse(&FORWARDING.replace("auth = \"api_key\"", "auth = \"oauth2\"")).unwrap_err().to_string();
        assert!(err.contains("token_url"), "{err}");
        let err = Config::parse(&FORWARDING.replace("max_concurrency = 2", "max_concurrency = 0")).unwrap_err().to_string();
        assert!(err.contains("max_concurrency"), "{err}");
        let err = Config::parse(&FORWARDING.replace("max_concurrency = 2", "max_concurency = 2")).unwrap_err().to_string();
        assert!(err.contains("line 6") && err.contains("max_concurency"), "a typo in a target names its line: {err}");
        let err = Config::parse(&format!("{FORWARDING}forward_path = \"products\"\n")).unwrap_err().to_string();
        assert!(err.contains("line 15") && err.contains("start with `/`"), "{err}");
        let err = Config::parse(&FORWARDING.replace("forward_to = \"erp\"", "forward_path = \"/x\"")).unwrap_err().to_string();
        assert!(err.contains("forward_path needs forward_to"), "{err}");
    }

    const TWO_ENTITIES: &str = r#"
[[connection]]
id = "src"
base_url = "https://api.example.com/tenant/prod/company"

[[connection.entity]]
name = "other"

[[connection.entity]]
name = "Items"

[[connection.entity]]
name = "more"

[[connection.entity]]
name = "items"
"#;

    #[test]
    fn names_that_differ_only_in_case_are_refused_naming_both_and_their_lines() {
        let err = Config::parse(TWO_ENTITIES).unwrap_err().to_string();
        assert!(err.contains("entity \"items\" (line 16) differs from \"Items\" (line 10) only in case"), "{err}");
        assert!(err.contains("rename one"), "{err}");
        let conns = "[[connection]]\nid = \"Shop\"\nbase_url = \"https://a.example\"\n\n[[connection]]\nid = \"shop\"\nbase_url = \"https://b.example\"\n";
        let err = Config::parse(conns).unwrap_err().to_string();
        assert!(err.contains("connection \"shop\" (line 6) differs from \"Shop\" (line 2) only in case"), "{err}");
    }

    #[test]
    fn names_that_map_to_one_replica_table_are_refused() {
        let dash = TWO_ENTITIES.replace("\"Items\"", "\"a-b\"").replace("\"items\"", "\"a_b\"");
        let err = Config::parse(&dash).unwrap_err().to_string();
        assert!(err.contains("src/a_b (line 16) and src/a-b (line 10) would share the replica table `replica_src_a_b`"), "{err}");
        // connection `a_b` + entity `c` and connection `a` + entity `b_c` are both `replica_a_b_c`.
        let split = "[[connection]]\nid = \"a_b\"\nbase_url = \"https://a.example\"\n[[connection.entity]]\nname = \"c\"\n\
                     [[connection]]\nid = \"a\"\nbase_url = \"https://b.example\"\n[[connection.entity]]\nname = \"b_c\"\n";
        let err = Config::parse(split).unwrap_err().to_string();
        assert!(err.contains("a/b_c (line 10) and a_b/c (line 5) would share the replica table `replica_a_b_c`"), "{err}");
    }

    const URLS: &str = r#"
[[target]]
id = "erp"
base_url = "https://erp.example.com/api"

[[connection]]
id = "src"
base_url = "https://api.example.com/company"
auth = "oauth2"
token_url = "https://login.example.com/token"
client_id = "syncmon"

[[connection.entity]]
name = "items"
path = "/items"
forward_to = "erp"
"#;

    #[test]
    fn secrets_in_urls_are_refused_with_the_key_and_line_never_the_value() {
        Config::parse(URLS).unwrap();
        let cases = [
            (
                "https://api.example.com/company",
                "https://alice:s3cr3t-pw@api.example.com/company",
                "connections[0].base_url (line 8) contains a user name/password",
            ),
            (
                "https://api.example.com/company",
                "https://s3cr3t-user@api.example.com/company",
                "connections[0].base_url (line 8) contains a user name/password",
            ),
            (
                "\"/items\"",
                "\"/items?sync=true&api_key=s3cr3t\"",
                "connections[0].entities[0].path (line 15) carries the credential-looking query parameter `api_key`",
            ),
            ("https://login.example.com/token", "https://login.example.com/token?client_secret=s3cr3t", "connections[0].token_url (line 10) carries"),
            (
                "https://erp.example.com/api",
                "https://erp.example.com/api?X-Api-Key=s3cr3t",
                "targets[0].base_url (line 4) carries the credential-looking query parameter `X-Api-Key`",
            ),
            ("forward_to = \"erp\"", "forward_to = \"erp\"\nforward_path = \"/in?auth=s3cr3t\"", "connections[0].entities[0].forward_path (line 17)"),
        ];
        for (from, to, expected) in cases {
            let text = URLS.replace(from, to);
            let err = Config::parse(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{to}: {err}");
            assert!(err.contains("syncmon creds set src") || err.contains("syncmon creds set erp"), "it says what to do: {err}");
            assert!(!err.contains("s3cr3t"), "the value must not be shown: {err}");
        }
        let cursor = "[[connection]]\nid = \"a\"\nbase_url = \"https://x.example\"\nprofile = \"cursor\"\n[connection.cursor]\n\
                      filter_param = \"since\"\nnext = \"link-header\"\nextra_query = \"order=seq&token=s3cr3t\"\n";
        let err = Config::parse(cursor).unwrap_err().to_string();
        assert!(err.contains("connections[0].cursor.extra_query (line 8)") && !err.contains("s3cr3t"), "{err}");
        let broken = URLS.replace("https://api.example.com/company", "https://alice:s3cr3t@api example.com");
        let err = Config::parse(&broken).unwrap_err().to_string();
        assert!(err.contains("not a URL") && !err.contains("s3cr3t"), "{err}");
        // Page keys and versions in a path are no secret.
        Config::parse(&URLS.replace("\"/items\"", "\"/items?pageKey=1&sync=true\"")).unwrap();
    }

    #[test]
    fn a_rejected_value_is_never_echoed() {
        let conn = "[[connection]]\nid = \"a\"\nbase_url = \"https://x.example\"\n";
        let cases = [
            ("clientSecret = \"hunter2\"", "line 4: `clientSecret` would store a secret"),
            ("Client-Secret = \"hunter2\"", "line 4: `Client-Secret` would store a secret"),
            ("client_sercet = \"hunter2\"", "line 4: unknown field `client_sercet`"),
            ("max_retries = \"hunter2\"", "line 4: `max_retries`: wrong kind of value: expected u32"),
            ("auth = \"hunter2\"", "line 4: `auth`: unknown value: expected one of"),
            ("timeout = \"hunter2\"", "line 4: `timeout`: this is not a duration"),
            ("api_version = 'hunter2", "line 4"),
            ("secret_env = \"hunter2-pasted\"", "connections[0].secret_env (line 4) must be the NAME of an environment variable"),
            ("webhook_secret_env = \"hunter2 x\"", "connections[0].webhook_secret_env (line 4) must be the NAME"),
        ];
        for (line, expected) in cases {
            let err = Config::parse(&format!("{conn}{line}\n")).unwrap_err().to_string();
            assert!(err.contains(expected), "{line}: {err}");
            assert!(!err.contains("hunter2"), "{line}: the value must not be echoed: {err}");
        }
    }

    #[test]
    fn values_that_cannot_work_are_refused_with_the_allowed_range() {
        let base = "[[connection]]\nid = \"a\"\nbase_url = \"https://x.example\"\n";
        let entity = "[[connection.entity]]\nname = \"items\"\n";
        let cases = [
            (format!("{base}timeout = \"0s\"\n"), "connections[0].timeout (line 4) must be between 100ms and 1h"),
            (format!("{base}requests_per_second = 1e-6\n"), "connections[0].requests_per_second (line 4) must be between 0.001"),
            (format!("{base}requests_per_second = 0\n"), "requests_per_second (line 4) must be between"),
            (format!("{base}requests_per_second = -2.0\n"), "requests_per_second (line 4) must be between"),
            (format!("{base}requests_per_second = nan\n"), "requests_per_second (line 4) must be between"),
            (format!("{base}max_concurrency = 0\n"), "connections[0].max_concurrency (line 4) must be between 1 and 256"),
            (format!("{base}breaker_threshold = 0\n"), "breaker_threshold (line 4) must be between 1 and"),
            (format!("{base}backoff_base = \"10s\"\nbackoff_max = \"1s\"\n"), "connections[0].backoff_max (line 5) must be between 10s and"),
            (format!("{base}lookback = \"-5m\"\n"), "line 4: `lookback`: this is not a duration"),
            (format!("{base}lookback = \"400days\"\n"), "connections[0].lookback (line 4) must be between 0s and 365d"),
            (format!("{base}{entity}page_size = 0\n"), "page_size must be between 1 and 100000 (line 6)"),
            (format!("{base}{entity}poll_every = \"0s\"\n"), "connections[0].entities[0].poll_every (line 6) must be between 1s and"),
            (format!("{base}{entity}full_resync_every = \"0s\"\n"), "connections[0].entities[0].full_resync_every (line 6) must be between 1s and"),
            (format!("[storage]\nrequest_log_retention = \"0s\"\n{base}"), "storage.request_log_retention (line 2) must be between 1s and"),
            (format!("[storage]\nruns_kept = 0\n{base}"), "storage.runs_kept (line 2) must be at least 1"),
            (format!("[[target]]\nid = \"t\"\nbase_url = \"https://t.example\"\ntimeout = \"0s\"\n{base}"), "targets[0].timeout (line 4) must be between"),
        ];
        for (text, expected) in &cases {
            let err = Config::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}\n→ {err}");
        }
        // The edges of the ranges are fine.
        Config::parse(&format!(
            "{base}timeout = \"100ms\"\nrequests_per_second = 0.001\nlookback = \"0s\"\n{entity}poll_every = \"1s\"\nfull_resync_every = \"1s\"\n"
        ))
        .unwrap();
    }

    #[test]
    fn plain_http_to_another_machine_and_an_open_webhook_listener_are_warnings() {
        let text = r#"
[webhooks]
listen = "0.0.0.0:8385"

[[target]]
id = "erp"
base_url = "http://erp.internal:8080/api"

[[connection]]
id = "src"
base_url = "http://api.example.com/company"
auth = "oauth2"
token_url = "http://10.1.2.3/token"
client_id = "syncmon"

[[connection]]
id = "local"
base_url = "http://127.0.0.1:8080"
token_url = "http://localhost:9/token"

[[connection]]
id = "tls"
base_url = "https://api.example.com/company"
"#;
        let c = Config::parse(text).unwrap();
        let w = c.warnings();
        let keys: Vec<&str> = w.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(keys, ["connections[0].base_url", "connections[0].token_url", "targets[0].base_url", "webhooks.listen"], "{w:#?}");
        assert!(w[0].message.contains("plain http:// to api.example.com") && w[0].message.contains("use https://"), "{}", w[0].message);
        assert!(w[1].message.contains("10.1.2.3") && w[1].message.contains("client secret"), "{}", w[1].message);
        assert!(w[3].message.contains("0.0.0.0:8385") && w[3].message.contains("127.0.0.1"), "{}", w[3].message);
        let quiet = Config::parse(
            &text
                .replace("0.0.0.0", "127.0.0.1")
                .replace("http://erp.internal", "https://erp.internal")
                .replace("http://api.example.com", "https://api.example.com")
                .replace("http://10.1.2.3", "https://10.1.2.3"),
        )
        .unwrap();
        assert_eq!(quiet.warnings(), vec![]);
    }

    #[test]
    fn a_refusal_carries_the_dotted_key_and_its_line() {
        let base = "[[connection]]\nid = \"a\"\nbase_url = \"https://x.example\"\n";
        let entity = "[[connection.entity]]\nname = \"items\"\n";
        let cases = [
            // By position only (the parser, the secret scan): the key is found from the line.
            (format!("{base}max_retries = \"x\"\n"), "connections[0].max_retries", Some(4)),
            (format!("{base}client_sercet = \"x\"\n"), "connections[0].client_sercet", Some(4)),
            (format!("{base}{entity}client_secret = \"x\"\n"), "connections[0].entities[0].client_secret", Some(6)),
            // By the rule that refused it, including messages that name no key or another one.
            (format!("{base}{entity}deletion_guard = 2.0\n"), "connections[0].entities[0].deletion_guard", Some(6)),
            (format!("{base}{entity}{entity}"), "connections[0].entities[1].name", Some(7)),
            (format!("{base}auth = \"oauth2\"\ntoken_url = \"https://x.example/t\"\n"), "connections[0].client_id", None),
            (format!("{base}[[connection]]\nid = \"A\"\nbase_url = \"https://y.example\"\n"), "connections[1].id", Some(5)),
            (format!("[storage]\nruns_kept = 0\n{base}"), "storage.runs_kept", Some(2)),
            (format!("[webhooks]\nlisten = \"nowhere\"\n{base}"), "webhooks.listen", Some(2)),
            (format!("[[target]]\nid = \"t\"\nbase_url = \"ftp://t\"\n{base}"), "targets[0].base_url", Some(3)),
        ];
        for (text, key, line) in &cases {
            let p = Config::parse(text).unwrap_err();
            assert_eq!((p.key.as_deref(), p.line), (Some(*key), *line), "{text}\n→ {p}");
        }
    }
}
