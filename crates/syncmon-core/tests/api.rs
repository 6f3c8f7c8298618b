//! The front-end RPC surface (`api::call`) against the simulated source: what the UI's screens
//! ask for, and the errors they show.

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::Arc;
use syncmon_core::api::{self, parse_request, ApiError};
use syncmon_core::config::{Config, ProfileKind};
use syncmon_core::{ErrorCode, Syncmon};
use syncmon_mock::{Fault, FaultKind, FeedSpec, MockConfig, MockServer};

async fn rpc(sm: &Arc<Syncmon>, req: Value) -> Result<Value, ApiError> {
    api::call(sm, parse_request(req)?).await
}

async fn ok(sm: &Arc<Syncmon>, req: Value) -> Value {
    rpc(sm, req.clone()).await.unwrap_or_else(|e| panic!("{req}: {e}"))
}

/// `save_connection` with `connection` after `edits` (a `/`-separated path, the new value): the
/// refusal it must get.
async fn refused(sm: &Arc<Syncmon>, connection: &Value, edits: &[(&str, Value)]) -> ApiError {
    let mut edited = connection.clone();
    for (path, value) in edits {
        let mut slot = &mut edited;
        for key in path.split('/') {
            slot = match key.parse::<usize>() {
                Ok(i) => &mut slot[i],
                Err(_) => &mut slot[key],
            };
        }
        *slot = value.clone();
    }
    match rpc(sm, json!({"method": "save_connection", "params": {"connection": edited}})).await {
        Ok(saved) => panic!("saved, not refused: {edits:?} → {saved}"),
        Err(e) => e,
    }
}

async fn two_entities() -> Harness {
    Harness::start(MockConfig { entities: entities(&[("items", 250), ("customers", 50)]), ..Default::default() }, "", "").await
}

#[tokio::test]
async fn overview_lists_entities_with_the_header_and_24_hourly_counts() {
    let h = two_entities().await;
    h.sync_ok("items").await;
    let o = ok(&h.sm, json!({"method": "overview"})).await;
    assert_eq!(o["entities"].as_array().unwrap().len(), 2);
    let header = &o["header"];
    assert_eq!(header["requests_5m"], 3, "three pages of items: {header}");
    assert_eq!(header["error_rate_5m"], 0.0);
    assert!(header["p95_ms_5m"].as_i64().is_some());
    assert_eq!(header["health"], "pending", "customers never synced: {header}");
    // The verdict: one entity still syncing for the first time is blue, not a problem.
    let v = &o["verdict"];
    assert_eq!((v["tone"].as_str(), v["title"].as_str()), (Some("info"), Some("Syncing…")), "{v}");
    assert_eq!(v["detail"], "1 syncing for the first time or resyncing");
    assert_eq!(v["entities"], json!({"src/items": "ok", "src/customers": "info"}));
    assert_eq!(v["cards"], json!({"error_rate": "ok", "p95": "ok", "failed": "ok"}));
    assert_eq!(v["overall"], json!({"label": "Not synced yet", "tone": "info"}));
    let spark = o["sparklines"]["src/items"].as_array().unwrap();
    assert_eq!(spark.len(), 24);
    assert_eq!(spark.iter().map(|v| v.as_i64().unwrap()).sum::<i64>(), 250);
    assert_eq!(spark[23], 250, "this hour is the last bucket");
    assert_eq!(o["sparklines"]["src/customers"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).sum::<i64>(), 0);

    let d = ok(&h.sm, json!({"method": "entity_detail", "params": {"entity": "src/items"}})).await;
    assert_eq!(d["status"]["replica_rows"], 250);
    assert_eq!(d["runs"].as_array().unwrap().len(), 1);
    assert_eq!(d["checkpoints"].as_array().unwrap().len(), 1);
    assert_eq!(d["throughput"].as_array().unwrap().len(), 24);

    let paused = ok(&h.sm, json!({"method": "set_paused", "params": {"paused": true}})).await;
    assert_eq!(paused["changed"], 2);
    assert_eq!(ok(&h.sm, json!({"method": "set_paused", "params": {"paused": true}})).await["changed"], 0);
    let o = ok(&h.sm, json!({"method": "overview", "params": {}})).await;
    assert_eq!(o["header"]["health"], "paused");
    assert_eq!((o["verdict"]["tone"].as_str(), o["verdict"]["title"].as_str()), (Some("info"), Some("Everything is in sync")), "paused is deliberate");

    assert_eq!(ok(&h.sm, json!({"method": "reset_checkpoint", "params": {"entity": "src/items"}})).await, json!({}), "it answers `{{}}`");
    assert_eq!(h.checkpoint("items"), "0");
    assert_eq!(h.replica("items").len(), 250, "the replica is kept");

    let e = rpc(&h.sm, json!({"method": "entity_detail", "params": {"entity": "nope"}})).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
    let e = rpc(&h.sm, json!({"method": "no_such_method"})).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Usage);
    assert!(e.message.contains("docs/api.md"), "{e}");
}

#[tokio::test]
async fn failed_items_page_with_totals_search_replay_and_discard_by_filter() {
    let h = two_entities().await;
    h.mock.inject(Fault { kind: FaultKind::MissingRowVersion { records: 40 }, entity: Some("items".into()), times: 1 });
    h.sync_ok("items").await;
    let filter = json!({"entity": "src/items"});
    let page = ok(&h.sm, json!({"method": "failed_page", "params": {"filter": filter, "offset": 0, "limit": 10}})).await;
    assert_eq!(page["total"], 40);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    let tail = ok(&h.sm, json!({"method": "failed_page", "params": {"filter": filter, "offset": 35, "limit": 10}})).await;
    assert_eq!(tail["items"].as_array().unwrap().len(), 5);
    assert_eq!(tail["total"], 40);

    let one_id = items[3]["record_id"].as_str().unwrap().to_string();
    let tracking = items[3]["tracking_id"].as_str().unwrap().to_string();
    let by_id = ok(&h.sm, json!({"method": "failed_page", "params": {"filter": {"text": one_id}, "limit": 10}})).await;
    assert_eq!(by_id["total"], 1);
    let by_tracking = ok(&h.sm, json!({"method": "failed_page", "params": {"filter": {"text": tracking}}})).await;
    assert_eq!(by_tracking["total"], 40, "the whole page came with one Trackingid");
    let by_kind = ok(&h.sm, json!({"method": "failed_page", "params": {"filter": {"error_kind": "missing_row_version"}}})).await;
    assert_eq!(by_kind["total"], 40);
    let full = ok(&h.sm, json!({"method": "failed_item", "params": {"id": items[3]["id"]}})).await;
    assert_eq!(full["record_id"], one_id.as_str());

    let too_big = rpc(&h.sm, json!({"method": "failed_page", "params": {"limit": 501}})).await.unwrap_err();
    assert_eq!(too_big.field.as_deref(), Some("limit"));
    let bad_state = rpc(&h.sm, json!({"method": "failed_page", "params": {"filter": {"state": "gone"}}})).await.unwrap_err();
    assert_eq!(bad_state.field.as_deref(), Some("state"));
    let bad_stage = rpc(&h.sm, json!({"method": "failed_page", "params": {"filter": {"stage": "apply"}}})).await.unwrap_err();
    assert_eq!(bad_stage.field.as_deref(), Some("stage"));
    let empty_words = ok(&h.sm, json!({"method": "failed_page", "params": {"filter": {"stage": "", "state": ""}}})).await;
    assert_eq!(empty_words["total"], 40, "an empty stage or state is any stage, pending");
    let validate = ok(&h.sm, json!({"method": "failed_page", "params": {"filter": {"stage": "validate", "state": "pending"}}})).await;
    assert_eq!(validate["total"], 40);

    let replay = ok(&h.sm, json!({"method": "failed_replay", "params": {"filter": {"entity": "src/items", "text": one_id}}})).await;
    assert_eq!(replay["replayed"].as_u64().unwrap() + replay["superseded"].as_u64().unwrap(), 1, "{replay}");
    let activity = ok(&h.sm, json!({"method": "activity", "params": {"limit": 1000}})).await;
    let events = activity["events"].as_array().unwrap();
    assert_eq!(activity["more"], false, "fewer than 1000 events");
    let progress: Vec<&Value> = events.iter().filter(|e| e["type"] == "replay_progress").collect();
    assert_eq!(progress.len(), 1);
    assert_eq!((progress[0]["done"].as_u64(), progress[0]["total"].as_u64()), (Some(1), Some(1)));
    assert!(events.iter().any(|e| e["type"] == "cycle_finished"));

    let discarded = ok(&h.sm, json!({"method": "failed_discard", "params": {"filter": {"entity": "src/items"}}})).await;
    assert_eq!(discarded["discarded"], 39);
    let pending = ok(&h.sm, json!({"method": "failed_page", "params": {}})).await;
    assert_eq!(pending["total"], 0);
    let gone = ok(&h.sm, json!({"method": "failed_page", "params": {"filter": {"state": "discarded"}}})).await;
    assert_eq!(gone["total"], 39);
    let neither = rpc(&h.sm, json!({"method": "failed_discard", "params": {}})).await.unwrap_err();
    assert_eq!(neither.code, ErrorCode::Usage);
}

const COMMENTED: &str = r#"# Syncmon config — hand-written, comments must survive.

[[connection]]
# the production tenant
id = "src"
base_url = "BASE" # where the API lives
requests_per_second = 1000

# items are the big one
[[connection.entity]]
name = "items"
page_size = 100 # small pages for the test

[[connection]]
id = "other"
base_url = "http://127.0.0.1:9"
"#;

fn open_with_file(dir: &std::path::Path, text: &str) -> Arc<Syncmon> {
    let path = dir.join("syncmon.toml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    Arc::new(Syncmon::open(config, dir).unwrap().with_config_path(path))
}

#[tokio::test]
async fn save_connection_edits_the_file_in_place_keeping_comments_and_refuses_secrets() {
    let h = two_entities().await;
    let dir = tempfile::tempdir().unwrap();
    let sm = open_with_file(dir.path(), &COMMENTED.replace("BASE", &h.mock.base_url()));
    let views = ok(&sm, json!({"method": "connections"})).await;
    assert_eq!(views.as_array().unwrap().len(), 2);
    let mut src = views[0].clone();
    assert_eq!(src["id"], "src");
    assert_eq!(src["has_secret"], false);
    assert_eq!(src["entities"][0]["poll_every"], "5m");

    // Round trip: change a value and add an entity.
    src["requests_per_second"] = json!(20.0);
    src["entities"][0]["poll_every"] = json!("1m");
    src["entities"].as_array_mut().unwrap().push(json!({"name": "customers", "poll_every": "10m", "page_size": 50, "deletion_guard": 0.5}));
    let saved = ok(&sm, json!({"method": "save_connection", "params": {"connection": src}})).await;
    assert_eq!(saved["restart_required"], true);
    let text = std::fs::read_to_string(dir.path().join("syncmon.toml")).unwrap();
    for comment in
        ["# Syncmon config — hand-written", "# the production tenant", "# where the API lives", "# items are the big one", "# small pages for the test"]
    {
        assert!(text.contains(comment), "`{comment}` must survive:\n{text}");
    }
    let config = Config::parse(&text).unwrap();
    let c = config.connection("src").unwrap();
    assert_eq!(c.requests_per_second, 20.0);
    assert_eq!(c.entities.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["items", "customers"]);
    assert_eq!(c.entities[0].poll_every.map(|d| d.as_secs()), Some(60));
    assert_eq!(c.entities[1].page_size, 50);
    assert!(config.connection("other").is_some(), "the other connection is untouched");
    let again = ok(&sm, json!({"method": "connections"})).await;
    assert_eq!(again[0]["entities"].as_array().unwrap().len(), 2, "the view reads the saved file");

    // A new connection is appended.
    let mut fresh = again[1].clone();
    fresh["id"] = json!("third");
    ok(&sm, json!({"method": "save_connection", "params": {"connection": fresh}})).await;
    assert_eq!(Config::load(&dir.path().join("syncmon.toml")).unwrap().connections.len(), 3);

    // Refusals name the field and leave the file alone.
    let before = std::fs::read_to_string(dir.path().join("syncmon.toml")).unwrap();
    let e = refused(&sm, &again[0], &[("client_secret", json!("hunter2"))]).await;
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::Config, Some("client_secret")));
    assert!(!e.message.contains("hunter2"));
    let password = format!("http://alice:pw-0123456789@{}", h.mock.addr());
    let e = refused(&sm, &again[0], &[("base_url", json!(password))]).await;
    assert_eq!(e.field.as_deref(), Some("base_url"), "{e}");
    assert!(e.message.contains("user name/password") && !e.message.contains("pw-0123456789"), "{e}");
    let e = refused(&sm, &again[0], &[("entities/1/path", json!("/customers?api_key=pw-0123456789"))]).await;
    assert_eq!(e.field.as_deref(), Some("entities[1].path"), "{e}");
    assert!(!e.message.contains("pw-0123456789"), "{e}");
    let e = refused(&sm, &again[1], &[("id", json!("SRC"))]).await;
    assert_eq!(e.field.as_deref(), Some("id"), "{e}");
    assert!(e.message.contains("only in case"), "{e}");
    // The field comes from the key the rule checked, not from words in the message: the last
    // ones here name another key first, the first of two same-named entities, or no key at all.
    let refusals: [(&[(&str, Value)], &str); 9] = [
        (&[("secret_env", json!("sk-live-0123456789abcdef"))], "secret_env"),
        (&[("base_url", json!("not a url"))], "base_url"),
        (&[("entities/1/page_size", json!(0))], "entities[1].page_size"),
        (&[("entities/0/poll_every", json!("often"))], "entities[0].poll_every"),
        (&[("timeout", json!("0s"))], "timeout"),
        (&[("entities/1/deletion_guard", json!(2.0))], "entities[1].deletion_guard"),
        (&[("auth", json!("oauth2")), ("token_url", json!("https://login.example.com/token"))], "client_id"),
        // The second `items` is the one listed twice.
        (&[("entities/1/name", json!("items"))], "entities[1].name"),
        (&[("entities/0/name", json!("a-b")), ("entities/1/name", json!("a_b"))], "entities[1].name"),
    ];
    for (edits, field) in refusals {
        let e = refused(&sm, &again[0], edits).await;
        assert_eq!(e.field.as_deref(), Some(field), "{edits:?}: {e}");
    }
    assert_eq!(std::fs::read_to_string(dir.path().join("syncmon.toml")).unwrap(), before);
    assert!(!before.contains("hunter2") && !before.contains("sk-live") && !before.contains("pw-0123456789"));
}

/// A timestamp feed and a snapshot feed, as the issue writes them.
const TWO_PROFILES: &str = "[[connection]]\nid = \"stamped\"\nbase_url = \"http://127.0.0.1:1\"\nprofile = \"timestamp\"\noverlap = \"2s\"\n\
    [connection.cursor]\nversion_field = \"lastModified\"\nrecords_pointer = \"/items\"\nfilter_param = \"modifiedSince\"\n\
    next_url_pointer = \"/links/next\"\n[[connection.entity]]\nname = \"vendors\"\n\
    [[connection]]\nid = \"whole\"\nbase_url = \"http://127.0.0.1:1\"\nprofile = \"snapshot\"\n[[connection.entity]]\nname = \"stores\"\n";

#[tokio::test]
async fn save_connection_keeps_a_timestamp_and_a_snapshot_connection_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let sm = open_with_file(dir.path(), TWO_PROFILES);
    let views = ok(&sm, json!({"method": "connections"})).await;
    assert_eq!((views[0]["profile"].as_str(), views[1]["profile"].as_str()), (Some("timestamp"), Some("snapshot")));
    // The form shows what is in effect: the default format, and a snapshot's default feed keys
    // although the file has no [connection.cursor] for it.
    assert_eq!(views[0]["cursor"]["timestamp_format"], "rfc3339");
    let whole = &views[1]["cursor"];
    assert_eq!((&whole["id_field"], &whole["records_pointer"], &whole["version_field"]), (&json!("id"), &json!(""), &Value::Null), "{whole}");
    for view in views.as_array().unwrap() {
        let mut v = view.clone();
        v["requests_per_second"] = json!(20.0);
        ok(&sm, json!({"method": "save_connection", "params": {"connection": v}})).await;
    }
    let text = std::fs::read_to_string(dir.path().join("syncmon.toml")).unwrap();
    assert_eq!(text.matches("[connection.cursor]").count(), 1, "no empty table for the snapshot's defaults:\n{text}");
    assert!(!text.contains("timestamp_format"), "the default format is not added:\n{text}");
    let config = Config::load(&dir.path().join("syncmon.toml")).unwrap();
    let (stamped, whole) = (config.connection("stamped").unwrap(), config.connection("whole").unwrap());
    assert_eq!((stamped.profile, whole.profile), (ProfileKind::Timestamp, ProfileKind::Snapshot));
    assert_eq!((stamped.requests_per_second, whole.requests_per_second), (20.0, 20.0));
    assert_eq!((stamped.overlap.as_secs(), stamped.cursor.as_ref().unwrap().version_field.as_str()), (2, "lastModified"), "the cursor keys stay");
    let e = refused(&sm, &views[0], &[("profile", json!("sometimes"))]).await;
    assert_eq!(e.field.as_deref(), Some("profile"), "{e}");
    assert!(e.message.contains("rowversion, cursor, snapshot, timestamp"), "{e}");
}

/// A hand-written timestamp connection with comments in and above its `[connection.cursor]`.
const COMMENTED_FEED: &str = r#"[[connection]]
id = "stamped"
base_url = "http://127.0.0.1:1"
profile = "timestamp"
overlap = "2s" # the vendor's clocks drift

# how the vendor's feed is read
[connection.cursor]
version_field = "lastModified" # RFC 3339
records_pointer = "/items"
# the checkpoint goes here
filter_param = "modifiedSince"
extra_query = "orderBy=lastModified"
next_url_pointer = "/links/next"

[[connection.entity]]
name = "vendors" # the big one
"#;

/// Loading a timestamp connection fills the form's feed fields; saving it edited changes those
/// keys in place: the comments in and above `[connection.cursor]` stay, a cleared key goes, a
/// switch to another next-page way replaces the old one, and the table stays where it was.
#[tokio::test]
async fn save_connection_edits_an_existing_cursor_table_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let sm = open_with_file(dir.path(), COMMENTED_FEED);
    let mut view = ok(&sm, json!({"method": "connections"})).await[0].clone();
    assert_eq!(view["overlap"], "2s");
    let cur = &view["cursor"];
    assert_eq!(
        (&cur["id_field"], &cur["version_field"], &cur["filter_param"], &cur["extra_query"], &cur["next_url_pointer"], &cur["timestamp_format"]),
        (&json!("id"), &json!("lastModified"), &json!("modifiedSince"), &json!("orderBy=lastModified"), &json!("/links/next"), &json!("rfc3339")),
        "the form is filled from the file: {cur}"
    );
    view["cursor"]["filter_param"] = json!("changedSince");
    view["cursor"]["extra_query"] = Value::Null;
    view["cursor"]["next_url_pointer"] = Value::Null;
    view["cursor"]["next"] = json!("link-header");
    view["cursor"]["timestamp_format"] = json!("epoch_millis");
    view["overlap"] = json!("5s");
    ok(&sm, json!({"method": "save_connection", "params": {"connection": view}})).await;

    let text = std::fs::read_to_string(dir.path().join("syncmon.toml")).unwrap();
    for comment in ["# the vendor's clocks drift", "# how the vendor's feed is read", "# RFC 3339", "# the checkpoint goes here", "# the big one"] {
        assert!(text.contains(comment), "`{comment}` must survive:\n{text}");
    }
    assert!(text.contains("filter_param = \"changedSince\""), "{text}");
    assert!(!text.contains("extra_query") && !text.contains("next_url_pointer"), "cleared keys are removed:\n{text}");
    let (cursor_at, entity_at) = (text.find("[connection.cursor]").unwrap(), text.find("[[connection.entity]]").unwrap());
    assert!(cursor_at < entity_at, "the cursor table stays above the entities:\n{text}");
    let config = Config::parse(&text).unwrap();
    let c = config.connection("stamped").unwrap();
    let cur = c.cursor.as_ref().unwrap();
    assert_eq!((c.overlap.as_secs(), cur.filter_param.as_str(), cur.extra_query.as_deref()), (5, "changedSince", None));
    assert_eq!(
        (cur.next.map(|n| n.as_str()), cur.timestamp_format.map(|f| f.as_str()), cur.next_url_pointer.as_deref()),
        (Some("link-header"), Some("epoch_millis"), None)
    );

    // Back to rowversion: the feed table and the overlap go, the entity stays.
    let mut plain = ok(&sm, json!({"method": "connections"})).await[0].clone();
    plain["profile"] = json!("rowversion");
    plain["cursor"] = Value::Null;
    plain["overlap"] = Value::Null;
    ok(&sm, json!({"method": "save_connection", "params": {"connection": plain}})).await;
    let text = std::fs::read_to_string(dir.path().join("syncmon.toml")).unwrap();
    assert!(!text.contains("[connection.cursor]") && !text.contains("overlap"), "{text}");
    let config = Config::parse(&text).unwrap();
    assert_eq!(config.connection("stamped").unwrap().profile, ProfileKind::Rowversion);
    assert_eq!(config.connection("stamped").unwrap().entities[0].name, "vendors");
}

/// What the Connections form sends for a new connection (auth none, one entity).
fn form(id: &str, base_url: &str, profile: &str, overlap: Value, cursor: Value, entity: &str) -> Value {
    json!({
        "id": id, "base_url": base_url, "profile": profile, "auth": "none", "max_concurrency": 5,
        "requests_per_second": 1000.0, "timeout": "2s", "overlap": overlap, "cursor": cursor,
        "entities": [{"name": entity, "poll_every": "5m", "page_size": 50, "deletion_guard": 0.5}],
    })
}

#[tokio::test]
async fn save_connection_creates_cursor_timestamp_and_snapshot_connections_that_sync() {
    let mock = MockServer::start(MockConfig {
        entities: entities(&[("items", 120)]),
        feeds: vec![FeedSpec::timestamp("vendors", 150), FeedSpec::snapshot("prices", 130)],
        ..Default::default()
    })
    .await
    .unwrap();
    let base = mock.base_url();
    let dir = tempfile::tempdir().unwrap();
    let sm = open_with_file(dir.path(), "# hand-written\n[[connection]]\nid = \"other\"\nbase_url = \"http://127.0.0.1:9\"\n");
    let cursor = form(
        "alt",
        &format!("{base}/alt/token"),
        "cursor",
        Value::Null,
        json!({"id_field": "uid", "version_field": "seq", "records_pointer": "/result/items", "filter_param": "since",
               "page_size_param": "limit", "next_token_pointer": "/paging/next", "next_token_param": "token"}),
        "items",
    );
    let stamped = form(
        "stamped",
        &base,
        "timestamp",
        json!("1s"),
        json!({"id_field": "id", "version_field": "lastModified", "records_pointer": "/items", "filter_param": "modifiedSince",
               "extra_query": "orderBy=lastModified", "page_size_param": "limit", "next_url_pointer": "/links/next",
               "timestamp_format": "rfc3339"}),
        "vendors",
    );
    let whole = form(
        "whole",
        &base,
        "snapshot",
        Value::Null,
        json!({"id_field": "id", "records_pointer": "/items", "page_size_param": "limit", "next_url_pointer": "/links/next"}),
        "prices",
    );
    // Refusals of cursor keys name the cursor field the form shows them beside.
    let e = refused(&sm, &cursor, &[("cursor/filter_param", Value::Null)]).await;
    assert_eq!(e.field.as_deref(), Some("cursor.filter_param"), "{e}");
    let e = refused(&sm, &whole, &[("cursor/version_field", json!("rowVersion"))]).await;
    assert_eq!(e.field.as_deref(), Some("cursor.version_field"), "{e}");
    let e = refused(&sm, &stamped, &[("cursor/timestamp_format", json!("julian"))]).await;
    assert_eq!(e.field.as_deref(), Some("cursor.timestamp_format"), "{e}");
    let e = refused(&sm, &stamped, &[("overlap", json!("a bit"))]).await;
    assert_eq!(e.field.as_deref(), Some("overlap"), "{e}");

    for c in [&cursor, &stamped, &whole] {
        ok(&sm, json!({"method": "save_connection", "params": {"connection": c}})).await;
    }
    let path = dir.path().join("syncmon.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# hand-written"), "{text}");
    assert!(!text.contains("version_field = \"rowVersion\""), "the snapshot writes no version: {text}");

    // The views read back what the form sent (null and absent alike for keys not written).
    let views = ok(&sm, json!({"method": "connections"})).await;
    for sent in [&cursor, &stamped, &whole] {
        let view = views.as_array().unwrap().iter().find(|v| v["id"] == sent["id"]).unwrap();
        for (key, value) in sent["cursor"].as_object().unwrap() {
            assert_eq!(&view["cursor"][key], value, "{}: cursor.{key} in {}", sent["id"], view["cursor"]);
        }
        assert_eq!(view["overlap"], sent["overlap"], "{}", sent["id"]);
    }

    // The file the form wrote runs: each connection replicates its feed.
    let config = Config::load(&path).unwrap();
    let data = tempfile::tempdir().unwrap();
    let engine = Arc::new(Syncmon::open(config, data.path()).unwrap());
    for (entity, records) in [("items", 120), ("vendors", 150), ("prices", 130)] {
        let sel = engine.select(None, &[entity.to_string()]).unwrap();
        let report = engine.sync_once(&sel, &tokio_util::sync::CancellationToken::new()).await.remove(0);
        assert_eq!(report.outcome, syncmon_core::engine::Outcome::CaughtUp, "{entity}: {}", report.summary());
        let status = engine.status().unwrap().into_iter().find(|s| s.entity == entity).unwrap();
        assert_eq!(status.replica_rows, records, "{entity}");
    }
}

#[tokio::test]
async fn test_connection_reports_status_latency_and_trackingid_or_a_clear_failure() {
    let h = two_entities().await;
    let dir = tempfile::tempdir().unwrap();
    let sm = open_with_file(dir.path(), &COMMENTED.replace("BASE", &h.mock.base_url()));
    let r = ok(&sm, json!({"method": "test_connection", "params": {"id": "src"}})).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["http_status"], 200);
    assert!(r["tracking_id"].as_str().is_some_and(|t| !t.is_empty()), "{r}");
    let calls = h.mock.requests();
    let last = calls.iter().rev().find(|c| c.path.starts_with("/items")).unwrap();
    assert!(last.query.contains("pageSize=1"), "one record only: {:?}", last.query);

    // A port nothing listens on: `other` points at 127.0.0.1:9 (discard), which refuses.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let text = std::fs::read_to_string(dir.path().join("syncmon.toml")).unwrap().replace("http://127.0.0.1:9", &format!("http://127.0.0.1:{port}"));
    std::fs::write(dir.path().join("syncmon.toml"), text).unwrap();
    let r = ok(&sm, json!({"method": "test_connection", "params": {"id": "other"}})).await;
    assert_eq!(r["ok"], false);
    assert_eq!(r["http_status"], Value::Null);
    let msg = r["message"].as_str().unwrap();
    assert!(msg.contains("cannot connect") && msg.contains("check base_url"), "{msg}");

    let e = rpc(&sm, json!({"method": "test_connection", "params": {"id": "nope"}})).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
}

/// A target as the Connections screen's form sends it (what `targets_config` answers, edited).
fn target_form(base_url: &str) -> Value {
    json!({
        "id": "dst", "base_url": base_url, "auth": "api_key", "api_key_header": "x-target-key",
        "token_url": null, "client_id": null, "scope": null, "secret_env": "SYNCMON_API_TEST_TARGET_KEY",
        "max_concurrency": 2, "requests_per_second": 50.0, "timeout": "5s", "max_retries": 3,
        "idempotency_header": "X-Idem", "ignore_fields": ["updatedAt", " "],
        "has_secret": false, "is_connection": false, "entities": [], "test_path": ""
    })
}

async fn target_refused(sm: &Arc<Syncmon>, target: &Value, edits: &[(&str, Value)]) -> ApiError {
    let mut edited = target.clone();
    for (key, value) in edits {
        edited[*key] = value.clone();
    }
    match rpc(sm, json!({"method": "save_target", "params": {"target": edited}})).await {
        Ok(saved) => panic!("saved, not refused: {edits:?} → {saved}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn save_target_writes_the_form_in_place_and_test_target_calls_it_with_its_key() {
    let mock = MockServer::start(MockConfig {
        entities: entities(&[("items", 20)]),
        auth: syncmon_mock::MockAuth::ApiKey { header: "x-target-key".into(), key: "tk-right-0123".into() },
        ..Default::default()
    })
    .await
    .unwrap();
    std::env::set_var("SYNCMON_API_TEST_TARGET_KEY", "tk-right-0123");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("syncmon.toml");
    let sm = open_with_file(dir.path(), &COMMENTED.replace("BASE", &mock.base_url()));
    assert_eq!(ok(&sm, json!({"method": "targets_config"})).await, json!([]));

    // Created from the form, appended to the file; the reloaded config says what the form said.
    let form = target_form(&format!("{}/target", mock.base_url()));
    let saved = ok(&sm, json!({"method": "save_target", "params": {"target": form}})).await;
    assert_eq!(saved["restart_required"], true);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("# the production tenant") && text.contains("[[target]]"), "{text}");
    assert!(!text.contains("has_secret") && !text.contains("test_path") && !text.contains("tk-right"), "only config keys:\n{text}");
    let config = Config::load(&file).unwrap();
    let t = config.target("dst").unwrap();
    assert_eq!(
        (t.auth, t.api_key_header.as_str(), t.secret_env.as_deref()),
        (syncmon_core::config::AuthKind::ApiKey, "x-target-key", Some("SYNCMON_API_TEST_TARGET_KEY"))
    );
    assert_eq!((t.max_concurrency, t.requests_per_second, t.timeout.as_secs(), t.max_retries), (2, 50.0, 5, 3));
    assert_eq!((t.idempotency_header.as_str(), t.ignore_fields.clone()), ("X-Idem", vec!["updatedAt".to_string()]));
    let views = ok(&sm, json!({"method": "targets_config"})).await;
    assert_eq!(views[0]["has_secret"], true, "the env variable holds it: {views}");
    assert_eq!(views[0]["timeout"], "5s");

    // Edited in place: a comment and a key the form does not show stay.
    let text =
        text.replace("[[target]]\n", "[[target]]\n# the warehouse API\n").replace("max_retries = 3\n", "max_retries = 3 # enough\nbackoff_max = \"2s\"\n");
    std::fs::write(&file, &text).unwrap();
    let mut edit = views[0].clone();
    edit["max_retries"] = json!(4);
    edit["ignore_fields"] = json!([]);
    ok(&sm, json!({"method": "save_target", "params": {"target": edit}})).await;
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("# the warehouse API") && text.contains("max_retries = 4 # enough") && text.contains("backoff_max = \"2s\""), "{text}");
    assert!(!text.contains("ignore_fields"), "{text}");
    let config = Config::load(&file).unwrap();
    assert_eq!((config.targets.len(), config.targets[0].max_retries, config.targets[0].backoff_max.as_secs()), (1, 4, 2));

    // Test connection: one GET under the base URL with the target's key; the Trackingid shown.
    let r = ok(&sm, json!({"method": "test_target", "params": {"id": "dst", "path": "/items"}})).await;
    assert_eq!((r["ok"].clone(), r["http_status"].clone()), (json!(true), json!(200)), "{r}");
    let call = mock.requests().into_iter().rev().find(|c| c.path == "/target/items").expect("the target was called");
    assert_eq!(call.method, "GET");
    assert!(call.headers.iter().any(|(k, v)| k == "x-target-key" && v == "tk-right-0123"), "{:?}", call.headers);
    assert_eq!(r["tracking_id"].as_str(), Some(call.tracking_id.as_str()), "the Trackingid the target answered");
    assert!(r["message"].as_str().unwrap().starts_with("the target answered 200"), "{r}");
    std::env::set_var("SYNCMON_API_TEST_TARGET_KEY", "tk-wrong");
    let r = ok(&sm, json!({"method": "test_target", "params": {"id": "dst", "path": "/items"}})).await;
    assert_eq!((r["ok"].clone(), r["http_status"].clone()), (json!(false), json!(401)), "{r}");
    assert!(r["message"].as_str().unwrap().contains("check the credentials"), "{r}");
    assert!(r["tracking_id"].as_str().is_some(), "a refusal carries its Trackingid too: {r}");
    // With an entity forwarding to it, the default test path is where that entity writes.
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("page_size = 100 # small pages for the test", "page_size = 100 # small pages for the test\nforward_to = \"dst\"");
    std::fs::write(&file, text).unwrap();
    let view = ok(&sm, json!({"method": "targets_config"})).await[0].clone();
    assert_eq!((view["entities"].clone(), view["test_path"].clone()), (json!(["src/items"]), json!("/items")), "{view}");
    std::env::set_var("SYNCMON_API_TEST_TARGET_KEY", "tk-right-0123");
    let before = mock.requests().len();
    let r = ok(&sm, json!({"method": "test_target", "params": {"id": "dst"}})).await;
    assert_eq!(r["ok"], true, "{r}");
    let calls: Vec<_> = mock.requests().into_iter().skip(before).map(|c| (c.method, c.path)).collect();
    assert_eq!(calls, [("GET".to_string(), "/target/items".to_string())], "one call, no retries");
    let e = rpc(&sm, json!({"method": "test_target", "params": {"id": "dst", "path": "http://elsewhere.example/x"}})).await.unwrap_err();
    assert_eq!(e.field.as_deref(), Some("path"), "{e}");
    let e = rpc(&sm, json!({"method": "test_target", "params": {"id": "nope"}})).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);

    // The keyring entry is the target's id; a target has no webhook secret.
    let e = rpc(&sm, json!({"method": "set_secret", "params": {"connection": "dst", "webhook": true, "secret": "x"}})).await.unwrap_err();
    assert_eq!(e.field.as_deref(), Some("webhook"), "{e}");
    let e = rpc(&sm, json!({"method": "set_secret", "params": {"connection": "nope", "secret": "x"}})).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);

    // Refusals name the form field and leave the file alone.
    let before = std::fs::read_to_string(&file).unwrap();
    let view = ok(&sm, json!({"method": "targets_config"})).await[0].clone();
    let e = target_refused(&sm, &view, &[("api_key", json!("tk-live-0123456789"))]).await;
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::Config, Some("api_key")));
    assert!(!e.message.contains("tk-live"), "{e}");
    let refusals: [(&[(&str, Value)], &str); 7] = [
        (&[("timeout", json!("soon"))], "timeout"),
        (&[("timeout", json!("0s"))], "timeout"),
        (&[("max_concurrency", json!(0))], "max_concurrency"),
        (&[("base_url", json!("not a url"))], "base_url"),
        (&[("auth", json!("oauth2")), ("token_url", json!("https://login.example.com/token"))], "client_id"),
        (&[("secret_env", json!("sk-live-0123456789abcdef"))], "secret_env"),
        (&[("id", json!("a b"))], "id"),
    ];
    for (edits, field) in refusals {
        let e = target_refused(&sm, &view, edits).await;
        assert_eq!(e.field.as_deref(), Some(field), "{edits:?}: {e}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}

#[tokio::test]
async fn settings_have_defaults_and_are_kept() {
    let h = two_entities().await;
    let s = ok(&h.sm, json!({"method": "settings"})).await;
    assert_eq!(s, json!({"notifications": true, "failing_after_seconds": 600}));
    ok(&h.sm, json!({"method": "save_settings", "params": {"notifications": false, "failing_after_seconds": 120}})).await;
    let mut h = h;
    h.reopen();
    assert_eq!(ok(&h.sm, json!({"method": "settings"})).await, json!({"notifications": false, "failing_after_seconds": 120}));
}

#[tokio::test]
async fn overview_carries_the_config_warnings_for_the_ui() {
    let mock = syncmon_mock::MockServer::start(MockConfig { entities: entities(&[("items", 10)]), ..Default::default() }).await.unwrap();
    let text = format!(
        "[webhooks]\nlisten = \"0.0.0.0:0\"\n\n[[target]]\nid = \"erp\"\nbase_url = \"http://erp.example.com/api\"\n\n{}",
        config_text(&mock.base_url(), &["items"], "", "")
    );
    let h = Harness::with_config(mock, text).await;
    let o = ok(&h.sm, json!({"method": "overview"})).await;
    let warnings = o["warnings"].as_array().unwrap();
    let keys: Vec<&str> = warnings.iter().map(|w| w["key"].as_str().unwrap()).collect();
    // The source on loopback is plain HTTP too, and is no warning.
    assert_eq!(keys, ["targets[0].base_url", "webhooks.listen"], "{o}");
    assert!(warnings[0]["message"].as_str().unwrap().contains("plain http:// to erp.example.com"), "{o}");

    let quiet = two_entities().await;
    assert_eq!(ok(&quiet.sm, json!({"method": "overview"})).await["warnings"], json!([]));
}

/// A source on loopback whose first page points to the next with credentials in its query (some
/// APIs echo the caller's key into their links): the request log — in the RPC result and in the
/// database file — shows the call with those values redacted and the paging parameters intact.
#[tokio::test]
async fn credential_looking_query_parameters_never_reach_the_request_log() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        // Bounded: two pages, then the server stops.
        for _ in 0..2 {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = if head.contains("pageKey=2") {
                r#"{"morePages": false, "data": [{"id": "b", "rowVersion": "2"}]}"#.to_string()
            } else {
                r#"{"morePages": true, "nextPageURL": "/items?x-api-key=LEAKED-1&auth=LEAKED-2&Api-Key=LEAKED-3&pageKey=2&sync=true", "data": [{"id": "a", "rowVersion": "1"}]}"#.to_string()
            };
            let reply = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = sock.write_all(reply.as_bytes()).await;
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(&common::config_text(&base, &["items"], "", "")).unwrap();
    let sm = Arc::new(Syncmon::open(config, dir.path()).unwrap());
    let sel = sm.select(None, &["items".to_string()]).unwrap();
    let reports = sm.sync_once(&sel, &tokio_util::sync::CancellationToken::new()).await;
    assert_eq!(reports[0].outcome, syncmon_core::engine::Outcome::CaughtUp, "{:?}", reports[0]);
    let rows = ok(&sm, json!({"method": "requests", "params": {"entity": "items"}})).await;
    let urls: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["url"].as_str().unwrap()).collect();
    assert_eq!(urls.len(), 2, "{rows}");
    assert!(urls.iter().any(|u| u.contains("pageKey=2") && u.contains("sync=true") && u.contains("x-api-key=REDACTED")), "{urls:?}");
    assert!(urls.iter().all(|u| !u.contains("LEAKED")), "{urls:?}");
    drop(sm);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"LEAKED"), "a credential in {}", path.display());
    }
}

/// The app's Verify: an entity whose source changed behind Syncmon's back (mutated, inserted and
/// deleted records, not synced) reads missing, stale and extra with samples and the reads'
/// Trackingids, with progress while it reads; writes nothing; the result is kept, shown with the
/// entity's detail and put into the diagnostics bundle.
#[tokio::test]
async fn verify_names_what_changed_behind_syncmons_back_keeps_the_result_and_bundles_it() {
    let h = Harness::start(MockConfig { entities: entities(&[("items", 250)]), ..Default::default() }, "", "").await;
    h.sync_ok("items").await;
    let equal = ok(&h.sm, json!({"method": "verify", "params": {"entity": "items"}})).await;
    assert_eq!((equal["equal"].as_bool(), equal["report"]["missing"].as_u64()), (Some(true), Some(0)), "{equal}");

    let stale = h.mock.mutate("items", 4);
    let missing = h.mock.insert("items", 3);
    let extra = h.mock.delete("items", 2);
    let before = h.replica("items");
    let mut events = h.sm.subscribe();
    let v = ok(&h.sm, json!({"method": "verify", "params": {"entity": "items"}})).await;
    let r = &v["report"];
    assert_eq!(v["equal"], false, "{v}");
    assert_eq!((r["missing"].as_u64(), r["extra"].as_u64()), (Some(3), Some(2)), "{r}");
    // A record mutated then deleted is extra, not stale.
    let stale_live = stale.iter().filter(|id| !extra.contains(id)).count() as u64;
    assert_eq!(r["stale"].as_u64(), Some(stale_live), "{r}");
    let ids = |k: &str| r[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(ids("missing_ids"), missing.iter().cloned().collect(), "the missing ids are named");
    assert_eq!(ids("extra_ids"), extra.iter().cloned().collect(), "the extra ids are named");
    assert!(r["first_tracking_id"].as_str().is_some_and(|t| !t.is_empty()), "the reads' Trackingids: {r}");
    assert_eq!(h.replica("items"), before, "verify writes nothing");
    let mut progress = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let syncmon_core::events::EventKind::VerifyProgress { records, .. } = e.kind {
            progress.push(records);
        }
    }
    assert!(progress.len() >= 3 && progress.windows(2).all(|w| w[0] < w[1]), "progress per page: {progress:?}");

    let detail = ok(&h.sm, json!({"method": "entity_detail", "params": {"entity": "items"}})).await;
    assert_eq!(detail["last_verify"]["report"]["missing"], 3, "the last verify is kept: {}", detail["last_verify"]);
    assert!(detail["last_verify"]["finished_at"].as_i64().is_some());

    let saved = ok(&h.sm, json!({"method": "diagnostics"})).await;
    let summary = saved["summary"].as_str().unwrap();
    assert!(summary.contains("## Last verify") && summary.contains("missing 3") && summary.contains("extra 2"), "{summary}");
    assert!(summary.contains(&missing[0]), "the samples are in the summary: {summary}");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(saved["path"].as_str().unwrap()).unwrap()).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("verify.json").unwrap(), &mut text).unwrap();
    assert!(text.contains("\"missing\": 3"), "{text}");

    let unknown = rpc(&h.sm, json!({"method": "verify", "params": {"entity": "nope"}})).await.unwrap_err();
    assert_eq!(unknown.code, ErrorCode::NotFound, "{unknown:?}");
}

#[tokio::test]
async fn resync_preview_tells_the_rows_a_resync_may_delete_before_it_starts() {
    let h = two_entities().await;
    h.sync_ok("items").await;
    let before = ok(&h.sm, json!({"method": "requests", "params": {"limit": 500}})).await;
    let p = ok(&h.sm, json!({"method": "resync_preview", "params": {"entity": "items"}})).await;
    assert_eq!(
        p,
        json!({"connection": "src", "entity": "items", "replica_rows": 250, "may_delete": 250, "seen": 0, "resumes": false, "stopped_at_guard": null, "deletion_guard": 0.5})
    );
    let after = ok(&h.sm, json!({"method": "requests", "params": {"limit": 500}})).await;
    assert_eq!(before, after, "the preview calls nobody");
    let e = rpc(&h.sm, json!({"method": "resync_preview", "params": {"entity": "nope"}})).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound, "{e:?}");
}
