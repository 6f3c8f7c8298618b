//! Validation beyond required fields: an entity's JSON Schema (`schema = "schemas/items.json"`),
//! against the simulated source and a real SQLite replica. Records that break it become failed
//! items of stage `validate` naming the JSON pointer and the rule, the rest of their page is
//! applied, and a replay after the schema is fixed resolves them.

mod common;

use common::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use syncmon_core::api::{self, parse_request};
use syncmon_core::config::{Config, ConfigError};
use syncmon_core::store::FailedFilter;
use syncmon_core::{ErrorCode, FailedStage, Syncmon};
use syncmon_mock::{MockConfig, MockServer};
use tokio_util::sync::CancellationToken;

/// Each rule is broken by the items whose `number` ends in one letter (`1000-A`, `1001-Z`, …), so
/// every failing record breaks exactly one rule: `pattern` (Z), `minimum` (A), `type` (B) and
/// `required` (C), the last three as cross-field rules (`if` … `then`).
const STRICT: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["number", "inventory"],
  "properties": {
    "number": { "type": "string", "pattern": "^[0-9]+-[A-Y]$" },
    "inventory": { "type": "number" }
  },
  "allOf": [
    { "if": { "properties": { "number": { "pattern": "-A$" } } }, "then": { "properties": { "inventory": { "minimum": 1000000 } } } },
    { "if": { "properties": { "number": { "pattern": "-B$" } } }, "then": { "properties": { "blocked": { "type": "string" } } } },
    { "if": { "properties": { "number": { "pattern": "-C$" } } }, "then": { "required": ["serviceCode"] } }
  ]
}"#;

/// The same schema with the rules the source's data breaks taken out.
const RELAXED: &str = r#"{ "type": "object", "required": ["number", "inventory"], "properties": { "inventory": { "type": "number" } } }"#;

/// The rule and JSON pointer an item's `number` breaks in [`STRICT`], if any.
fn expected_violation(number: &str) -> Option<(&'static str, &'static str)> {
    match number.chars().last()? {
        'Z' => Some(("pattern", "/number")),
        'A' => Some(("minimum", "/inventory")),
        'B' => Some(("type", "/blocked")),
        'C' => Some(("required", "")),
        _ => None,
    }
}

/// Writes `schemas/items.json` and `syncmon.toml` into the data directory (the schema named
/// relative to the config file) and opens the engine from the file, as the CLI does.
async fn start(schema: &str) -> Harness {
    let mock = MockServer::start(MockConfig { entities: entities(&[("items", 250), ("customers", 40)]), ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("schemas")).unwrap();
    std::fs::write(dir.path().join("schemas/items.json"), schema).unwrap();
    let mut text = config_text(&mock.base_url(), &["items"], "", "schema = \"schemas/items.json\"");
    text.push_str("[[connection.entity]]\nname = \"customers\"\npage_size = 100\n");
    std::fs::write(dir.path().join("syncmon.toml"), &text).unwrap();
    let sm = open(dir.path());
    Harness { dir, mock, sm, config_text: text }
}

fn open(dir: &Path) -> Arc<Syncmon> {
    let config = Config::load(&dir.join("syncmon.toml")).unwrap_or_else(|e| panic!("the config loads: {e}"));
    Arc::new(Syncmon::open(config, dir).unwrap())
}

/// id → (rule, pointer) of every source record that breaks [`STRICT`].
fn breaking(h: &Harness) -> BTreeMap<String, (&'static str, &'static str)> {
    h.mock.dataset("items").into_iter().filter_map(|r| Some((r.id, expected_violation(r.data["number"].as_str()?)?))).collect()
}

fn pending(h: &Harness) -> Vec<syncmon_core::FailedItem> {
    h.sm.failed_items(&FailedFilter::default(), None, 500).unwrap()
}

#[tokio::test]
async fn records_breaking_the_schema_become_failed_items_naming_the_pointer_and_the_rule() {
    let h = start(STRICT).await;
    let r = h.sync_ok("items").await;
    let breaking = breaking(&h);
    let rules: BTreeSet<&str> = breaking.values().map(|(rule, _)| *rule).collect();
    assert_eq!(rules, ["minimum", "pattern", "required", "type"].into(), "the data set breaks every rule of the test");
    assert_eq!(r.failed_new as usize, breaking.len());

    let items = pending(&h);
    let failed: BTreeMap<String, &syncmon_core::FailedItem> = items.iter().map(|i| (i.record_id.clone().unwrap(), i)).collect();
    assert_eq!(failed.keys().collect::<Vec<_>>(), breaking.keys().collect::<Vec<_>>(), "exactly the records that break the schema failed");
    for (id, (rule, pointer)) in &breaking {
        let item = failed[id];
        assert_eq!(item.stage, FailedStage::Validate, "{id}");
        assert_eq!(item.error_kind, "schema", "{id}");
        assert_eq!(item.rule.as_deref(), Some(*rule), "{id}: {}", item.message);
        let at = if pointer.is_empty() { "the record" } else { pointer };
        assert!(item.message.starts_with(&format!("{at}: ")), "{id}: the message names the pointer `{at}`: {}", item.message);
        assert!(item.message.contains(&format!("(rule `{rule}`)")), "{id}: the message names the rule: {}", item.message);
    }
    let sample = failed.values().find(|i| i.rule.as_deref() == Some("minimum")).unwrap();
    assert!(sample.message.contains("less than the minimum of 1000000"), "{}", sample.message);

    // The rest of each page was applied, and the checkpoint moved past the bad records.
    let replica = h.replica("items");
    let source = h.source("items");
    assert_eq!(replica.len() + breaking.len(), source.len());
    assert!(replica.keys().all(|id| !breaking.contains_key(id) && source[id] == replica[id]));
    assert_eq!(h.checkpoint("items").parse::<u128>().unwrap(), max_version(&h, "items"), "one bad record never stalls the entity");

    // An entity without a schema is not validated against one.
    let c = h.sync_ok("customers").await;
    assert_eq!(c.failed_new, 0);
    h.assert_converged("customers");

    // The Failed screen's groups: counts per rule, and a filter by rule.
    let mut per_rule: BTreeMap<&str, i64> = BTreeMap::new();
    for (rule, _) in breaking.values() {
        *per_rule.entry(rule).or_default() += 1;
    }
    let counts = h.sm.failed_rule_counts(&FailedFilter::default()).unwrap();
    assert_eq!(counts.iter().map(|c| (c.rule.as_str(), c.count)).collect::<BTreeMap<_, _>>(), per_rule);
    assert!(counts.windows(2).all(|w| w[0].count >= w[1].count), "most first: {counts:?}");
    let minimum = FailedFilter { rule: Some("minimum".into()), ..Default::default() };
    let (total, page) = h.sm.failed_page(&minimum, 0, 100).unwrap();
    assert_eq!(total, per_rule["minimum"]);
    assert!(page.iter().all(|i| i.rule.as_deref() == Some("minimum")));
    assert_eq!(h.sm.failed_rule_counts(&minimum).unwrap(), counts, "the groups stay whatever rule is chosen");

    // The same through the RPC the Failed screen calls: `rules` on the first page only.
    let page = |params: serde_json::Value| {
        let sm = h.sm.clone();
        async move { api::call(&sm, parse_request(json!({"method": "failed_page", "params": params})).unwrap()).await.unwrap() }
    };
    let first = page(json!({"filter": {"rule": "minimum"}, "offset": 0, "limit": 5})).await;
    assert_eq!(first["total"], per_rule["minimum"]);
    assert!(first["items"].as_array().unwrap().iter().all(|i| i["rule"] == "minimum"));
    let groups: BTreeMap<String, i64> =
        first["rules"].as_array().unwrap().iter().map(|g| (g["rule"].as_str().unwrap().to_string(), g["count"].as_i64().unwrap())).collect();
    assert_eq!(groups, per_rule.iter().map(|(r, n)| (r.to_string(), *n)).collect());
    assert!(page(json!({"filter": {}, "offset": 5, "limit": 5})).await["rules"].is_null());

    // A second pass over the same records adds no duplicates.
    h.sm.reset_checkpoint("items").await.unwrap();
    assert_eq!(h.sync_ok("items").await.failed_new, 0);
    assert_eq!(pending(&h).len(), breaking.len());
}

#[tokio::test]
async fn a_missing_or_invalid_schema_file_is_refused_naming_the_key_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("syncmon.toml");
    let text = "[[connection]]\nid = \"src\"\nbase_url = \"http://127.0.0.1:9\"\n\n[[connection.entity]]\nname = \"items\"\nschema = \"schemas/items.json\"\n";
    std::fs::write(&config, text).unwrap();
    let schema = dir.path().join("schemas/items.json");
    let refusal = |what: &str| {
        let err = Config::load(&config).expect_err(what);
        let m = match &err {
            ConfigError::Invalid { problem, .. } => {
                assert_eq!(problem.key.as_deref(), Some("connections[0].entities[0].schema"), "{what}: {problem}");
                assert_eq!(problem.line, Some(7), "{what}: {problem}");
                let m = problem.message.clone();
                assert!(m.contains("connection `src`, entity `items`") && m.contains(&schema.display().to_string()), "{what}: {m}");
                m
            }
            other => panic!("{what}: {other}"),
        };
        // A config error: the CLI exits 2 on it, the RPC answers code `config`.
        assert_eq!(syncmon_core::Error::from(err).error_code(), ErrorCode::Config);
        m
    };
    let m = refusal("a missing file");
    assert!(m.contains("cannot read the schema file"), "{m}");

    std::fs::create_dir(dir.path().join("schemas")).unwrap();
    std::fs::write(&schema, "{ \"type\": ").unwrap();
    let m = refusal("a file that is not JSON");
    assert!(m.contains("is not JSON"), "{m}");

    std::fs::write(&schema, r#"{ "type": "object", "properties": { "price": { "minimum": "zero" } } }"#).unwrap();
    let m = refusal("a file that is not a JSON Schema");
    assert!(m.contains("is not a valid JSON Schema"), "{m}");

    // An absolute path is taken as it is.
    std::fs::write(&schema, RELAXED).unwrap();
    std::fs::write(&config, text.replace("schemas/items.json", &schema.display().to_string())).unwrap();
    let loaded = Config::load(&config).unwrap();
    assert_eq!(loaded.connections[0].entities[0].record_schema.as_ref().unwrap().path(), schema);
}

#[tokio::test]
async fn a_replay_after_the_schema_is_fixed_resolves_the_items() {
    let mut h = start(STRICT).await;
    h.sync_ok("items").await;
    let n = breaking(&h).len();
    let ids = h.sm.failed_ids(&FailedFilter::default()).unwrap();
    assert_eq!(ids.len(), n);

    // Replayed against the same schema, the records fail again: a replay re-validates.
    let report = h.sm.replay(&ids, &CancellationToken::new()).await.unwrap();
    assert_eq!((report.replayed, report.still_failing), (0, n));
    assert!(pending(&h).iter().all(|i| i.attempts == 2 && i.rule.is_some()));

    // The schema is fixed; the engine reads it when it opens (as an agent's restart does).
    std::fs::write(h.dir.path().join("schemas/items.json"), RELAXED).unwrap();
    h.sm = open(h.dir.path());
    let report = h.sm.replay(&ids, &CancellationToken::new()).await.unwrap();
    assert_eq!((report.replayed, report.still_failing), (n, 0));
    assert!(pending(&h).is_empty());
    h.assert_converged("items");
    assert!(h.sm.failed_rule_counts(&FailedFilter::default()).unwrap().is_empty(), "no pending item breaks a rule any more");
}

#[tokio::test]
async fn a_connection_saved_from_the_ui_keeps_the_schema_read_beside_the_file() {
    let h = start(RELAXED).await;
    let path = h.dir.path().join("syncmon.toml");
    let sm = Arc::new(Syncmon::open(Config::load(&path).unwrap(), h.dir.path()).unwrap().with_config_path(&path));
    let call = |req: serde_json::Value| {
        let sm = sm.clone();
        async move { api::call(&sm, parse_request(req).unwrap()).await }
    };
    let mut src = call(json!({"method": "connections"})).await.unwrap()[0].clone();
    src["requests_per_second"] = json!(20.0);
    // The test runs in the crate's directory, not the config's: a relative schema is read beside the file.
    call(json!({"method": "save_connection", "params": {"connection": src}})).await.unwrap_or_else(|e| panic!("saved: {e}"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("schema = \"schemas/items.json\""), "the entity keeps its schema:\n{text}");
    assert_eq!(Config::load(&path).unwrap().connections[0].requests_per_second, 20.0);
}
