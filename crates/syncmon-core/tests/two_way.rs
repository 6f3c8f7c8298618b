//! Two-way flows (issue: "Two-way flows, write-back, and targets you can manage") against two
//! simulated systems on loopback. Each system is a simulated target that also serves what it
//! holds as a rowVersion feed: connection `a` reads system A and forwards `items` to B, connection
//! `b` reads B and forwards `items` back to A. Edits "by the systems' own users" are writes
//! straight into each target's store, which give them that system's next version.

use std::collections::BTreeMap;
use std::sync::Arc;
use syncmon_core::config::Config;
use syncmon_core::engine::CycleReport;
use syncmon_core::state::{FailedStage, FailedState};
use syncmon_core::store::FailedFilter;
use syncmon_core::Syncmon;
use syncmon_mock::{MockConfig, MockServer};
use tokio_util::sync::CancellationToken;

struct Pair {
    _dir: tempfile::TempDir,
    a: MockServer,
    b: MockServer,
    sm: Arc<Syncmon>,
}

fn pair_config(a: &MockServer, b: &MockServer, conflict: &str) -> String {
    let mut s = String::new();
    for (id, other, mock) in [("a", "b", a), ("b", "a", b)] {
        s.push_str(&format!(
            "[[connection]]\nid = \"{id}\"\nbase_url = \"{base}/target\"\nbackoff_base = \"20ms\"\nbackoff_max = \"100ms\"\n\
             requests_per_second = 1000\ntimeout = \"2s\"\n\
             [[connection.entity]]\nname = \"items\"\npage_size = 50\nforward_to = \"{other}\"\n{conflict}\n",
            base = mock.base_url()
        ));
    }
    for (id, mock) in [("a", a), ("b", b)] {
        s.push_str(&format!(
            "[[target]]\nid = \"{id}\"\nbase_url = \"{base}/target\"\nmax_retries = 2\nbackoff_base = \"20ms\"\nbackoff_max = \"100ms\"\n\
             requests_per_second = 1000\ntimeout = \"2s\"\nignore_fields = [\"touchedBy\"]\n",
            base = mock.base_url()
        ));
    }
    s
}

async fn start(conflict: &str) -> Pair {
    let a = MockServer::start(MockConfig { entities: Vec::new(), ..Default::default() }).await.unwrap();
    let b = MockServer::start(MockConfig { entities: Vec::new(), ..Default::default() }).await.unwrap();
    let text = pair_config(&a, &b, conflict);
    let config = Config::parse(&text).unwrap_or_else(|e| panic!("the pair's config must parse: {e}\n{text}"));
    let dir = tempfile::tempdir().unwrap();
    let sm = Arc::new(Syncmon::open(config, dir.path()).unwrap());
    Pair { _dir: dir, a, b, sm }
}

fn record(id: &str, name: &str, qty: u64) -> serde_json::Value {
    serde_json::json!({ "id": id, "name": name, "qty": qty })
}

/// A user of the system changes a record (keeps its other fields).
fn edit(sys: &MockServer, id: &str, name: &str) {
    let mut body = sys.target_get("items", id).unwrap_or_else(|| record(id, "", 0));
    body["name"] = name.into();
    sys.target_put("items", id, body);
}

/// What a system holds, without the fields Syncmon does not compare (versions).
fn content(sys: &MockServer) -> BTreeMap<String, serde_json::Value> {
    sys.target_dataset("items")
        .into_iter()
        .map(|r| {
            let mut d = r.data;
            d.as_object_mut().unwrap().remove("rowVersion");
            (r.id, d)
        })
        .collect()
}

fn writes(sys: &MockServer) -> usize {
    sys.requests().iter().filter(|r| r.method == "PUT" || r.method == "DELETE").count()
}

impl Pair {
    /// One round: each side's cycle and delivery, `a` first.
    async fn round(&self) -> Vec<CycleReport> {
        let mut out = Vec::new();
        for name in ["a/items", "b/items"] {
            let sel = self.sm.select(None, &[name.to_string()]).unwrap();
            let r = self.sm.sync_once(&sel, &CancellationToken::new()).await.remove(0);
            assert!(r.error.is_none(), "{name}: {}", r.summary());
            out.push(r);
        }
        out
    }

    fn conflicts(&self) -> Vec<syncmon_core::FailedItem> {
        self.sm.failed_items(&FailedFilter { stage: Some(FailedStage::Conflict), ..Default::default() }, None, 100).unwrap()
    }
}

#[tokio::test]
async fn a_two_way_pair_with_edits_on_both_sides_converges_and_then_sends_nothing() {
    let p = start("").await;
    for i in 0..30 {
        p.a.target_put("items", &format!("a{i:02}"), record(&format!("a{i:02}"), "from a", i));
    }
    for i in 0..20 {
        p.b.target_put("items", &format!("b{i:02}"), record(&format!("b{i:02}"), "from b", i));
    }
    p.round().await;
    assert_eq!(content(&p.a).len(), 50, "A got B's records");
    assert_eq!(content(&p.a), content(&p.b), "both systems hold the same records after the first round");

    // Edits on both sides, different records, over many rounds.
    for round in 0..8u64 {
        edit(&p.a, &format!("a{:02}", round), &format!("a-edit {round}"));
        edit(&p.a, &format!("b{:02}", round + 10), &format!("a-edit {round}"));
        edit(&p.b, &format!("a{:02}", round + 15), &format!("b-edit {round}"));
        p.b.target_put("items", &format!("new{round}"), record(&format!("new{round}"), "new on b", round));
        let r = p.round().await;
        assert_eq!(content(&p.a), content(&p.b), "round {round}: both systems hold the same content");
        // Exactly the round's own edits travel: Syncmon's writes coming back are not queued again.
        let sent: Vec<(u64, u64)> = r.iter().map(|r| r.forwarded.as_ref().map(|f| (f.delivered, f.unchanged)).unwrap()).collect();
        assert_eq!(sent, vec![(2, 0), (2, 0)], "round {round}: {} / {}", r[0].summary(), r[1].summary());
    }
    assert!(p.conflicts().is_empty(), "edits of different records are no conflict");
    assert_eq!(content(&p.a)["a03"]["name"], "a-edit 3");
    assert_eq!(content(&p.b)["a17"]["name"], "b-edit 2");
    assert_eq!(content(&p.a)["new7"]["name"], "new on b");

    // Quiet: one more round brings back Syncmon's own last writes; after that nothing is sent.
    p.round().await;
    let (wa, wb) = (writes(&p.a), writes(&p.b));
    for _ in 0..3 {
        let reports = p.round().await;
        for r in &reports {
            let f = r.forwarded.as_ref().unwrap();
            assert_eq!((f.delivered, f.pending), (0, 0), "a quiet pair delivers nothing: {}", r.summary());
        }
    }
    assert_eq!((writes(&p.a), writes(&p.b)), (wa, wb), "no write reaches either system once they are level");
    let status = p.sm.status().unwrap();
    assert!(status.iter().all(|s| s.forward_pending == 0), "both outboxes empty");
    assert_eq!(status.iter().map(|s| s.replica_rows).collect::<Vec<_>>(), vec![58, 58]);
}

/// The record both sides edit between two syncs; returns the pair after the round that meets it.
async fn edited_on_both_sides(conflict: &str) -> Pair {
    let p = start(conflict).await;
    for i in 0..5 {
        p.a.target_put("items", &format!("r{i}"), record(&format!("r{i}"), "start", i));
    }
    p.round().await;
    p.round().await;
    assert_eq!(content(&p.a), content(&p.b));
    edit(&p.a, "r2", "changed on a");
    edit(&p.b, "r2", "changed on b");
    edit(&p.b, "r3", "only b");
    p.round().await;
    p.round().await;
    p
}

#[tokio::test]
async fn a_record_edited_on_both_sides_ends_by_the_policy() {
    for (policy, winner) in [("conflict = \"a\"", "changed on a"), ("conflict = \"b\"", "changed on b"), ("conflict = \"newest\"", "changed on b")] {
        let p = edited_on_both_sides(policy).await;
        assert!(p.conflicts().is_empty(), "{policy}: settled by the policy, no failed item");
        assert_eq!(content(&p.a), content(&p.b), "{policy}: both systems level");
        assert_eq!(content(&p.a)["r2"]["name"], winner, "{policy}");
        assert_eq!(content(&p.a)["r3"]["name"], "only b", "{policy}: the other edit went through");
        let settled =
            p.sm.recent_events(200).into_iter().any(|e| matches!(&e.kind, syncmon_core::EventKind::ConflictSettled { record_id, .. } if record_id == "r2"));
        assert!(settled, "{policy}: the activity says how the conflict ended");
        let (wa, wb) = (writes(&p.a), writes(&p.b));
        p.round().await;
        assert_eq!((writes(&p.a), writes(&p.b)), (wa, wb), "{policy}: quiet afterwards");
    }
}

#[tokio::test]
async fn a_manual_conflict_holds_both_versions_until_one_is_kept() {
    let p = edited_on_both_sides("").await;
    let conflicts = p.conflicts();
    assert_eq!(conflicts.len(), 1, "one item for the record, whichever side met it");
    let c = &conflicts[0];
    assert_eq!((c.record_id.as_deref(), c.state), (Some("r2"), FailedState::Pending));
    let both: serde_json::Value = serde_json::from_str(&c.payload).unwrap();
    assert_eq!(both["a"]["name"], "changed on a");
    assert_eq!(both["b"]["name"], "changed on b");
    assert!(both["a"].get("rowVersion").is_none(), "the versions each system sets are left out of the comparison: {both}");
    assert!(c.message.contains("--keep a|b"), "{}", c.message);
    // Neither side is overwritten while it waits; the rest flows.
    assert_eq!(content(&p.a)["r2"]["name"], "changed on a");
    assert_eq!(content(&p.b)["r2"]["name"], "changed on b");
    assert_eq!(content(&p.a)["r3"]["name"], "only b");
    p.round().await;
    assert_eq!(p.conflicts().len(), 1, "still one item");

    let cancel = CancellationToken::new();
    let err = p.sm.resolve_conflict(c.id, "c", &cancel).await.unwrap_err();
    assert!(err.to_string().contains("`a` or `b`"), "{err}");
    let report = p.sm.resolve_conflict(c.id, "b", &cancel).await.unwrap();
    assert_eq!(report.delivered, 1, "{}", report.summary());
    assert_eq!(content(&p.a)["r2"]["name"], "changed on b", "b's version reached a");
    assert!(p.conflicts().is_empty());
    let item = p.sm.failed_item(c.id).unwrap();
    assert_eq!(item.state, FailedState::Resolved);
    p.round().await;
    let (wa, wb) = (writes(&p.a), writes(&p.b));
    p.round().await;
    assert_eq!((writes(&p.a), writes(&p.b)), (wa, wb), "quiet after the conflict is settled");
    assert_eq!(content(&p.a), content(&p.b));
}

#[test]
fn conflict_is_refused_outside_a_pair_and_must_name_one_of_its_systems() {
    let text = "[[connection]]\nid = \"a\"\nbase_url = \"http://127.0.0.1:1\"\n[[connection.entity]]\nname = \"items\"\nconflict = \"newest\"\n";
    let err = Config::parse(text).unwrap_err().to_string();
    assert!(err.contains("conflict applies to a two-way pair"), "{err}");
    let a = "http://127.0.0.1:1";
    let text = format!(
        "[[connection]]\nid = \"a\"\nbase_url = \"{a}\"\n[[connection.entity]]\nname = \"items\"\nforward_to = \"b\"\nconflict = \"c\"\n\
         [[connection]]\nid = \"b\"\nbase_url = \"{a}\"\n[[connection.entity]]\nname = \"items\"\nforward_to = \"a\"\n\
         [[target]]\nid = \"a\"\nbase_url = \"{a}\"\n[[target]]\nid = \"b\"\nbase_url = \"{a}\"\n"
    );
    let err = Config::parse(&text).unwrap_err().to_string();
    assert!(err.contains("conflict must be \"manual\", \"newest\", \"a\" or \"b\""), "{err}");
    let err = Config::parse(
        &text.replace("id = \"b\"\nbase_url = \"http://127.0.0.1:1\"\n[[connection", "id = \"B\"\nbase_url = \"http://127.0.0.1:1\"\n[[connection"),
    );
    assert!(err.is_err());
}
