//! The one RPC surface of the front ends (docs/api.md): a `Request` in, a JSON result or an
//! `ApiError` out. Transport-free: the desktop shell maps it onto a Tauri command, `syncmon serve`
//! onto `POST /api/rpc`; neither adds behaviour of its own.
//!
//! Every type that crosses to the UI derives `ts_rs::TS`; `tests/bindings.rs` generates the
//! TypeScript files in `ui/src/lib/generated/` and fails when the committed ones are stale.

//!
//! The modules: this one is the contract (the table of methods, from which the dispatch is
//! generated, and `ApiError`); `methods` one handler per method; `types` the params and results; `views` the read views; `failed` the failed-items actions; `connections`
//! the Connections screen's reads and tests; `targets` its targets (reads and the test call);
//! `config_edit` the config editor behind `save_connection` and `save_target`.

mod config_edit;
mod connections;
mod failed;
mod methods;
mod targets;
mod types;
mod views;

pub use config_edit::{save_connection, save_target};
pub use connections::{connection_view, test_connection};
pub use targets::{target_view, test_target};
pub use types::*;
pub use views::{activity_query, overview, settings};

/// The failed-items filter of a download (`GET /api/failed/export`) as the RPC methods check it:
/// the entity resolved against the config, empty strings as no condition.
pub fn failed_export_filter(sm: &crate::Syncmon, f: &FailedFilter) -> Result<FailedFilter, ApiError> {
    failed::checked_filter(sm, f)
}

use crate::engine::CycleReport;
use crate::store::{self, Found, RequestRow};
use crate::{Error, ErrorCode, ReplayReport, Syncmon};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use ts_rs::TS;

/// Largest page of failed items a list may ask for.
pub const MAX_PAGE: u32 = 500;

/// The table of methods, the one list of them: each method's name, its params (the fields of its
/// `Request` variant) and its result type. From it come [`Request`], [`Request::method`], the
/// dispatch in [`call`] (the handler of each method is the function of the same name in
/// `methods.rs`, and it must return the method's result type) and [`for_each_method`], from which
/// `tests/bindings.rs` writes the UI's `Results` map (`ui/src/lib/generated/rpc.ts`). The name is
/// the variant in snake_case, serde's tag on the wire (`the_table_names_are_the_wire_names`).
macro_rules! rpc_methods {
    ($(
        $method:ident: $variant:ident { $( $(#[$field_attr:meta])* $field:ident: $field_ty:ty, )* } -> $result:ty;
    )*) => {
        /// One call. JSON: `{ "method": "failed_page", "params": { … } }`.
        #[derive(Clone, Serialize, Deserialize, TS)]
        #[serde(tag = "method", content = "params", rename_all = "snake_case")]
        pub enum Request {
            $( $variant { $( $(#[$field_attr])* $field: $field_ty, )* }, )*
        }

        impl Request {
            /// The method name, for logs (a request may carry a secret, so it has no `Debug`).
            pub fn method(&self) -> &'static str {
                match self {
                    $( Request::$variant { .. } => stringify!($method), )*
                }
            }
        }

        /// Runs one request against the engine.
        pub async fn call(sm: &Arc<Syncmon>, req: Request) -> Result<Value, ApiError> {
            match req {
                $( Request::$variant { $( $field, )* } => {
                    let result: Result<$result, ApiError> = methods::$method(sm, $( $field, )*).await;
                    to_json(result?)
                } )*
            }
        }

        /// Every method's name, in the table's order.
        pub const METHODS: &[&str] = &[$( stringify!($method), )*];

        /// Calls `visitor` with each method's name and result type, in the table's order.
        pub fn for_each_method(visitor: &mut impl MethodVisitor) {
            $( visitor.method::<$result>(stringify!($method)); )*
        }
    };
}

/// What [`for_each_method`] calls: once per method, with its result type.
pub trait MethodVisitor {
    fn method<R: TS + 'static>(&mut self, name: &'static str);
}

rpc_methods! {
    overview: Overview {} -> OverviewResult;
    sync_now: SyncNow {
        #[ts(optional = nullable)]
        #[serde(default)]
        entity: Option<String>,
    } -> SyncNowResult;
    resync: Resync {
        entity: String,
        #[serde(default)]
        allow_deletions: bool,
    } -> CycleReport;
    resync_preview: ResyncPreview {
        entity: String,
    } -> crate::ResyncPreview;
    set_paused: SetPaused {
        #[ts(optional = nullable)]
        #[serde(default)]
        entity: Option<String>,
        paused: bool,
    } -> SetPausedResult;
    reset_checkpoint: ResetCheckpoint {
        entity: String,
    } -> Empty;
    entity_detail: EntityDetail {
        entity: String,
    } -> EntityDetailResult;
    requests: Requests {
        #[ts(optional = nullable)]
        #[serde(default)]
        entity: Option<String>,
        #[serde(default)]
        failed_only: bool,
        /// Only the calls whose answer carried this `Trackingid`.
        #[ts(optional = nullable)]
        #[serde(default)]
        tracking_id: Option<String>,
        #[serde(default = "d_limit")]
        limit: u32,
    } -> Vec<RequestRow>;
    find: Find {
        query: String,
    } -> Found;
    verify: Verify {
        entity: String,
    } -> crate::engine::VerifyResult;
    diagnostics: Diagnostics {
        #[serde(default)]
        include_payloads: bool,
    } -> crate::SavedDiagnostics;
    failed_page: FailedPage {
        #[serde(default)]
        filter: FailedFilter,
        #[serde(default)]
        offset: u32,
        #[serde(default = "d_limit")]
        limit: u32,
    } -> FailedPageResult;
    failed_item: FailedItem {
        id: i64,
    } -> store::FailedItem;
    ingest_batch: IngestBatch {
        id: String,
    } -> store::IngestBatch;
    failed_replay: FailedReplay {
        #[serde(flatten)]
        selection: FailedSelection,
    } -> ReplayReport;
    failed_discard: FailedDiscard {
        #[serde(flatten)]
        selection: FailedSelection,
    } -> FailedDiscardResult;
    failed_resolve: FailedResolve {
        id: i64,
        /// The connection whose version is kept.
        keep: String,
    } -> crate::forward::ForwardReport;
    targets: Targets {} -> Vec<crate::TargetStatus>;
    connections: Connections {} -> Vec<ConnectionView>;
    save_connection: SaveConnection {
        // Boxed: the largest params by far, and every request is one of these enums.
        connection: Box<ConnectionView>,
    } -> SaveConnectionResult;
    test_connection: TestConnection {
        id: String,
    } -> TestConnectionResult;
    targets_config: TargetsConfig {} -> Vec<TargetView>;
    save_target: SaveTarget {
        target: Box<TargetView>,
    } -> SaveConnectionResult;
    test_target: TestTarget {
        id: String,
        /// Under the target's base_url; default: the first forwarding entity's forward_path.
        #[ts(optional = nullable)]
        #[serde(default)]
        path: Option<String>,
    } -> TestConnectionResult;
    set_secret: SetSecret {
        /// A connection's id, or a target's (its keyring entry).
        connection: String,
        #[serde(default)]
        webhook: bool,
        secret: String,
    } -> Empty;
    activity: Activity {
        /// `CONNECTION/ENTITY` (its connection's own events too), `CONNECTION` or a bare entity name.
        #[ts(optional = nullable)]
        #[serde(default)]
        entity: Option<String>,
        /// An event type word (`page_applied`, …).
        #[ts(optional = nullable)]
        #[serde(default)]
        kind: Option<String>,
        /// A case-insensitive substring of the event (a Trackingid, a record id, an error).
        #[ts(optional = nullable)]
        #[serde(default)]
        text: Option<String>,
        /// From and up to these times (ms since 1970, inclusive).
        #[ts(optional = nullable)]
        #[serde(default)]
        since: Option<i64>,
        #[ts(optional = nullable)]
        #[serde(default)]
        until: Option<i64>,
        /// Only events numbered below this one (the oldest shown): "Load older".
        #[ts(optional = nullable)]
        #[serde(default)]
        before_seq: Option<i64>,
        #[serde(default = "d_limit")]
        limit: u32,
    } -> ActivityResult;
    settings: Settings {} -> Settings;
    save_settings: SaveSettings {
        notifications: bool,
        failing_after_seconds: u64,
    } -> Settings;
}

fn d_limit() -> u32 {
    100
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
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), field: None }
    }
    pub fn field(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), field: Some(field.into()) }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Usage, message)
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
        ApiError::new(e.error_code(), e.to_string())
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        Error::from(e).into()
    }
}

/// Reads a request from JSON, treating a missing `params` as `{}`, with a message that says what
/// was wrong. A plaintext secret inside `save_connection` or `save_target` is refused with its `field`.
pub fn parse_request(mut v: Value) -> Result<Request, ApiError> {
    let Some(obj) = v.as_object_mut() else {
        return Err(ApiError::usage("the request must be a JSON object {\"method\": …, \"params\": {…}}; see docs/api.md"));
    };
    if !obj.contains_key("params") {
        obj.insert("params".into(), json!({}));
    }
    let form = match obj.get("method").and_then(Value::as_str) {
        Some("save_connection") => Some("connection"),
        Some("save_target") => Some("target"),
        _ => None,
    };
    if let Some(form) = form {
        if let Some(conn) = obj.get("params").and_then(|p| p.get(form)).and_then(Value::as_object) {
            if let Some(key) = conn.keys().find(|k| crate::config::SECRET_KEYS.contains(&k.as_str())) {
                return Err(ApiError::field(
                    ErrorCode::Config,
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

fn to_json<T: Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::new(ErrorCode::Storage, format!("cannot encode the result: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's names (`Request::method`, `METHODS`, the UI's `Results`) and serde's method
    /// tags (`rename_all`) are the same words in the same order.
    #[test]
    fn the_table_names_are_the_wire_names() {
        let e = serde_json::from_value::<Request>(json!({"method": "?", "params": {}})).expect_err("no method `?`").to_string();
        let expected = e.split("expected one of").nth(1).unwrap_or_else(|| panic!("serde names the methods: {e}"));
        let wire: Vec<String> = expected.split('`').skip(1).step_by(2).map(str::to_string).collect();
        assert_eq!(wire, METHODS);
        let sync_now = parse_request(json!({"method": "sync_now"})).unwrap();
        assert_eq!(sync_now.method(), "sync_now");
    }
}
