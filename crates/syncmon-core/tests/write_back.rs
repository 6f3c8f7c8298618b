//! Flag write-back (seed 003's flag-based sync): once a record is in the replica (and delivered,
//! when the entity forwards), Syncmon marks it at the source with the entity's `write_back` call.
//! The source here is a simulated target serving what it holds as a rowVersion feed, so records
//! carry any field (`synced`) and PATCH merges fields into them; `?synced=false` in the entity's
//! path filters the feed to what still needs syncing.

use std::sync::Arc;
use syncmon_core::config::Config;
use syncmon_core::engine::CycleReport;
use syncmon_core::state::{FailedStage, FailedState};
use syncmon_core::store::FailedFilter;
use syncmon_core::Syncmon;
use syncmon_mock::{Fault, FaultKind, MockConfig, MockServer};
use tokio_util::sync::CancellationToken;

const MARK: &str = "write_back = { method = \"PATCH\", path = \"/items/{id}\", body = '{\"synced\": true}' }";

struct Setup {
    _dir: tempfile::TempDir,
    src: MockServer,
    sm: Arc<Syncmon>,
}

async fn mock() -> MockServer {
    MockServer::start(MockConfig { entities: Vec::new(), ..Default::default() }).await.unwrap()
}

fn seed(src: &MockServer, n: usize) {
    for i in 0..n {
        src.target_put("items", &format!("r{i:03}"), serde_json::json!({ "id": format!("r{i:03}"), "name": format!("item {i}"), "synced": false }));
    }
    // Two records that never pass validation: no `name` (a required field), and no id at all.
    src.target_put("items", "bad", serde_json::json!({ "id": "bad", "synced": false }));
    src.target_put("items", "noid", serde_json::json!({ "label": "no id", "synced": false }));
}

async fn setup(path: &str, extra: &str) -> Setup {
    let src = mock().await;
    seed(&src, 50);
    let text = format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{}/target\"\nbackoff_base = \"20ms\"\nbackoff_max = \"100ms\"\nrequests_per_second = 1000\nmax_retries = 2\n\
         [[connection.entity]]\nname = \"items\"\npath = \"{path}\"\nrequired_fields = [\"name\"]\n{MARK}\n{extra}",
        src.base_url()
    );
    let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let dir = tempfile::tempdir().unwrap();
    let sm = Arc::new(Syncmon::open(config, dir.path()).unwrap());
    Setup { _dir: dir, src, sm }
}

impl Setup {
    async fn sync(&self) -> CycleReport {
        let sel = self.sm.select(None, &["items".to_string()]).unwrap();
        self.sm.sync_once(&sel, &CancellationToken::new()).await.remove(0)
    }
    fn marked(&self) -> Vec<String> {
        self.src.target_dataset("items").into_iter().filter(|r| r.data["synced"] == true).map(|r| r.id).collect()
    }
    fn patches(&self) -> usize {
        self.src.requests().iter().filter(|r| r.method == "PATCH").count()
    }
}

#[tokio::test]
async fn write_back_marks_exactly_the_synced_records_and_the_filtered_feed_shrinks() {
    let s = setup("/items?synced=false", "").await;
    let r = s.sync().await;
    let wb = r.write_back.clone().expect("a write-back entity reports its marks");
    assert_eq!((wb.marked, wb.failed_new, wb.pending), (50, 0, 0), "{}", r.summary());
    assert!(r.summary().contains("marked 50 records at the source"), "{}", r.summary());
    let marked = s.marked();
    assert_eq!(marked.len(), 50);
    assert!(!marked.iter().any(|id| id == "bad" || id == "noid"), "records that failed validation are not marked");
    assert_eq!(s.patches(), 50, "one mark per record");

    // The feed now serves only what still needs syncing: the two bad records.
    let r = s.sync().await;
    assert_eq!(r.records, 0, "{}", r.summary());
    assert_eq!(r.write_back.unwrap().marked, 0);
    assert_eq!(s.patches(), 50);

    // A record edited at the source (and unflagged there) is synced and marked again.
    s.src.target_put("items", "r007", serde_json::json!({ "id": "r007", "name": "renamed", "synced": false }));
    let r = s.sync().await;
    assert_eq!((r.records, r.write_back.unwrap().marked), (1, 1));
    let row = s.sm.store().replica_row(&syncmon_core::EntityKey::new("src", "items"), "r007").unwrap().unwrap();
    assert!(row.1.contains("renamed"), "{row:?}");
    assert_eq!(s.patches(), 51);
}

#[tokio::test]
async fn a_mark_coming_back_through_an_unfiltered_feed_is_not_marked_again() {
    let s = setup("/items", "").await;
    s.sync().await;
    assert_eq!(s.patches(), 50);
    for _ in 0..3 {
        let r = s.sync().await;
        assert_eq!(r.write_back.as_ref().unwrap().marked, 0, "{}", r.summary());
    }
    assert_eq!(s.patches(), 50, "the marked versions come back holding the flag: no second mark, no loop");
    assert_eq!(s.marked().len(), 50);
}

#[tokio::test]
async fn a_refused_mark_is_a_failed_item_of_stage_write_back_and_replays() {
    let s = setup("/items?synced=false", "").await;
    s.src.inject(Fault { kind: FaultKind::Status(422), entity: Some("target:items:patch".into()), times: 1 });
    let r = s.sync().await;
    let wb = r.write_back.unwrap();
    assert_eq!((wb.marked, wb.failed_new), (49, 1), "one bad mark does not stop the others");
    let items = s.sm.failed_items(&FailedFilter { stage: Some(FailedStage::WriteBack), ..Default::default() }, None, 10).unwrap();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.http_status, Some(422));
    assert!(item.tracking_id.is_some(), "the refusal's Trackingid is kept");
    assert!(item.message.contains("PATCH") && item.message.contains("/target/items/"), "{}", item.message);
    let report = s.sm.replay(&[item.id], &CancellationToken::new()).await.unwrap();
    assert_eq!(report.replayed, 1);
    assert_eq!(s.sm.failed_item(item.id).unwrap().state, FailedState::Resolved);
    assert_eq!(s.marked().len(), 50);
}

#[tokio::test]
async fn a_forwarded_record_is_marked_once_the_target_has_it() {
    let dst = mock().await;
    let extra = format!(
        "forward_to = \"dst\"\n[[target]]\nid = \"dst\"\nbase_url = \"{}/target\"\nmax_retries = 1\nbackoff_base = \"10ms\"\nbackoff_max = \"20ms\"\nrequests_per_second = 1000\n",
        dst.base_url()
    );
    let s = setup("/items?synced=false", &extra).await;
    // The target refuses one record: that one is not synced, so not marked.
    dst.inject(Fault { kind: FaultKind::Status(422), entity: Some("target:items".into()), times: 1 });
    let r = s.sync().await;
    assert_eq!(r.forwarded.as_ref().unwrap().failed_new, 1, "{}", r.summary());
    let delivered: std::collections::BTreeSet<String> = dst.target_dataset("items").into_iter().map(|r| r.id).collect();
    let marked: std::collections::BTreeSet<String> = s.marked().into_iter().collect();
    assert_eq!(delivered.len(), 49);
    assert_eq!(marked, delivered, "exactly the delivered records are marked");
}
