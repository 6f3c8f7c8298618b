//! The Connections screen's targets: the `[[target]]` sections as the form edits them, and a test
//! call with the target's own auth.

use super::connections::{auth_view, current_config, fmt_duration, test_result};
use super::{ApiError, TargetView, TestConnectionResult};
use crate::config::{Config, TargetConfig};
use crate::secrets;
use crate::{ErrorCode, Syncmon};
use std::time::Instant;

fn has_secret(t: &TargetConfig) -> bool {
    match &t.secret_env {
        Some(var) => std::env::var(var).is_ok_and(|v| !v.is_empty()),
        // The keyring account is the target's id (a connection's system shares that entry).
        None => secrets::keyring_get(&t.id).ok().flatten().is_some(),
    }
}

/// The path Test connection GETs when the screen gives none: where the first entity forwarding
/// to the target writes, else the base URL itself.
fn default_test_path(config: &Config, id: &str) -> String {
    config.connections.iter().flat_map(|c| &c.entities).find(|e| e.forward_to.as_deref() == Some(id)).map(|e| e.forward_path()).unwrap_or_default()
}

/// The target as the screen shows it; looks up the keyring (blocking).
pub fn target_view(config: &Config, t: &TargetConfig) -> TargetView {
    TargetView {
        id: t.id.clone(),
        base_url: t.base_url.clone(),
        credentials: auth_view(t.auth, &t.api_key_header, [&t.token_url, &t.client_id, &t.scope, &t.secret_env], || has_secret(t)),
        max_concurrency: t.max_concurrency,
        requests_per_second: t.requests_per_second,
        timeout: fmt_duration(t.timeout),
        max_retries: t.max_retries,
        idempotency_header: Some(t.idempotency_header.clone()),
        ignore_fields: t.ignore_fields.clone(),
        is_connection: config.connection(&t.id).is_some(),
        entities: config
            .connections
            .iter()
            .flat_map(|c| c.entities.iter().filter(|e| e.forward_to.as_deref() == Some(t.id.as_str())).map(move |e| format!("{}/{}", c.id, e.name)))
            .collect(),
        test_path: default_test_path(config, &t.id),
    }
}

/// Every target of the config on disk (the keyring is asked off the async threads).
pub(super) async fn list(sm: &Syncmon) -> Result<Vec<TargetView>, ApiError> {
    let config = current_config(sm)?;
    tokio::task::spawn_blocking(move || config.targets.iter().map(|t| target_view(&config, t)).collect::<Vec<_>>())
        .await
        .map_err(|e| ApiError::new(ErrorCode::Io, format!("looking up the keyring failed: {e}")))
}

/// One authenticated GET of `base_url` + `path` (default: the first forwarding entity's path),
/// with the target's own auth, limits and TLS, without retries; logged like every target call.
pub async fn test_target(sm: &Syncmon, id: &str, path: Option<&str>) -> Result<TestConnectionResult, ApiError> {
    let config = current_config(sm)?;
    let t = config.target(id).ok_or_else(|| ApiError::field(ErrorCode::NotFound, "id", format!("no target `{id}` in the config; save it first")))?.clone();
    let path = match path.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => p.to_string(),
        None => default_test_path(&config, id),
    };
    if path.contains("://") {
        return Err(ApiError::field(
            ErrorCode::Usage,
            "path",
            "give a path under the target's base_url (e.g. /items), not a URL: the credentials go only there",
        ));
    }
    let text = format!("{}{}{}", t.base_url.trim_end_matches('/'), if path.is_empty() || path.starts_with('/') { "" } else { "/" }, path);
    let url = url::Url::parse(&text).map_err(|e| ApiError::field(ErrorCode::Config, "path", format!("base_url and path make no URL: {e}")))?;
    // The credentials go only to the configured origin, whatever the path says.
    if url::Url::parse(&t.base_url).map(|b| b.origin()).ok() != Some(url.origin()) {
        return Err(ApiError::field(ErrorCode::Usage, "path", "the test path must stay under the target's base_url"));
    }
    let client = sm.target_client(&t);
    let started = Instant::now();
    let result = client.get_once(&url, None, 1).await;
    Ok(test_result("target", result, started.elapsed().as_millis() as u64))
}
