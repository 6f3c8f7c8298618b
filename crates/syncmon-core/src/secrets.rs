//! Where secrets come from: the OS keyring (service `syncmon`, account = connection id, or
//! `<id>/webhook`), or for headless machines an environment variable named in the config.
//! A `Secret` never prints its value.

use crate::config::{ConnectionConfig, ReplicaConfig};
// Re-exported: the redaction helpers lived here before `redact`.
pub use crate::redact::{is_secret_param, redact_url, redact_url_text};
use std::fmt;

pub const KEYRING_SERVICE: &str = "syncmon";

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// The API key, bearer token or OAuth client secret.
    Connection,
    /// The webhook signing secret / Business Central clientState.
    Webhook,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no {what} for connection `{connection}` in the OS keyring. Run `syncmon creds set {connection}{flag}`, or set `{env_key} = \"VAR\"` in the config for a headless machine")]
    Missing { connection: String, what: &'static str, flag: &'static str, env_key: &'static str },
    #[error("environment variable `{var}` (named by `{env_key}` of {}) is not set or is empty", if connection.starts_with('[') { connection.clone() } else { format!("connection `{connection}`") })]
    EnvUnset { connection: String, var: String, env_key: &'static str },
    #[error("the OS keyring is not available ({0}). On a headless machine name an environment variable with `secret_env` instead")]
    Keyring(String),
}

pub fn keyring_account(connection: &str, kind: SecretKind) -> String {
    match kind {
        SecretKind::Connection => connection.to_string(),
        SecretKind::Webhook => format!("{connection}/webhook"),
    }
}

/// Resolves the secret of a connection: the environment variable when the config names one,
/// else the keyring.
pub fn resolve(conn: &ConnectionConfig, kind: SecretKind) -> Result<Secret, SecretError> {
    let (env, env_key, what, flag) = match kind {
        SecretKind::Connection => (&conn.secret_env, "secret_env", "secret", ""),
        SecretKind::Webhook => (&conn.webhook_secret_env, "webhook_secret_env", "webhook secret", " --webhook"),
    };
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Secret(v)),
            _ => Err(SecretError::EnvUnset { connection: conn.id.clone(), var: var.clone(), env_key }),
        };
    }
    match keyring_get(&keyring_account(&conn.id, kind))? {
        Some(s) => Ok(s),
        None => Err(SecretError::Missing { connection: conn.id.clone(), what, flag, env_key }),
    }
}

/// The keyring account of the PostgreSQL replica's password (`syncmon creds replica`).
pub const REPLICA_ACCOUNT: &str = "replica";

/// The PostgreSQL replica's password: from the environment variable `password_env` names when
/// it names one, else from the keyring account `replica`, else none (the server may trust this
/// user, or ask: its refusal then says where a password goes).
pub fn replica_password(replica: &ReplicaConfig) -> Result<Option<Secret>, SecretError> {
    if let Some(var) = &replica.password_env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret(v))),
            _ => Err(SecretError::EnvUnset { connection: "[replica]".into(), var: var.clone(), env_key: "password_env" }),
        };
    }
    // No keyring on a headless server is not an error here: a password is optional.
    Ok(keyring_get(REPLICA_ACCOUNT).unwrap_or(None))
}

pub fn keyring_get(account: &str) -> Result<Option<Secret>, SecretError> {
    let entry = keyring::Entry::new(KEYRING_SERVICE, account).map_err(|e| SecretError::Keyring(e.to_string()))?;
    match entry.get_password() {
        Ok(v) => Ok(Some(Secret(v))),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(SecretError::Keyring(e.to_string())),
    }
}

pub fn keyring_set(account: &str, secret: &Secret) -> Result<(), SecretError> {
    let entry = keyring::Entry::new(KEYRING_SERVICE, account).map_err(|e| SecretError::Keyring(e.to_string()))?;
    entry.set_password(&secret.0).map_err(|e| SecretError::Keyring(e.to_string()))
}

/// Returns whether there was an entry to delete.
pub fn keyring_delete(account: &str) -> Result<bool, SecretError> {
    let entry = keyring::Entry::new(KEYRING_SERVICE, account).map_err(|e| SecretError::Keyring(e.to_string()))?;
    match entry.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(e) => Err(SecretError::Keyring(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }
}
