//! The window's commands: one, `rpc`, a one-liner over `api::call` (docs/api.md).

use crate::Engine;
use serde_json::Value;
use syncmon_core::api::{self, ApiError};
use tauri::State;

/// A request of docs/api.md in, its result (or `{code, message, field?}`) out.
#[tauri::command]
pub async fn rpc(engine: State<'_, Engine>, request: Value) -> Result<Value, ApiError> {
    api::call(&engine, api::parse_request(request)?).await
}
