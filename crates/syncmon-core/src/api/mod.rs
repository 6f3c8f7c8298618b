//! The one RPC surface of the front ends (docs/api.md): a `Request` in, a JSON result or an
//! `ApiError` out. Transport-free: the desktop shell maps it onto a Tauri command, `syncmon serve`
//! onto `POST /api/rpc`; neither adds behaviour of its own.
//!
//! Every type that crosses to the UI derives `ts_rs::TS`; `tests/bindings.rs` generates the
//! TypeScript files in `ui/src/lib/generated/` and fails when the committed ones are stale.

//!
//! The modules: this one is the contract (the methods, `ApiError`, the dispatch); `types` the
//! params and results; `views` the read views; `failed` the failed-items actions; `connections`
//! the Connections screen's reads and tests; `config_edit` the config editor behind
//! `save_connection`.

mod config_edit;
mod connections;
mod failed;
mod types;
mod views;

pub use config_edit::save_connection;
pub use connections::{connection_view, test_connection};
pub use types::*;
pub use views::{overview, settings};

use crate::engine::CycleReport;
use crate::events::Event;
use crate::store::{self, RequestRow};
use crate::{Error, Syncmon};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

/// Largest page of failed items a list may ask for.
pub const MAX_PAGE: u32 = 500;

/// One call. JSON: `{ "method": "failed_page", "params": { … } }`.
#[derive(Clone, Serialize, Deserialize, TS)]
#[serde(tag = "method", content = "params", rename_all = "snake_case")]
pub enum Request {
    Overview {},
    SyncNow {
        #[ts(optional = nullable)]
        #[serde(default)]
        entity: Option<String>,
    },
    Resync {
        entity: String,
        #[serde(default)]
        allow_deletions: bool,
    },
    SetPaused {
        #[ts(optional = nullable)]
        #[serde(default)]
        entity: Option<String>,
        paused: bool,
    },
    ResetCheckpoint {
        entity: String,
    },
    EntityDetail {
        entity: String,
    },
    Requests {
        #[ts(optional = nullable)]
        #[serde(default)]
        entity: Option<String>,
        #[serde(default)]
        failed_only: bool,
        #[serde(default = "d_limit")]
        limit: u32,
    },
    FailedPage {
        #[serde(default)]
        filter: FailedFilter,
        #[serde(default)]
        offset: u32,
        #[serde(default = "d_limit")]
        limit: u32,
    },
    FailedItem {
        id: i64,
    },
    FailedReplay {
        #[ts(optional = nullable)]
        #[serde(default)]
        ids: Option<Vec<i64>>,
        #[ts(optional = nullable)]
        #[serde(default)]
        filter: Option<FailedFilter>,
    },
    FailedDiscard {
        #[ts(optional = nullable)]
        #[serde(default)]
        ids: Option<Vec<i64>>,
        #[ts(optional = nullable)]
        #[serde(default)]
        filter: Option<FailedFilter>,
    },
    Connections {},
    SaveConnection {
        // Boxed: the largest params by far, and every request is one of these enums.
        connection: Box<ConnectionView>,
    },
    TestConnection {
        id: String,
    },
    SetSecret {
        connection: String,
        #[serde(default)]
        webhook: bool,
        secret: String,
    },
    Activity {
        #[serde(default = "d_limit")]
        limit: u32,
    },
    Settings {},
    SaveSettings {
        notifications: bool,
        failing_after_seconds: u64,
    },
}

fn d_limit() -> u32 {
    100
}

impl Request {
    /// The method name, for logs (a request may carry a secret, so it has no `Debug`).
    pub fn method(&self) -> &'static str {
        match self {
            Request::Overview {} => "overview",
            Request::SyncNow { .. } => "sync_now",
            Request::Resync { .. } => "resync",
            Request::SetPaused { .. } => "set_paused",
            Request::ResetCheckpoint { .. } => "reset_checkpoint",
            Request::EntityDetail { .. } => "entity_detail",
            Request::Requests { .. } => "requests",
            Request::FailedPage { .. } => "failed_page",
            Request::FailedItem { .. } => "failed_item",
            Request::FailedReplay { .. } => "failed_replay",
            Request::FailedDiscard { .. } => "failed_discard",
            Request::Connections {} => "connections",
            Request::SaveConnection { .. } => "save_connection",
            Request::TestConnection { .. } => "test_connection",
            Request::SetSecret { .. } => "set_secret",
            Request::Activity { .. } => "activity",
            Request::Settings {} => "settings",
            Request::SaveSettings { .. } => "save_settings",
        }
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Request({})", self.method())
    }
}

/// What went wrong, for a front end: a closed set of `code`s, a message that says what to do
/// next, and for form validation the offending `field` (e.g. `base_url`, `entities[0].page_size`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ApiError { code: code.into(), message: message.into(), field: None }
    }
    pub fn field(code: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { code: code.into(), message: message.into(), field: Some(field.into()) }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new("usage", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} ({}): {}", self.code, field, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for ApiError {}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        Error::from(e).into()
    }
}

/// Reads a request from JSON, treating a missing `params` as `{}`, with a message that says what
/// was wrong. A plaintext secret inside `save_connection` is refused with its `field`.
pub fn parse_request(mut v: Value) -> Result<Request, ApiError> {
    let Some(obj) = v.as_object_mut() else {
        return Err(ApiError::usage("the request must be a JSON object {\"method\": …, \"params\": {…}}; see docs/api.md"));
    };
    if !obj.contains_key("params") {
        obj.insert("params".into(), json!({}));
    }
    if obj.get("method").and_then(Value::as_str) == Some("save_connection") {
        if let Some(conn) = obj.get("params").and_then(|p| p.get("connection")).and_then(Value::as_object) {
            if let Some(key) = conn.keys().find(|k| crate::config::SECRET_KEYS.contains(&k.as_str())) {
                return Err(ApiError::field(
                    "config",
                    key.clone(),
                    format!("`{key}` would store a secret in the config file, which Syncmon refuses; store it with set_secret (the OS keyring) instead"),
                ));
            }
        }
    }
    if obj.get("method").and_then(Value::as_str).is_some_and(|m| m.starts_with("failed_")) {
        if let Some(params) = obj.get_mut("params") {
            failed::check_words(params)?;
        }
    }
    serde_json::from_value(v).map_err(|e| ApiError::usage(format!("bad request: {e}; docs/api.md lists the methods and their params")))
}

/// Runs one request against the engine.
pub async fn call(sm: &Arc<Syncmon>, req: Request) -> Result<Value, ApiError> {
    match req {
        Request::Overview {} => to_json(views::overview(sm)?),
        Request::SyncNow { entity } => to_json(SyncNowResult { nudged: sm.nudge_where(entity.as_deref())? }),
        Request::Resync { entity, allow_deletions } => {
            let report: CycleReport = sm.resync(&entity, allow_deletions, &CancellationToken::new()).await?;
            to_json(report)
        }
        Request::SetPaused { entity, paused } => to_json(SetPausedResult { changed: sm.set_paused_where(entity.as_deref(), paused)? }),
        Request::ResetCheckpoint { entity } => {
            sm.reset_checkpoint(&entity).await?;
            Ok(json!({}))
        }
        Request::EntityDetail { entity } => to_json(views::entity_detail(sm, &entity)?),
        Request::Requests { entity, failed_only, limit } => {
            let rows: Vec<RequestRow> = sm.requests(entity.as_deref(), failed_only, limit.min(1000))?;
            to_json(rows)
        }
        Request::FailedPage { filter, offset, limit } => {
            if limit > MAX_PAGE {
                return Err(ApiError::field("usage", "limit", format!("a page holds at most {MAX_PAGE} items; ask for the next page with offset")));
            }
            let f = failed::checked_filter(sm, &filter)?;
            let (total, items) = sm.failed_page(&f, offset, limit)?;
            to_json(FailedPageResult { total, items })
        }
        Request::FailedItem { id } => to_json(sm.failed_item(id)?),
        Request::FailedReplay { ids, filter } => {
            let ids = failed::selection(sm, ids, filter)?;
            to_json(failed::replay(sm, &ids).await?)
        }
        Request::FailedDiscard { ids, filter } => {
            let ids = failed::selection(sm, ids, filter)?;
            to_json(FailedDiscardResult { discarded: sm.discard(&ids)? })
        }
        Request::Connections {} => to_json(connections::list(sm).await?),
        Request::SaveConnection { connection } => to_json(config_edit::save_connection(sm, &connection)?),
        Request::TestConnection { id } => to_json(connections::test_connection(sm, &id).await?),
        Request::SetSecret { connection, webhook, secret } => {
            connections::set_secret(sm, &connection, webhook, secret).await?;
            Ok(json!({}))
        }
        Request::Activity { limit } => {
            let events: Vec<Event> = sm.recent_events(limit as usize);
            to_json(events)
        }
        Request::Settings {} => to_json(views::settings(sm)?),
        Request::SaveSettings { notifications, failing_after_seconds } => to_json(views::save_settings(sm, Settings { notifications, failing_after_seconds })?),
    }
}

fn to_json<T: Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::new("storage", format!("cannot encode the result: {e}")))
}
