//! A two-way pair from the command line: `syncmon sync` moves changes both ways, `syncmon
//! targets` shows each side's queue and rate, and a record edited on both systems is settled
//! with `syncmon failed resolve ID --keep CONNECTION`. Both systems are simulated targets that
//! serve what they hold as a rowVersion feed, on loopback.

mod common;

use common::*;
use syncmon_mock::{MockConfig, MockServer};

fn pair_config(a: &MockServer, b: &MockServer) -> String {
    let mut s = String::new();
    for (id, other, mock) in [("a", "b", a), ("b", "a", b)] {
        s.push_str(&format!(
            "[[connection]]\nid = \"{id}\"\nbase_url = \"{}/target\"\nbackoff_base = \"20ms\"\nbackoff_max = \"100ms\"\nrequests_per_second = 1000\n\
             [[connection.entity]]\nname = \"items\"\nforward_to = \"{other}\"\n",
            mock.base_url()
        ));
    }
    for (id, mock) in [("a", a), ("b", b)] {
        s.push_str(&format!("[[target]]\nid = \"{id}\"\nbase_url = \"{}/target\"\nrequests_per_second = 1000\n", mock.base_url()));
    }
    s
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_targets_and_resolve_a_conflict_from_the_command_line() {
    let a = MockServer::start(MockConfig { entities: Vec::new(), ..Default::default() }).await.unwrap();
    let b = MockServer::start(MockConfig { entities: Vec::new(), ..Default::default() }).await.unwrap();
    for i in 0..40 {
        a.target_put("items", &format!("r{i}"), serde_json::json!({ "id": format!("r{i}"), "name": "start" }));
    }
    let env = Env::new(&pair_config(&a, &b));
    env.run_ok(&["sync"]);
    env.run_ok(&["sync"]);
    assert_eq!(b.target_dataset("items").len(), 40, "B received A's records");

    let targets = json(&env.run_ok(&["targets", "--json"]));
    let b_row = targets.as_array().unwrap().iter().find(|t| t["id"] == "b").expect("target b listed").clone();
    assert_eq!(b_row["pending"], 0, "{b_row}");
    assert_eq!(b_row["entities"], serde_json::json!(["a/items"]));
    assert_eq!(b_row["is_connection"], true);
    assert!(b_row["deliveries_per_minute"].as_f64().unwrap() >= 40.0 / 5.0, "40 deliveries in the last five minutes: {b_row}");
    let t = text(&env.run_ok(&["targets"]));
    assert!(t.contains("TARGET") && t.contains("closed") && t.contains("a/items"), "{t}");

    // Both systems' users change r5 before Syncmon syncs again.
    let mut r5 = a.target_get("items", "r5").unwrap();
    r5["name"] = "set on a".into();
    a.target_put("items", "r5", r5.clone());
    r5["name"] = "set on b".into();
    b.target_put("items", "r5", r5);
    env.run_ok(&["sync"]);
    let conflicts = json(&env.run_ok(&["failed", "list", "--stage", "conflict", "--json"]));
    let items = conflicts.as_array().unwrap();
    assert_eq!(items.len(), 1, "{conflicts}");
    let id = items[0]["id"].as_i64().unwrap().to_string();
    assert_eq!(a.target_get("items", "r5").unwrap()["name"], "set on a", "neither side is overwritten while the conflict waits");
    assert_eq!(b.target_get("items", "r5").unwrap()["name"], "set on b");

    let out = env.run(&["failed", "resolve", &id, "--keep", "nobody"]);
    assert_eq!(out.status.code(), Some(2), "a usage error: {}", text(&out));
    assert!(text(&out).contains("`a` or `b`"), "{}", text(&out));
    let out = env.run_ok(&["failed", "resolve", &id, "--keep", "a"]);
    assert!(text(&out).contains("kept `a`'s version") && text(&out).contains("forwarded 1 to b"), "{}", text(&out));
    assert_eq!(b.target_get("items", "r5").unwrap()["name"], "set on a");
    let left = json(&env.run_ok(&["failed", "list", "--stage", "conflict", "--json"]));
    assert_eq!(left, serde_json::json!([]));
    let writes = b.requests().iter().filter(|r| r.method == "PUT").count() + a.requests().iter().filter(|r| r.method == "PUT").count();
    env.run_ok(&["sync"]);
    env.run_ok(&["sync"]);
    let after = b.requests().iter().filter(|r| r.method == "PUT").count() + a.requests().iter().filter(|r| r.method == "PUT").count();
    assert_eq!(after, writes, "the pair stays quiet once level");
}

/// Flag write-back survives a SIGKILL between the replica write and the marks: the queue is on
/// disk, so the next run marks every synced record, and only those.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_back_survives_a_sigkill_between_the_replica_write_and_the_marks() {
    let src = MockServer::start(MockConfig { entities: Vec::new(), ..Default::default() }).await.unwrap();
    for i in 0..200 {
        src.target_put("items", &format!("r{i:03}"), serde_json::json!({ "id": format!("r{i:03}"), "name": "x", "synced": false }));
    }
    src.target_put("items", "bad", serde_json::json!({ "id": "bad", "synced": false }));
    let env = Env::new(&format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{}/target\"\nrequests_per_second = 1000\nmax_concurrency = 1\n\
         [[connection.entity]]\nname = \"items\"\npath = \"/items?synced=false\"\npage_size = 500\nrequired_fields = [\"name\"]\n\
         write_back = {{ path = \"/items/{{id}}\", body = '{{\"synced\": true}}' }}\n",
        src.base_url()
    ));
    // Slow marks: the kill lands while most of them still wait.
    src.set_target_delay(std::time::Duration::from_millis(20));
    let patches = |src: &MockServer| src.requests().iter().filter(|r| r.method == "PATCH").count();
    let mut child = env.cmd(&["sync"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while patches(&src) < 10 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = patches(&src);
    assert!((10..200).contains(&before), "killed mid-way through the marks ({before} sent)");
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(3), "the record that failed validation waits for review: {}", text(&out));
    let status = json(&out);
    assert_eq!(status[0]["replica_rows"], 200, "the replica write was committed before the kill: {status}");

    src.set_target_delay(std::time::Duration::ZERO);
    let out = env.run_ok(&["sync"]);
    assert!(text(&out).contains("marked"), "{}", text(&out));
    let marked: Vec<String> = src.target_dataset("items").into_iter().filter(|r| r.data["synced"] == true).map(|r| r.id).collect();
    assert_eq!(marked.len(), 200, "every synced record is marked after the restart");
    assert!(!marked.contains(&"bad".to_string()), "the record that failed validation is not");
    // At most the one mark in flight at the kill is sent twice (max_concurrency = 1).
    assert!(patches(&src) <= 201, "{} marks for 200 records", patches(&src));
}
