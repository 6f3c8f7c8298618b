//! The configuration file (TOML, DESIGN §7). Fields may be added, never renamed.
//!
//! Secrets are never values in this file: a connection's secret comes from the OS keyring
//! (service `syncmon`, account = connection id) or from an environment variable named by
//! `secret_env`. A plaintext secret is refused with the line it is on.

use serde::{Deserialize, Deserializer};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}. Create it (see README) or pass --config PATH")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

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

fn d_profile() -> ProfileKind { ProfileKind::Rowversion }
fn d_auth() -> AuthKind { AuthKind::None }
fn d_api_key_header() -> String { "x-np-api-key".into() }
fn d_entity_pointer() -> String { "/entity".into() }
fn d_max_concurrency() -> usize { 5 }
fn d_rps() -> f64 { 10.0 }
fn d_timeout() -> Duration { Duration::from_secs(30) }
fn d_max_retries() -> u32 { 5 }
fn d_backoff_base() -> Duration { Duration::from_millis(500) }
fn d_backoff_max() -> Duration { Duration::from_secs(30) }
fn d_breaker_threshold() -> u32 { 3 }
fn d_breaker_cooldown() -> Duration { Duration::from_secs(60) }
fn d_lookback() -> Duration { Duration::from_secs(600) }
fn d_id_field() -> String { "id".into() }
fn d_version_field() -> String { "rowVersion".into() }
fn d_poll_every() -> Duration { Duration::from_secs(300) }
fn d_page_size() -> u32 { 1000 }
fn d_deletion_guard() -> f64 { 0.5 }
fn d_request_log_retention() -> Duration { Duration::from_secs(7 * 24 * 3600) }
fn d_runs_kept() -> u32 { 500 }

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!("`{text}` is not a duration ({e}); write e.g. \"30s\", \"5m\", \"24h\""))
    })
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// Keys that would hold a secret in plain text. Refused wherever they appear.
pub const SECRET_KEYS: &[&str] = &[
    "secret", "client_secret", "password", "api_key", "token", "access_token", "bearer_token",
    "webhook_secret", "client_state",
];

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid { path: path.to_path_buf(), message })
    }

    /// Parses and validates; the error names the line and what to write instead.
    pub fn parse(text: &str) -> Result<Config, String> {
        for (n, line) in text.lines().enumerate() {
            let key = line.trim_start().split('=').next().unwrap_or("").trim().trim_matches('"');
            if line.contains('=') && SECRET_KEYS.contains(&key) {
                return Err(format!(
                    "line {}: `{key}` would store a secret in plain text, which Syncmon refuses. Remove the line and \
                     run `syncmon creds set <connection id>` to keep it in the OS keyring, or name an environment \
                     variable with `secret_env = \"VAR\"` (`webhook_secret_env` for the webhook secret)",
                    n + 1
                ));
            }
        }
        let config: Config = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        config.validate()?;
        config.validate_targets(text)?;
        Ok(config)
    }

    /// Targets and the entities' `forward_to`; errors name the line that is wrong.
    fn validate_targets(&self, text: &str) -> Result<(), String> {
        let at_line = |key: &str, value: &str, msg: String| match line_of(text, key, value) {
            Some(n) => format!("line {n}: {msg}"),
            None => msg,
        };
        let mut ids = HashSet::new();
        for t in &self.targets {
            let err = |msg: String| at_line("id", &t.id, format!("target `{}`: {msg}", t.id));
            if !valid_name(&t.id) {
                return Err(err("id may hold only letters, digits, `-` and `_` (it names the keyring entry)".into()));
            }
            if !ids.insert(t.id.as_str()) {
                return Err(err("two targets have this id; give each a unique `id`".into()));
            }
            if self.connection(&t.id).is_some() {
                return Err(err("a connection has the same id, and both would read the same keyring entry; rename the target".into()));
            }
            let url = url::Url::parse(&t.base_url)
                .map_err(|e| err(format!("base_url `{}` is not a URL ({e}); write e.g. \"https://api.example.com/tenant/prod/company\"", t.base_url)))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(err("base_url must start with https:// (or http:// for a local target)".into()));
            }
            if t.auth == AuthKind::Oauth2 && (t.token_url.is_none() || t.client_id.is_none()) {
                return Err(err("auth = \"oauth2\" needs `token_url` and `client_id` (the client secret goes in the keyring)".into()));
            }
            if t.max_concurrency == 0 {
                return Err(err("max_concurrency must be at least 1".into()));
            }
            if !t.requests_per_second.is_finite() || t.requests_per_second <= 0.0 {
                return Err(err("requests_per_second must be above 0".into()));
            }
        }
        for c in &self.connections {
            for e in &c.entities {
                let at = format!("connection `{}`, entity `{}`", c.id, e.name);
                match &e.forward_to {
                    Some(t) if !ids.contains(t.as_str()) => {
                        let known = if ids.is_empty() { "there is no [[target]] section".to_string() } else {
                            let mut v: Vec<&str> = ids.iter().copied().collect();
                            v.sort();
                            format!("the targets are: {}", v.join(", "))
                        };
                        return Err(at_line("forward_to", t, format!("{at}: forward_to = \"{t}\" names no [[target]] ({known})")));
                    }
                    None if e.forward_path.is_some() => {
                        return Err(format!("{at}: forward_path needs forward_to = \"<target id>\""));
                    }
                    _ => {}
                }
                if let Some(p) = e.forward_path.as_deref().filter(|p| !p.starts_with('/')) {
                    return Err(at_line("forward_path", p, format!("{at}: forward_path must start with `/`, e.g. \"/{p}\"")));
                }
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        let mut ids = HashSet::new();
        for c in &self.connections {
            let at = format!("connection `{}`", c.id);
            if !valid_name(&c.id) {
                return Err(format!("{at}: id may hold only letters, digits, `-` and `_` (it names keyring entries and tables)"));
            }
            if !ids.insert(c.id.as_str()) {
                return Err(format!("{at}: two connections have this id; give each a unique `id`"));
            }
            let url = url::Url::parse(&c.base_url)
                .map_err(|e| format!("{at}: base_url `{}` is not a URL ({e}); write e.g. \"https://api.example.com/tenant/prod/company\"", c.base_url))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("{at}: base_url must start with https:// (or http:// for a local source)"));
            }
            if c.auth == AuthKind::Oauth2 && (c.token_url.is_none() || c.client_id.is_none()) {
                return Err(format!("{at}: auth = \"oauth2\" needs `token_url` and `client_id` (the client secret goes in the keyring)"));
            }
            if c.max_concurrency == 0 {
                return Err(format!("{at}: max_concurrency must be at least 1"));
            }
            if !c.requests_per_second.is_finite() || c.requests_per_second <= 0.0 {
                return Err(format!("{at}: requests_per_second must be above 0"));
            }
            match (c.profile, &c.cursor) {
                (ProfileKind::Cursor, None) => {
                    return Err(format!("{at}: profile = \"cursor\" needs a [connection.cursor] section with at least `filter_param`"))
                }
                (ProfileKind::Cursor, Some(cur)) => {
                    let ways = [cur.next_token_pointer.is_some(), cur.next_url_pointer.is_some(), cur.next.is_some()]
                        .iter()
                        .filter(|x| **x)
                        .count();
                    if ways != 1 {
                        return Err(format!(
                            "{at}: the cursor profile needs exactly one way to find the next page: `next_token_pointer` + \
                             `next_token_param`, `next_url_pointer`, `next = \"link-header\"` or `next = \"short-page\"`"
                        ));
                    }
                    if cur.next_token_pointer.is_some() && cur.next_token_param.is_none() {
                        return Err(format!("{at}: `next_token_pointer` needs `next_token_param` (the query parameter that carries the token)"));
                    }
                    if cur.next == Some(NextPageMode::ShortPage) && cur.page_size_param.is_none() {
                        return Err(format!("{at}: `next = \"short-page\"` needs `page_size_param`, or a short page cannot be told apart"));
                    }
                }
                _ => {}
            }
            let mut names = HashSet::new();
            for e in &c.entities {
                let at = format!("{at}, entity `{}`", e.name);
                if !valid_name(&e.name) {
                    return Err(format!("{at}: name may hold only letters, digits, `-` and `_`"));
                }
                if !names.insert(e.name.as_str()) {
                    return Err(format!("{at}: listed twice"));
                }
                if e.page_size == 0 {
                    return Err(format!("{at}: page_size must be at least 1"));
                }
                if !(e.deletion_guard > 0.0 && e.deletion_guard <= 1.0) {
                    return Err(format!("{at}: deletion_guard is a share between 0 and 1, e.g. 0.5"));
                }
                if e.poll_every < Duration::from_secs(1) {
                    return Err(format!("{at}: poll_every must be at least 1s"));
                }
            }
        }
        if let Some(w) = &self.webhooks {
            w.listen.parse::<std::net::SocketAddr>().map_err(|_| {
                format!("[webhooks] listen = \"{}\" is not an address; write e.g. \"127.0.0.1:8385\"", w.listen)
            })?;
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
    text.lines().position(|l| {
        let Some((k, v)) = l.split_once('=') else { return false };
        k.trim().trim_matches('"') == key && v.split('#').next().unwrap_or("").trim().trim_matches(['"', '\'']) == value
    })
    .map(|i| i + 1)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
        let err = Config::parse(&text).unwrap_err();
        assert!(err.contains("line 13"), "{err}");
        assert!(err.contains("syncmon creds set"), "the error must say what to do: {err}");
        assert!(!err.contains("hunter2"), "the error must not echo the secret: {err}");
    }

    #[test]
    fn a_typo_names_the_line_and_the_expected_fields() {
        let err = Config::parse("[[connection]]\nid = \"a\"\nbase_url = \"http://x\"\npoll_evry = \"5m\"\n").unwrap_err();
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("poll_evry"), "{err}");
    }

    #[test]
    fn a_bad_duration_says_how_to_write_one() {
        let err = Config::parse(&MINIMAL.replace("\"5m\"", "\"five minutes\"")).unwrap_err();
        assert!(err.contains("e.g. \"30s\""), "{err}");
    }

    #[test]
    fn oauth2_without_a_token_url_is_refused() {
        let err = Config::parse(&MINIMAL.replace("token_url = \"https://login.example.com/oauth2/token\"\n", "")).unwrap_err();
        assert!(err.contains("token_url"), "{err}");
    }

    #[test]
    fn the_cursor_profile_needs_one_way_to_page() {
        let text = "[[connection]]\nid = \"a\"\nbase_url = \"http://127.0.0.1:1\"\nprofile = \"cursor\"\n[connection.cursor]\nfilter_param = \"since\"\n";
        assert!(Config::parse(text).unwrap_err().contains("exactly one way"));
        let ok = format!("{text}next = \"link-header\"\n");
        Config::parse(&ok).unwrap();
    }

    #[test]
    fn duplicate_ids_and_bad_names_are_refused() {
        let two = "[[connection]]\nid = \"a\"\nbase_url = \"http://x\"\n[[connection]]\nid = \"a\"\nbase_url = \"http://y\"\n";
        assert!(Config::parse(two).unwrap_err().contains("unique"));
        let bad = "[[connection]]\nid = \"a b\"\nbase_url = \"http://x\"\n";
        assert!(Config::parse(bad).unwrap_err().contains("letters"));
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
        let err = Config::parse(&FORWARDING.replace("forward_to = \"erp\"", "forward_to = \"crm\"")).unwrap_err();
        assert!(err.contains("line 14"), "{err}");
        assert!(err.contains("crm") && err.contains("the targets are: erp"), "{err}");
        let none = "[[connection]]\nid = \"a\"\nbase_url = \"http://x\"\n[[connection.entity]]\nname = \"items\"\nforward_to = \"erp\"\n";
        let err = Config::parse(none).unwrap_err();
        assert!(err.contains("line 6") && err.contains("no [[target]] section"), "{err}");
    }

    #[test]
    fn bad_targets_are_refused_naming_the_target() {
        let dup = FORWARDING.replace("[[connection]]", "[[target]]\nid = \"erp\"\nbase_url = \"http://y\"\n\n[[connection]]");
        assert!(Config::parse(&dup).unwrap_err().contains("unique"));
        let clash = FORWARDING.replace("id = \"erp\"", "id = \"retail-prod\"").replace("forward_to = \"erp\"", "forward_to = \"retail-prod\"");
        let err = Config::parse(&clash).unwrap_err();
        assert!(err.contains("line 3") && err.contains("keyring"), "{err}");
        let err = Config::parse(&FORWARDING.replace("https://erp.example.com/api", "ftp://erp")).unwrap_err();
        assert!(err.contains("target `erp`") && err.contains("https://"), "{err}");
        let err = Config::parse(&FORWARDING.replace("auth = \"api_key\"", "auth = \"oauth2\"")).unwrap_err();
        assert!(err.contains("token_url"), "{err}");
        let err = Config::parse(&FORWARDING.replace("max_concurrency = 2", "max_concurrency = 0")).unwrap_err();
        assert!(err.contains("max_concurrency"), "{err}");
        let err = Config::parse(&FORWARDING.replace("max_concurrency = 2", "max_concurency = 2")).unwrap_err();
        assert!(err.contains("line 6") && err.contains("max_concurency"), "a typo in a target names its line: {err}");
        let err = Config::parse(&format!("{FORWARDING}forward_path = \"products\"\n")).unwrap_err();
        assert!(err.contains("line 15") && err.contains("start with `/`"), "{err}");
        let err = Config::parse(&FORWARDING.replace("forward_to = \"erp\"", "forward_path = \"/x\"")).unwrap_err();
        assert!(err.contains("forward_path needs forward_to"), "{err}");
    }
}
