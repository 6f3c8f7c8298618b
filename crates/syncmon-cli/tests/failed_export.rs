//! Failed items handed on: `failed list` says when it cut the list and has `--all`, `failed
//! export` writes every matching item as CSV or JSON lines, `failed summary` groups them by error
//! kind, and `failed discard --all` asks first (refuses without a terminal unless `--yes`).

use std::process::Stdio;
use syncmon_mock::{EntitySpec, Fault, FaultKind, MockAuth, MockConfig, MockServer};

mod common;
use common::{text, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_items_are_listed_whole_exported_summarised_and_discarded_only_when_confirmed() {
    let mock = MockServer::start(MockConfig { entities: vec![EntitySpec { name: "items".into(), records: 300 }], auth: MockAuth::None, ..Default::default() })
        .await
        .unwrap();
    let env = Env::new(&format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{}\"\nbackoff_base = \"20ms\"\nbackoff_max = \"200ms\"\nrequests_per_second = 1000\n\
         [[connection.entity]]\nname = \"items\"\npage_size = 100\n",
        mock.base_url()
    ));
    mock.inject(Fault { kind: FaultKind::MissingRowVersion { records: 5 }, entity: None, times: 1 });
    env.run_ok(&["sync"]);

    // The list says it was cut, and how to see the rest.
    let out = env.run_ok(&["failed", "list", "--limit", "2"]);
    let t = text(&out);
    assert!(t.contains("showing the newest 2 of 5 items") && t.contains("--all"), "{t}");
    let out = env.run_ok(&["failed", "list", "--all", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 5);
    assert!(!text(&out).contains("showing the newest"), "an uncut list says nothing: {}", text(&out));
    let tracking: Vec<String> = all.as_array().unwrap().iter().map(|i| i["tracking_id"].as_str().unwrap().to_string()).collect();

    // JSON lines: one object per item, payload whole.
    let out = env.run_ok(&["failed", "export", "--format", "jsonl"]);
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    assert!(lines.iter().all(|l| l["error_kind"] == "missing_row_version" && l["payload"].as_str().unwrap().starts_with('{')));

    // CSV to a file: a header and a row per item carrying its Trackingid.
    let file = env.dir.path().join("failed.csv");
    let out = env.run_ok(&["failed", "export", "--output", file.to_str().unwrap()]);
    assert!(text(&out).contains("wrote 5 failed items"), "{}", text(&out));
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(csv.starts_with("id,connection,entity,record_id,row_version,stage,error_kind"), "{csv}");
    assert_eq!(csv.matches("missing_row_version").count(), 5, "{csv}");
    for t in &tracking {
        assert!(csv.contains(t.as_str()), "{t} in the CSV");
    }
    // A filter that matches nothing exports only the header.
    let out = env.run_ok(&["failed", "export", "--kind", "not_json"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);

    let out = env.run_ok(&["failed", "summary", "--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary, serde_json::json!([{ "error_kind": "missing_row_version", "count": 5 }]));

    // Bulk discard: no terminal to ask, so it refuses and discards nothing.
    let out = env.cmd(&["failed", "discard", "--all"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    let out = env.run_ok(&["failed", "list", "--all", "--json"]);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_array().unwrap().len(), 5, "nothing discarded");
    // Named ids need no confirmation; --all --yes none either.
    let one = all[0]["id"].to_string();
    let out = env.cmd(&["failed", "discard", &one]).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success() && text(&out).contains("discarded 1 items"), "{}", text(&out));
    let out = env.cmd(&["failed", "discard", "--all", "--yes"]).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success() && text(&out).contains("discarded 4 items"), "{}", text(&out));
    let out = env.run_ok(&["failed", "list"]);
    assert!(text(&out).contains("Everything is in sync"), "{}", text(&out));
}
