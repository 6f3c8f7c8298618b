//! The `[replica]` table's rules: a PostgreSQL URL without a password in it, a reachable kind of
//! host, a lease that can work.

use super::locator::{Locator, Seg};
use super::sections::ReplicaConfig;
use super::ConfigProblem;
use std::time::Duration;

impl ReplicaConfig {
    pub(super) fn check(&self, loc: &Locator) -> Result<(), ConfigProblem> {
        let table = [Seg::Key("replica")];
        let refuse = |key: &str, why: String| Err(loc.problem(&table, key, format!("{} {why}", loc.key(&table, key))));
        let example = "write e.g. \"postgresql://syncmon@127.0.0.1:5432/syncmon\"";
        let Ok(url) = url::Url::parse(&self.url) else {
            return refuse("url", format!("is not a URL; {example}"));
        };
        if !matches!(url.scheme(), "postgresql" | "postgres") {
            return refuse("url", format!("must start with postgresql://; {example}"));
        }
        if url.password().is_some() {
            return refuse(
                "url",
                "holds a password: remove it from the file (it would sit on disk in plain text) and put it in the \
                 environment variable named by password_env, or in the OS keyring with `syncmon creds replica`"
                    .into(),
            );
        }
        if url.username().is_empty() {
            return refuse("url", format!("names no user; {example}"));
        }
        let host = url.host_str().unwrap_or_default();
        if host.is_empty() {
            return refuse("url", format!("names no host; {example}"));
        }
        // The connection is not encrypted yet: only a loopback address keeps the password and
        // the data on this machine (an SSH tunnel or a local pgbouncer reaches another host).
        let loopback = host == "localhost" || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return refuse(
                "url",
                "names another host than this machine: Syncmon does not encrypt PostgreSQL connections yet, so it connects \
                 only to a loopback address; reach a remote server through an SSH tunnel (ssh -L 5433:127.0.0.1:5432 db-host) \
                 and write postgresql://…@127.0.0.1:5433/…"
                    .into(),
            );
        }
        if url.path().trim_start_matches('/').is_empty() {
            return refuse("url", format!("names no database; {example}"));
        }
        if let Some(var) = &self.password_env {
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || var.starts_with(|c: char| c.is_ascii_digit()) {
                return refuse("password_env", "must name an environment variable (letters, digits, _), e.g. \"SYNCMON_REPLICA_PASSWORD\"".into());
            }
        }
        if let Some(agent) = &self.agent {
            if agent.trim().is_empty() || agent.len() > 100 || agent.chars().any(char::is_control) {
                return refuse("agent", "must be a short printable name (at most 100 characters), e.g. \"store-42\"".into());
            }
        }
        loc.check_duration(&table, "lease", self.lease, Duration::from_secs(1), Duration::from_secs(3600))
    }
}
