//! The Connections screen's reads and checks: the connections as the form edits them, a test
//! call, storing a secret in the keyring.

use super::{ApiError, AuthView, ConnectionView, CursorView, EntityView, TestConnectionResult};
use crate::config::{AuthKind, Config, ConnectionConfig, CursorConfig, ProfileKind};
use crate::profile::Profile;
use crate::secrets::{self, Secret, SecretKind};
use crate::{Error, ErrorCode, RowVersion, Syncmon};
use std::time::{Duration, Instant};

/// The config as it is on disk now (so a saved connection shows at once), or the one the engine
/// was opened with when there is no file.
pub(super) fn current_config(sm: &Syncmon) -> Result<Config, ApiError> {
    match sm.config_path() {
        Some(path) if path.exists() => Ok(Config::load(path).map_err(Error::from)?),
        _ => Ok(sm.config().clone()),
    }
}

fn has_secret(c: &ConnectionConfig, kind: SecretKind) -> bool {
    let env = match kind {
        SecretKind::Connection => &c.secret_env,
        SecretKind::Webhook => &c.webhook_secret_env,
    };
    match env {
        Some(var) => std::env::var(var).is_ok_and(|v| !v.is_empty()),
        // An unreachable keyring reads as "no secret": the Connections screen offers to set one.
        None => secrets::keyring_get(&secrets::keyring_account(&c.id, kind)).ok().flatten().is_some(),
    }
}

pub(super) fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn cursor_view(profile: ProfileKind, cur: &CursorConfig) -> CursorView {
    // A snapshot has no version: the defaulted `version_field` is not something the user wrote.
    let versioned = profile != ProfileKind::Snapshot;
    CursorView {
        id_field: cur.id_field.clone(),
        version_field: versioned.then(|| cur.version_field.clone()),
        records_pointer: cur.records_pointer.clone(),
        filter_param: Some(cur.filter_param.clone()).filter(|f| versioned && !f.is_empty()),
        extra_query: cur.extra_query.clone(),
        page_size_param: cur.page_size_param.clone(),
        next_token_pointer: cur.next_token_pointer.clone(),
        next_token_param: cur.next_token_param.clone(),
        next_url_pointer: cur.next_url_pointer.clone(),
        next: cur.next.map(|n| n.as_str().to_string()),
        // The format in effect (the default when the file names none), so the form shows it.
        timestamp_format: (profile == ProfileKind::Timestamp).then(|| cur.timestamp_format.unwrap_or_default().as_str().to_string()),
    }
}

/// `auth` as the config file writes it.
fn auth_word(a: AuthKind) -> &'static str {
    match a {
        AuthKind::None => "none",
        AuthKind::ApiKey => "api_key",
        AuthKind::Bearer => "bearer",
        AuthKind::Oauth2 => "oauth2",
    }
}

/// A connection's or a target's auth keys as the form shows them (`token_url`, `client_id`,
/// `scope`, `secret_env` in that order); `has_secret` asks the keyring (blocking) unless auth is none.
pub(super) fn auth_view(
    auth: AuthKind,
    api_key_header: &str,
    [token_url, client_id, scope, secret_env]: [&Option<String>; 4],
    has_secret: impl FnOnce() -> bool,
) -> AuthView {
    AuthView {
        auth: auth_word(auth).into(),
        api_key_header: Some(api_key_header.to_string()),
        token_url: token_url.clone(),
        client_id: client_id.clone(),
        scope: scope.clone(),
        secret_env: secret_env.clone(),
        has_secret: auth != AuthKind::None && has_secret(),
    }
}

/// The config as the screen shows it; looks up the keyring (blocking).
pub fn connection_view(c: &ConnectionConfig) -> ConnectionView {
    ConnectionView {
        id: c.id.clone(),
        base_url: c.base_url.clone(),
        profile: match c.profile {
            ProfileKind::Rowversion => "rowversion",
            ProfileKind::Cursor => "cursor",
            ProfileKind::Snapshot => "snapshot",
            ProfileKind::Timestamp => "timestamp",
        }
        .into(),
        credentials: auth_view(c.auth, &c.api_key_header, [&c.token_url, &c.client_id, &c.scope, &c.secret_env], || has_secret(c, SecretKind::Connection)),
        webhook_secret_env: c.webhook_secret_env.clone(),
        api_version: c.api_version.clone(),
        max_concurrency: c.max_concurrency,
        requests_per_second: c.requests_per_second,
        timeout: fmt_duration(c.timeout),
        overlap: (c.profile == ProfileKind::Timestamp).then(|| fmt_duration(c.overlap)),
        // A snapshot may leave out `[connection.cursor]`; the form still shows the defaults it
        // runs with (`id`, the body is the array, one page), so that they can be edited.
        cursor: match (&c.cursor, c.profile) {
            (None, ProfileKind::Snapshot) => Some(cursor_view(c.profile, &crate::profile::snapshot_cursor(None))),
            (cur, _) => cur.as_ref().map(|cur| cursor_view(c.profile, cur)),
        },
        entities: c
            .entities
            .iter()
            .map(|e| EntityView {
                name: e.name.clone(),
                path: e.path.clone(),
                poll_every: e.poll_every.map_or_else(|| "never".to_string(), fmt_duration),
                page_size: e.page_size,
                full_resync_every: e.full_resync_every.map(fmt_duration),
                required_fields: e.required_fields.clone(),
                deletion_guard: e.deletion_guard,
                schema: e.schema.clone(),
            })
            .collect(),
        has_webhook_secret: has_secret(c, SecretKind::Webhook),
    }
}

/// One GET of the first entity's first page (page size 1), with the connection's own auth, TLS
/// and headers: what the engine would see, without retries.
pub async fn test_connection(sm: &Syncmon, id: &str) -> Result<TestConnectionResult, ApiError> {
    let config = current_config(sm)?;
    let c =
        config.connection(id).ok_or_else(|| ApiError::field(ErrorCode::NotFound, "id", format!("no connection `{id}` in the config; save it first")))?.clone();
    let (url, entity) = match c.entities.first() {
        Some(e) => {
            let mut one = e.clone();
            one.page_size = 1;
            let profile = Profile::new(&c, &one).map_err(|m| ApiError::new(ErrorCode::Config, m))?;
            (profile.first_url(&RowVersion::zero()), Some(e.name.clone()))
        }
        None => (url::Url::parse(&c.base_url).map_err(|e| ApiError::field(ErrorCode::Config, "base_url", format!("base_url is not a URL: {e}")))?, None),
    };
    let client = sm.source_client(c);
    let started = Instant::now();
    let result = client.get_once(&url, entity.as_deref(), 1).await;
    Ok(test_result("source", result, started.elapsed().as_millis() as u64))
}

/// What a test call answered, for the screen: the status, the time, the Trackingid, and on a
/// failure what to check (`side` is "source" or "target").
pub(super) fn test_result(side: &str, result: Result<crate::source::Fetched, crate::source::Failure>, latency_ms: u64) -> TestConnectionResult {
    match result {
        Ok(f) => TestConnectionResult {
            ok: true,
            http_status: Some(f.status),
            latency_ms,
            message: format!("the {side} answered {} in {latency_ms} ms", f.status),
            tracking_id: f.tracking_id,
        },
        Err(f) => {
            let hint = match (f.class, f.http_status, side) {
                (crate::source::FailureClass::Auth, _, _) => "check the credentials (Set secret) and the auth settings".to_string(),
                (_, None, _) => format!("check base_url and that the {side} is reachable from this machine"),
                (_, _, "target") => "check base_url, the test path and the credentials' permissions".to_string(),
                _ => "check base_url, the entity's path and the credentials' permissions".to_string(),
            };
            TestConnectionResult { ok: false, http_status: f.http_status, latency_ms, message: format!("{}; {hint}", f.message), tracking_id: f.tracking_id }
        }
    }
}

pub(super) async fn set_secret(sm: &Syncmon, connection: &str, webhook: bool, secret: String) -> Result<(), ApiError> {
    let config = current_config(sm)?;
    // A target's credential is the keyring entry of its id (a connection's system shares it).
    if config.connection(connection).is_none() && config.target(connection).is_none() {
        return Err(ApiError::field(ErrorCode::NotFound, "connection", format!("no connection or target `{connection}` in the config; save it first")));
    }
    if webhook && config.connection(connection).is_none() {
        return Err(ApiError::field(ErrorCode::Usage, "webhook", format!("`{connection}` is a target, which has no webhook secret")));
    }
    if secret.trim().is_empty() {
        return Err(ApiError::field(ErrorCode::Usage, "secret", "the secret is empty; nothing was stored"));
    }
    let kind = if webhook { SecretKind::Webhook } else { SecretKind::Connection };
    let account = secrets::keyring_account(connection, kind);
    let secret = Secret::new(secret);
    tokio::task::spawn_blocking(move || secrets::keyring_set(&account, &secret))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Credentials, format!("the keyring call failed: {e}")))?
        .map_err(|e| ApiError::from(Error::from(e)))
}

/// Every connection of the config on disk, as the form edits it (the keyring is asked off the
/// async threads).
pub(super) async fn list(sm: &Syncmon) -> Result<Vec<ConnectionView>, ApiError> {
    let config = current_config(sm)?;
    tokio::task::spawn_blocking(move || config.connections.iter().map(connection_view).collect::<Vec<_>>())
        .await
        .map_err(|e| ApiError::new(ErrorCode::Io, format!("looking up the keyring failed: {e}")))
}
