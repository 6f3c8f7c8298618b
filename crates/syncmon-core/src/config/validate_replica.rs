//! The `[replica]` table's rules: a PostgreSQL URL without a password in it, TLS to any host but
//! this machine (the rule is `store::pg_connect::pg_config`'s), a readable `ca_file`, a lease
//! that can work.

use super::locator::{Locator, Seg};
use super::sections::ReplicaConfig;
use super::ConfigProblem;
use std::path::Path;
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
        if url.path().trim_start_matches('/').is_empty() {
            return refuse("url", format!("names no database; {example}"));
        }
        // sslmode and the hosts (with `host`/`hostaddr` in the query) decide TLS, as when connecting.
        if let Err(why) = crate::store::pg_connect::pg_config(&self.url, self.ca_file.is_some()) {
            return refuse("url", why);
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

    /// Reads `ca_file` (relative to `dir`, the config file's directory): a missing or unreadable
    /// file, or one without a usable CA certificate, is refused naming the key and its line.
    pub(super) fn load_ca_file(&mut self, dir: &Path, loc: &Locator) -> Result<(), ConfigProblem> {
        let Some(file) = self.ca_file.as_deref() else { return Ok(()) };
        let table = [Seg::Key("replica")];
        let what = loc.key(&table, "ca_file");
        if file.trim().is_empty() {
            return Err(loc.problem(
                &table,
                "ca_file",
                format!("{what} is empty; name the PEM file of the CA that signed the server's certificate, e.g. \"certs/db-ca.pem\""),
            ));
        }
        self.ca = crate::store::pg_connect::read_ca_file(&dir.join(file)).map_err(|why| loc.problem(&table, "ca_file", format!("{what}: {why}")))?;
        Ok(())
    }
}
