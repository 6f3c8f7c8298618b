//! The `rpc` command through Tauri's mock runtime (no display, no D-Bus): it answers exactly what
//! `api::call` answers, and errors cross as `{code, message}`.

use serde_json::{json, Value};
use std::sync::Arc;
use syncmon_core::api;
use syncmon_core::config::Config;
use syncmon_core::Syncmon;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindowBuilder;

const CONFIG: &str = r#"
[[connection]]
id = "erp"
base_url = "http://127.0.0.1:9"
auth = "none"

[[connection.entity]]
name = "items"

[[connection.entity]]
name = "customers"
"#;

fn invoke(webview: &tauri::WebviewWindow<tauri::test::MockRuntime>, body: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: "rpc".into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().expect("url"),
        body: InvokeBody::from(body),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(webview, request).map(|b| b.deserialize::<Value>().expect("a JSON result"))
}

#[test]
fn the_rpc_command_answers_what_api_call_answers_and_errors_carry_their_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::parse(CONFIG).expect("config");
    // A fixed clock: the two answers compared are made a moment apart, and the overview carries
    // times computed from now (a pending entity's next attempt).
    let clock = Arc::new(syncmon_core::TestClock::fixed(1_800_000_000_000));
    let engine = Arc::new(Syncmon::open_with_clock(config, dir.path(), clock).expect("open the engine"));
    let app = mock_builder().manage(engine.clone()).invoke_handler(syncmon_desktop::invoke_handler()).build(mock_context(noop_assets())).expect("mock app");
    let webview = WebviewWindowBuilder::new(&app, "main", Default::default()).build().expect("mock window");

    let got = invoke(&webview, json!({ "request": { "method": "overview", "params": {} } })).expect("overview answers");
    let want = tauri::async_runtime::block_on(api::call(&engine, api::Request::Overview {})).expect("api::call answers");
    assert_eq!(got, want, "the command adds nothing to api::call");
    let names: Vec<&str> = got["entities"].as_array().expect("entities").iter().map(|e| e["entity"].as_str().unwrap_or("")).collect();
    assert_eq!(names, ["items", "customers"], "the configured entities, in config order");

    // A missing `params` reads as `{}`, as on the HTTP side.
    let paused = invoke(&webview, json!({ "request": { "method": "set_paused", "params": { "paused": true } } })).expect("set_paused");
    assert_eq!(paused, json!({ "changed": 2 }));
    let settings = invoke(&webview, json!({ "request": { "method": "settings" } })).expect("settings without params");
    assert_eq!(settings["notifications"], json!(true));

    let err = invoke(&webview, json!({ "request": { "method": "entity_detail", "params": { "entity": "erp/nope" } } })).expect_err("unknown entity");
    assert_eq!(err["code"], json!("not_found"), "errors are {{code, message}}: {err}");
    assert!(err["message"].as_str().is_some_and(|m| m.contains("erp/nope")), "the message names what was asked: {err}");
    let err = invoke(&webview, json!({ "request": { "method": "no_such_method" } })).expect_err("unknown method");
    assert_eq!(err["code"], json!("usage"), "{err}");
}
