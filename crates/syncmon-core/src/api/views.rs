//! Read views: the overview, one entity's detail, the UI settings.

use super::{ApiError, EntityDetailResult, OverviewHeader, OverviewResult, Settings, ThroughputPoint};
use crate::facade::METRICS_WINDOW_MS;
use crate::store;
use crate::{ErrorCode, Health, Syncmon, Verdict};

const HOUR_MS: i64 = 3_600_000;
const SETTINGS_KEY: &str = "ui";

/// The stored settings, or the defaults.
pub fn settings(sm: &Syncmon) -> Result<Settings, ApiError> {
    Ok(sm.setting(SETTINGS_KEY)?.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
}

pub fn overview(sm: &Syncmon) -> Result<OverviewResult, ApiError> {
    let now = sm.now_ms();
    let entities = sm.status()?;
    let stats = sm.request_stats(now - METRICS_WINDOW_MS)?;
    let mut hourly = sm.hourly_changes(now, 24)?;
    let sparklines = entities
        .iter()
        .map(|e| {
            let key = store::EntityKey::new(&e.connection, &e.entity);
            (key.to_string(), hourly.remove(&key).unwrap_or_else(|| vec![0; 24]))
        })
        .collect();
    let health = entities.iter().map(|e| e.health).max_by_key(|h| h.severity()).unwrap_or(Health::Healthy);
    let header = OverviewHeader {
        health,
        error_rate_5m: stats.error_rate,
        p95_ms_5m: stats.p95_ms,
        pending_failed: entities.iter().map(|e| e.pending_failed).sum(),
        requests_5m: stats.requests,
    };
    let verdict = Verdict::of(&entities, Some(&stats));
    Ok(OverviewResult { entities, header, verdict, sparklines, warnings: sm.config_warnings().to_vec() })
}

pub(super) fn entity_detail(sm: &Syncmon, name: &str) -> Result<EntityDetailResult, ApiError> {
    let key = sm.entity_key(name)?;
    let now = sm.now_ms();
    let status = sm
        .status()?
        .into_iter()
        .find(|s| s.connection == key.connection && s.entity == key.entity)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no status for {key}")))?;
    let runs = sm.runs_of(&key, 50)?;
    let checkpoints = sm.checkpoint_history(&key, now - 7 * 24 * HOUR_MS)?;
    let start = now - 24 * HOUR_MS;
    let counts = sm.hourly_changes(now, 24)?.remove(&key).unwrap_or_else(|| vec![0; 24]);
    let throughput = counts.into_iter().enumerate().map(|(i, records)| ThroughputPoint { at: start + i as i64 * HOUR_MS, records }).collect();
    let last_verify = sm.last_verify_of(&key)?;
    let lag = sm.lag_history(&key)?;
    Ok(EntityDetailResult { status, runs, checkpoints, throughput, lag, last_verify })
}

/// The Activity search as the user typed it (the `activity` method's params, `syncmon activity`'s
/// options) made into the store's conditions: `entity` as typed (`CONNECTION/ENTITY`, a
/// connection, or an entity name the config knows) split into connection and entity, empty words
/// as none, the limit capped.
pub fn activity_query(sm: &Syncmon, typed: store::EventQuery) -> store::EventQuery {
    let word = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let (connection, entity) = match word(typed.entity) {
        None => (None, None),
        Some(name) => match name.split_once('/') {
            Some((c, e)) => (Some(c.to_string()), Some(e.to_string())),
            // A connection, else an entity of the config, else a connection no longer configured.
            None if sm.config().connection(&name).is_some() => (Some(name), None),
            None => match sm.entity_key(&name) {
                Ok(k) => (Some(k.connection), Some(k.entity)),
                Err(_) => (Some(name), None),
            },
        },
    };
    store::EventQuery {
        connection,
        entity,
        kind: word(typed.kind).map(|k| k.replace(['-', ' '], "_")),
        text: word(typed.text),
        limit: typed.limit.min(store::MAX_EVENTS_PAGE),
        ..typed
    }
}

/// Stores the UI settings and returns them.
pub(super) fn save_settings(sm: &Syncmon, s: Settings) -> Result<Settings, ApiError> {
    let text = serde_json::to_string(&s).map_err(|e| ApiError::new(ErrorCode::Storage, e.to_string()))?;
    sm.set_setting(SETTINGS_KEY, &text)?;
    Ok(s)
}
