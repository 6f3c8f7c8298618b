//! `--metrics ADDR` of `run` and `serve` (or `[metrics] listen` in the config): the agent's
//! Prometheus endpoint, `GET /metrics` (crates/syncmon-serve/src/metrics.rs).
//!
//! The token: `$SYNCMON_METRICS_TOKEN` when set (then required on loopback too), else for an
//! address other machines can reach the OS keyring's account `metrics`
//! (`syncmon creds metrics-token`); such an address without a token is refused.

use crate::UsageError;
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use syncmon_core::secrets;
use syncmon_core::Syncmon;
use syncmon_serve::metrics::MetricsServer;
use tokio_util::sync::CancellationToken;

/// The environment variable that holds the metrics token.
pub const TOKEN_ENV: &str = "SYNCMON_METRICS_TOKEN";
/// The keyring account (service `syncmon`) of the metrics token.
pub const TOKEN_ACCOUNT: &str = "metrics";

#[derive(Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464; port 0 picks a free
    /// one). Overrides `[metrics] listen`. A non-loopback ADDR needs a token ($SYNCMON_METRICS_TOKEN
    /// or `syncmon creds metrics-token`).
    // The id is the flag's name: `serve` has a `--listen` of its own.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
}

/// Where the endpoint listens: `--metrics`, else `[metrics] listen`; None when neither says.
fn address(args: &MetricsArgs, sm: &Syncmon) -> anyhow::Result<Option<SocketAddr>> {
    if let Some(a) = args.metrics {
        return Ok(Some(a));
    }
    let Some(m) = &sm.config().metrics else { return Ok(None) };
    // The config's validation has parsed it already.
    Ok(Some(m.listen.parse().map_err(|_| UsageError(format!("[metrics] listen = \"{}\" is not an address", m.listen)))?))
}

fn token(listen: SocketAddr) -> anyhow::Result<Option<String>> {
    if let Ok(t) = std::env::var(TOKEN_ENV) {
        if t.len() < 16 {
            return Err(UsageError(format!("the token in ${TOKEN_ENV} is shorter than 16 characters; use a long random one")).into());
        }
        return Ok(Some(t));
    }
    if listen.ip().is_loopback() {
        return Ok(None);
    }
    let stored = secrets::keyring_get(TOKEN_ACCOUNT).map_err(|e| {
        let why = match e {
            secrets::SecretError::Keyring(detail) => detail,
            other => other.to_string(),
        };
        UsageError(format!(
            "metrics on {listen} need a token, and the OS keyring that may hold it is not available ({why}); put the token in ${TOKEN_ENV} \
             instead, or listen on 127.0.0.1"
        ))
    })?;
    match stored {
        Some(t) => Ok(Some(t.expose().to_string())),
        None => Err(UsageError(format!(
            "refusing to serve metrics on {listen} without a token: other machines can reach it. Store one with \
             `syncmon creds metrics-token` (keyring account `{TOKEN_ACCOUNT}`) or put it in ${TOKEN_ENV}, e.g.\n  \
             export {TOKEN_ENV}=$(head -c 32 /dev/urandom | base64)\nand give Prometheus the same as its bearer token; \
             or listen on 127.0.0.1"
        ))
        .into()),
    }
}

/// Starts the endpoint when `--metrics` or the config asks for one, and prints its URL.
pub async fn start(args: &MetricsArgs, sm: &Arc<Syncmon>, cancel: CancellationToken) -> anyhow::Result<Option<MetricsServer>> {
    let Some(listen) = address(args, sm)? else { return Ok(None) };
    let token = token(listen)?;
    let with_token = token.is_some();
    let server = MetricsServer::start(sm.clone(), listen, token, cancel)
        .await
        .map_err(|e| UsageError(format!("cannot serve metrics on {listen}: {e}; pass --metrics with a free port")))?;
    let url = crate::serve::url_for(server.addr);
    let auth = if with_token { " (bearer token required)" } else { "" };
    println!("syncmon: Prometheus metrics at {url}metrics{auth}");
    tracing::info!("Prometheus metrics at {url}metrics{auth}");
    Ok(Some(server))
}
