//! The configuration file (TOML, DESIGN §7). Fields may be added, never renamed.
//!
//! Secrets are never values in this file: a connection's secret comes from the OS keyring
//! (service `syncmon`, account = connection id) or from an environment variable named by
//! `secret_env`. A plaintext secret is refused with the line it is on.
//!
//! `sections` holds the tables of the file and their defaults, `validate` the rules a parsed
//! file must pass, `locator` how a refusal finds its key and line, `warnings` what is allowed
//! but risky.

mod locator;
mod sections;
mod snapshot;
#[cfg(test)]
mod tests;
mod validate;
mod validate_replica;
mod validate_targets;
mod warnings;

pub use sections::{
    AuthKind, ConnectionConfig, CursorConfig, EntityConfig, MetricsConfig, NextPageMode, ProfileKind, ReplicaConfig, StorageConfig, TargetConfig,
    WebhooksConfig, WriteBackConfig, DEFAULT_INGEST_MAX_BYTES, DEFAULT_POLL_EVERY,
};
pub use warnings::ConfigWarning;

use locator::{toml_error, Locator};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
    pub(super) fn unplaced(message: String) -> Self {
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
    /// `[replica]`: PostgreSQL instead of the embedded SQLite file, off when absent.
    #[serde(default)]
    pub replica: Option<ReplicaConfig>,
    /// `[metrics]`: the Prometheus endpoint of the agent, off when absent.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// Target APIs that entities forward their changes to (`forward_to`).
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetConfig>,
    /// The line of each key written in the file (`targets[0].base_url` → 3), for warnings about
    /// values that parsed: a refusal finds its line while parsing, a warning comes later.
    #[serde(skip)]
    key_lines: HashMap<String, usize>,
}

/// Keys that would hold a secret in plain text. Refused wherever they appear.
pub const SECRET_KEYS: &[&str] = &["secret", "client_secret", "password", "api_key", "token", "access_token", "bearer_token", "webhook_secret", "client_state"];

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        Config::parse_in(&text, dir).map_err(|problem| ConfigError::Invalid { path: path.to_path_buf(), problem })
    }

    /// [`Config::parse_in`] for a text that has no file: relative paths in it (an entity's
    /// `schema`) are read from the current directory.
    pub fn parse(text: &str) -> Result<Config, ConfigProblem> {
        Config::parse_in(text, Path::new(""))
    }

    /// Parses and validates; the error names the key, its line and what to write instead, and
    /// never repeats a value (it may be a secret pasted into the wrong key). Files the config
    /// names (an entity's `schema`) are read and compiled here, relative paths from `dir` (the
    /// config file's directory).
    pub fn parse_in(text: &str, dir: &Path) -> Result<Config, ConfigProblem> {
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
        let mut config: Config = toml::from_str(text).map_err(|e| toml_error(&at, &e))?;
        config.key_lines = at.key_lines().into_iter().collect();
        config.validate(&at)?;
        config.validate_targets(text, &at)?;
        config.load_schemas(dir, &at)?;
        config.load_ca_files(dir, &at)?;
        Ok(config)
    }

    pub fn connection(&self, id: &str) -> Option<&ConnectionConfig> {
        self.connections.iter().find(|c| c.id == id)
    }

    pub fn target(&self, id: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.id == id)
    }
}

/// `clientSecret`, `client-secret` and `client_secret` compare equal.
fn normalized_key(k: &str) -> String {
    k.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_ascii_lowercase()
}
