//! Connecting to the PostgreSQL replica of `[replica]`: the URL, the password from outside the
//! file, and errors that say what to check (never the password).

use super::db::{DbError, PgConn};
use crate::config::ReplicaConfig;
use crate::secrets::Secret;
use std::time::Duration;

/// How long a connection attempt may take before it is reported.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The URL as it may be shown: without query (options) or password.
pub fn shown_url(replica: &ReplicaConfig) -> String {
    match url::Url::parse(&replica.url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "[replica] url".to_string(),
    }
}

/// One connection to the replica's database.
pub fn connect(replica: &ReplicaConfig, password: Option<&Secret>) -> Result<PgConn, String> {
    let mut config: postgres::Config = replica.url.parse().map_err(|e| format!("[replica] url is not a PostgreSQL URL: {e}"))?;
    if let Some(p) = password {
        config.password(p.expose());
    }
    config.application_name("syncmon");
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    PgConn::connect(&config).map_err(|e| explain(replica, &e))
}

/// PostgreSQL's refusal, with what to do about it.
fn explain(replica: &ReplicaConfig, e: &DbError) -> String {
    let url = shown_url(replica);
    let text = e.to_string();
    let hint = if text.contains("password authentication failed") || text.contains("no password") || text.contains("password missing") {
        match &replica.password_env {
            Some(var) => format!("check the password in the environment variable {var} (named by [replica] password_env)"),
            None => "give the password in an environment variable named by [replica] password_env, or store it with `syncmon creds replica`".into(),
        }
    } else if text.contains("does not exist") && text.contains("database") {
        "create the database (e.g. `createdb -O <user> <database>`) or fix the database name in [replica] url".into()
    } else if text.contains("Connection refused") || text.contains("connection refused") {
        "check that PostgreSQL runs and listens on that host and port ([replica] url)".into()
    } else if text.contains("timed out") || text.contains("timeout") {
        format!("no answer within {} s: check the host and port in [replica] url, and the network between", CONNECT_TIMEOUT.as_secs())
    } else if text.contains("no pg_hba.conf entry") {
        "the server does not let this user in from here: add a line for it in the server's pg_hba.conf".into()
    } else {
        "check [replica] url and the server's log".into()
    };
    format!("cannot connect to the PostgreSQL replica {url}: {text}; {hint}")
}
