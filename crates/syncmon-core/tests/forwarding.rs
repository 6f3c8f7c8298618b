//! The forwarding sink (DESIGN §4: "target API rejects an upsert", "target API transient
//! failure") against the simulated target: the same mock process is the source and, under
//! `/target`, the target. Faults aimed at `target:items` hit only the target.

mod common;

use common::*;
use std::time::{Duration, Instant};
use syncmon_core::state::{FailedStage, FailedState, Resolution};
use syncmon_core::store::FailedFilter;
use syncmon_mock::{Fault, FaultKind, MockConfig, MockServer, RequestInfo};
use tokio_util::sync::CancellationToken;

/// `max_retries = 3` and one request at a time, so that a fault of N responses hits exactly the
/// first record's tries.
fn target_section(base_url: &str, extra: &str) -> String {
    format!(
        "\n[[target]]\nid = \"dst\"\nbase_url = \"{base_url}/target\"\nbackoff_base = \"20ms\"\nbackoff_max = \"100ms\"\n\
         max_retries = 3\nmax_concurrency = 1\nrequests_per_second = 1000\ntimeout = \"2s\"\n{extra}\n"
    )
}

fn forwarding_config(mock: &MockServer, target_extra: &str) -> String {
    config_text(&mock.base_url(), &["items"], "", "forward_to = \"dst\"") + &target_section(&mock.base_url(), target_extra)
}

async fn forwarding(records: usize) -> Harness {
    let mock = MockServer::start(MockConfig { entities: entities(&[("items", records)]), ..Default::default() }).await.unwrap();
    let text = forwarding_config(&mock, "");
    Harness::with_config(mock, text).await
}

fn at_target(f: Fault) -> Fault {
    Fault { entity: Some("target:items".into()), ..f }
}

fn target_calls(h: &Harness) -> Vec<RequestInfo> {
    h.mock.requests().into_iter().filter(|r| r.path.starts_with("/target/")).collect()
}

/// The target holds exactly the source: same ids, and each body is the source's record
/// (rowVersion included).
fn assert_target_converged(h: &Harness) {
    let target: std::collections::BTreeMap<_, _> = h.mock.target_dataset("items").into_iter().map(|r| (r.id.clone(), r)).collect();
    let source = h.source("items");
    let missing: Vec<_> = source.keys().filter(|k| !target.contains_key(*k)).take(5).collect();
    let extra: Vec<_> = target.keys().filter(|k| !source.contains_key(*k)).take(5).collect();
    assert!(missing.is_empty() && extra.is_empty(), "target lacks {missing:?}, has extra {extra:?} ({} vs {})", target.len(), source.len());
    for (id, (v, data)) in &source {
        assert_eq!(&target[id].row_version, v, "items/{id}: the target must hold the source's version");
        assert_eq!(&target[id].data, data, "items/{id}: the target must hold the record as the source served it");
    }
    let status = h.sm.status().unwrap().remove(0);
    assert_eq!(status.forward_pending, 0, "nothing left in the outbox");
}

fn deliver_failures(h: &Harness) -> Vec<syncmon_core::store::FailedItem> {
    h.sm.failed_items(&FailedFilter { stage: Some(FailedStage::Deliver), ..Default::default() }, None, 100).unwrap()
}

#[tokio::test]
async fn the_initial_sync_forwards_every_record_and_changes_follow() {
    let h = forwarding(250).await;
    let r = h.sync_ok("items").await;
    let f = r.forwarded.clone().expect("a forwarding entity reports its delivery");
    assert_eq!((f.delivered, f.failed_new, f.pending), (250, 0, 0), "{}", r.summary());
    assert!(r.summary().contains("forwarded 250 to dst"), "{}", r.summary());
    assert_target_converged(&h);
    h.assert_converged("items");
    let puts = target_calls(&h);
    assert_eq!(puts.len(), 250, "one PUT per record");
    let first = &puts[0];
    assert_eq!(first.method, "PUT");
    assert!(first.headers.iter().any(|(k, v)| k == "content-type" && v == "application/json"));
    assert!(!first.headers.iter().any(|(k, _)| k == "if-match" || k == "x-server-cache-id"));

    h.mock.mutate("items", 5);
    h.mock.insert("items", 3);
    let r = h.sync_ok("items").await;
    assert_eq!(r.forwarded.unwrap().delivered, 8, "only the changes are forwarded");
    assert_target_converged(&h);

    // A re-read of unchanged records (a lookback sweep, here a checkpoint reset) writes nothing,
    // so forwards nothing.
    h.sm.reset_checkpoint("src/items").await.unwrap();
    let r = h.sync_ok("items").await;
    assert_eq!(r.records as usize, h.source("items").len(), "everything was read again");
    assert_eq!(r.forwarded.unwrap().delivered, 0);
    let log = h.sm.requests(None, false, None, 1000).unwrap();
    assert!(
        log.iter().any(|l| l.connection == "dst" && l.method == "PUT" && l.tracking_id.is_some()),
        "target calls are in the request log with their Trackingid"
    );
    // The entity's request log shows its source calls and the forwarding's target calls.
    let entity_log = h.sm.requests(Some("src/items"), false, None, 1000).unwrap();
    assert!(entity_log.iter().any(|l| l.connection == "src" && l.method == "GET"), "the source calls");
    assert!(
        entity_log.iter().any(|l| l.connection == "dst" && l.entity.as_deref() == Some("src/items") && l.method == "PUT"),
        "the target calls made for src/items"
    );
}

#[tokio::test]
async fn a_target_that_fails_a_few_times_is_retried_and_gets_everything() {
    let h = forwarding(100).await;
    h.mock.inject(at_target(Fault { kind: FaultKind::Status(503), entity: None, times: 2 }));
    h.mock.inject(at_target(Fault { kind: FaultKind::Reset, entity: None, times: 1 }));
    let r = h.sync_ok("items").await;
    assert_eq!(r.forwarded.unwrap().failed_new, 0);
    assert!(deliver_failures(&h).is_empty());
    assert_target_converged(&h);
    assert_eq!(target_calls(&h).len(), 100 + 3, "each failure retried once more");
}

#[tokio::test]
async fn a_record_whose_retries_run_out_becomes_a_failed_item_and_the_rest_goes_on() {
    let h = forwarding(60).await;
    let max = max_version(&h, "items").to_string();
    // One try plus max_retries = 3: the first record's every try.
    h.mock.inject(at_target(Fault { kind: FaultKind::Status(503), entity: None, times: 4 }));
    let r = h.sync_ok("items").await;
    assert_eq!(h.checkpoint("items"), max, "the checkpoint never waits for delivery");
    let f = r.forwarded.unwrap();
    assert_eq!((f.delivered, f.failed_new, f.pending), (59, 1, 0));

    let items = deliver_failures(&h);
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!((item.stage, item.error_kind.as_str(), item.http_status), (FailedStage::Deliver, "target_unavailable", Some(503)));
    let last_503 = target_calls(&h).into_iter().rfind(|c| c.status == 503).unwrap();
    assert_eq!(item.tracking_id.as_deref(), Some(last_503.tracking_id.as_str()), "the Trackingid of the target's last answer");
    assert!(item.message.contains("503"), "{}", item.message);
    let record_id = item.record_id.clone().unwrap();
    assert!(!h.mock.target_dataset("items").iter().any(|r| r.id == record_id));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&item.payload).unwrap()["id"], record_id.as_str(), "the payload is the record");
    assert_eq!(h.sm.status().unwrap()[0].pending_failed, 1);

    // Another cycle neither re-sends it nor piles up a duplicate; replay does, and resolves it.
    h.sync_ok("items").await;
    assert_eq!(deliver_failures(&h).len(), 1);
    let report = h.sm.replay(&[item.id], &CancellationToken::new()).await.unwrap();
    assert_eq!((report.replayed, report.still_failing), (1, 0));
    assert_eq!(h.sm.failed_item(item.id).unwrap().state, FailedState::Resolved);
    assert_target_converged(&h);
}

#[tokio::test]
async fn a_rejected_record_fails_at_once_and_replay_after_the_fix_delivers_it() {
    let h = forwarding(40).await;
    h.mock.inject(at_target(Fault { kind: FaultKind::Status(422), entity: None, times: 1 }));
    let r = h.sync_ok("items").await;
    assert_eq!(r.forwarded.unwrap().failed_new, 1);
    assert_eq!(target_calls(&h).len(), 40, "a 4xx is not retried");
    let items = deliver_failures(&h);
    let item = &items[0];
    assert_eq!((item.error_kind.as_str(), item.http_status), ("target_rejected", Some(422)));
    assert!(item.message.contains("unprocessable_entity"), "the target's {{code, message}} is kept: {}", item.message);
    assert!(item.tracking_id.is_some());

    // Still refused: the item stays pending with one more attempt and the new Trackingid.
    h.mock.inject(at_target(Fault { kind: FaultKind::Status(400), entity: None, times: 1 }));
    let report = h.sm.replay(&[item.id], &CancellationToken::new()).await.unwrap();
    assert_eq!(report.still_failing, 1);
    let again = h.sm.failed_item(item.id).unwrap();
    assert_eq!((again.state, again.attempts, again.http_status), (FailedState::Pending, 2, Some(400)));
    assert_ne!(again.tracking_id, item.tracking_id);

    // Fixed at the target: replay delivers it and resolves the item.
    let report =
        h.sm.replay(&h.sm.failed_ids(&FailedFilter { stage: Some(FailedStage::Deliver), ..Default::default() }).unwrap(), &CancellationToken::new())
            .await
            .unwrap();
    assert_eq!((report.replayed, report.still_failing), (1, 0));
    assert_eq!(h.sm.failed_item(item.id).unwrap().resolution, Some(Resolution::Replayed));
    assert_target_converged(&h);
}

#[tokio::test]
async fn a_replay_sends_the_newer_version_when_the_replica_has_one() {
    let mut h = forwarding(20).await;
    h.mock.inject(at_target(Fault { kind: FaultKind::Status(409), entity: None, times: 1 }));
    h.sync_ok("items").await;
    let item = deliver_failures(&h).remove(0);
    let record_id = item.record_id.clone().unwrap();
    // Every record changes at the source and reaches the replica, but not the target (no
    // credentials for a while): the replica now holds a newer version than the failed item.
    assert!(h.mock.mutate("items", 20).contains(&record_id));
    h.config_text = forwarding_config(&h.mock, "auth = \"bearer\"\nsecret_env = \"SYNCMON_TEST_FORWARDING_UNSET\"");
    h.reopen();
    assert_eq!(h.sync_ok("items").await.forwarded.unwrap().pending, 20);
    h.config_text = forwarding_config(&h.mock, "");
    h.reopen();
    let report = h.sm.replay(&[item.id], &CancellationToken::new()).await.unwrap();
    assert_eq!((report.superseded, report.replayed), (1, 0), "the newer version went out instead");
    assert_eq!(h.sm.failed_item(item.id).unwrap().resolution, Some(Resolution::Superseded));
    let sent = h.mock.target_dataset("items").into_iter().find(|r| r.id == record_id).unwrap();
    assert_eq!(sent.row_version, h.source("items")[&record_id].0);
    assert_eq!(h.sm.status().unwrap()[0].forward_pending, 19, "the replay delivered that record's queued change");
    h.sync_ok("items").await;
    assert_target_converged(&h);
}

#[tokio::test]
async fn a_rate_limited_target_is_waited_for_as_told() {
    let h = forwarding(30).await;
    h.mock.inject(at_target(Fault { kind: FaultKind::RateLimit { retry_after_secs: 1 }, entity: None, times: 1 }));
    let started = Instant::now();
    let r = h.sync_ok("items").await;
    assert!(started.elapsed() >= Duration::from_millis(950), "Retry-After: 1 must be honoured");
    assert_eq!(r.forwarded.unwrap().failed_new, 0);
    assert_target_converged(&h);
}

#[tokio::test]
async fn deletions_found_by_a_resync_are_deleted_at_the_target() {
    let h = forwarding(50).await;
    h.sync_ok("items").await;
    let gone = h.mock.delete("items", 3);
    let r = h.sm.resync("items", false, &CancellationToken::new()).await.unwrap();
    assert_eq!(r.pass.unwrap().deleted, 3);
    assert_eq!(r.forwarded.unwrap().delivered, 3);
    let deletes: Vec<_> = target_calls(&h).into_iter().filter(|c| c.method == "DELETE").collect();
    assert_eq!(deletes.len(), 3);
    assert!(deletes.iter().all(|d| gone.iter().any(|g| d.path.ends_with(g.as_str())) && d.status == 204));
    assert_target_converged(&h);
}

#[tokio::test]
async fn the_outbox_survives_a_restart_and_credentials_trouble_keeps_changes_queued() {
    let mock = MockServer::start(MockConfig { entities: entities(&[("items", 80)]), ..Default::default() }).await.unwrap();
    // No usable credentials: nothing can be delivered, and that is not the records' fault.
    let text = forwarding_config(&mock, "auth = \"bearer\"\nsecret_env = \"SYNCMON_TEST_FORWARDING_UNSET\"");
    let mut h = Harness::with_config(mock, text).await;
    let r = h.sync_ok("items").await;
    let f = r.forwarded.unwrap();
    assert_eq!((f.delivered, f.failed_new, f.pending), (0, 0, 80));
    assert!(f.error.as_deref().unwrap_or("").contains("SYNCMON_TEST_FORWARDING_UNSET"), "{:?}", f.error);
    let status = h.sm.status().unwrap().remove(0);
    assert_eq!(status.forward_pending, 80);
    assert!(status.forward_error.is_some());
    assert!(deliver_failures(&h).is_empty());
    assert!(target_calls(&h).is_empty());

    // The process ends with the changes undelivered; the next one (fixed config) delivers them.
    h.config_text = forwarding_config(&h.mock, "");
    h.reopen();
    assert_eq!(h.sm.status().unwrap()[0].forward_pending, 80, "the outbox is on disk");
    let r = h.sync_ok("items").await;
    assert_eq!(r.records, 0, "nothing new at the source");
    assert_eq!(r.forwarded.unwrap().delivered, 80);
    assert_target_converged(&h);
}

#[tokio::test]
async fn turning_forwarding_on_for_a_synced_entity_sends_it_all() {
    let mock = MockServer::start(MockConfig { entities: entities(&[("items", 70)]), ..Default::default() }).await.unwrap();
    let plain = config_text(&mock.base_url(), &["items"], "", "") + &target_section(&mock.base_url(), "");
    let mut h = Harness::with_config(mock, plain).await;
    let r = h.sync_ok("items").await;
    assert!(r.forwarded.is_none());
    assert_eq!(h.sm.status().unwrap()[0].forward_pending, 0);
    h.config_text = forwarding_config(&h.mock, "");
    h.reopen();
    assert_eq!(h.sm.status().unwrap()[0].forward_pending, 70);
    h.sync_ok("items").await;
    assert_target_converged(&h);
}

#[tokio::test]
async fn the_agent_delivers_as_it_syncs() {
    let h = forwarding(120).await;
    let cancel = CancellationToken::new();
    let agent = tokio::spawn({
        let (sm, cancel) = (h.sm.clone(), cancel.clone());
        async move { sm.run(cancel).await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.mock.target_dataset("items").len() < 120 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.mock.mutate("items", 4);
    assert!(h.sm.nudge("src", "items"));
    let changed = |h: &Harness| h.source("items").iter().all(|(id, (v, _))| h.mock.target_dataset("items").iter().any(|t| &t.id == id && &t.row_version == v));
    while !changed(&h) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    agent.await.unwrap().unwrap();
    assert_target_converged(&h);
}

#[tokio::test]
async fn a_target_that_stays_down_opens_its_circuit_and_the_changes_wait() {
    let mock = MockServer::start(MockConfig { entities: entities(&[("items", 30)]), ..Default::default() }).await.unwrap();
    let text = forwarding_config(&mock, "breaker_threshold = 2\nbreaker_cooldown = \"300ms\"");
    let h = Harness::with_config(mock, text).await;
    h.mock.inject(at_target(Fault { kind: FaultKind::Status(502), entity: None, times: 0 }));
    let r = h.sync_ok("items").await;
    let f = r.forwarded.unwrap();
    assert_eq!((f.delivered, f.failed_new, f.pending), (0, 2, 28), "two records ran out of retries, then the circuit opened");
    assert!(f.next_attempt_at.is_some());
    assert!(f.error.as_deref().unwrap_or("").contains("delivery pauses"), "{:?}", f.error);
    assert_eq!(target_calls(&h).len(), 2 * 4, "no call while the circuit is open");
    let s = h.sm.status().unwrap().remove(0);
    assert_eq!((s.forward_pending, s.pending_failed), (28, 2));
    assert!(s.forward_error.is_some());

    h.mock.clear_faults();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let r = h.sync_ok("items").await;
    assert_eq!(r.forwarded.unwrap().delivered, 28);
    assert!(h.sm.status().unwrap()[0].forward_error.is_none());
    let ids = h.sm.failed_ids(&FailedFilter { stage: Some(FailedStage::Deliver), ..Default::default() }).unwrap();
    assert_eq!(h.sm.replay(&ids, &CancellationToken::new()).await.unwrap().replayed, 2);
    assert_target_converged(&h);
}

#[tokio::test]
async fn every_delivery_carries_its_idempotency_key_in_the_configured_header() {
    let h = forwarding(20).await;
    h.sync_ok("items").await;
    assert_target_converged(&h);
    let versions: std::collections::BTreeMap<_, _> = h.mock.target_dataset("items").into_iter().map(|r| (r.id, r.row_version)).collect();
    let puts = target_calls(&h);
    assert_eq!(puts.len(), 20);
    for put in &puts {
        let id = put.path.rsplit('/').next().unwrap();
        let want = format!("src/items/{id}/{}", versions[id]);
        let got = put.headers.iter().find(|(k, _)| k == "idempotency-key").map(|(_, v)| v.as_str());
        assert_eq!(got, Some(want.as_str()), "PUT {}", put.path);
    }

    // Another header name, and a changed record gets a new key.
    let mock = MockServer::start(MockConfig { entities: entities(&[("items", 3)]), ..Default::default() }).await.unwrap();
    let text = forwarding_config(&mock, "idempotency_header = \"X-Request-Key\"");
    let h = Harness::with_config(mock, text).await;
    h.sync_ok("items").await;
    h.mock.mutate("items", 1);
    h.sync_ok("items").await;
    let keys: Vec<String> = target_calls(&h)
        .iter()
        .map(|c| {
            assert!(!c.headers.iter().any(|(k, _)| k == "idempotency-key"), "only the configured header");
            c.headers.iter().find(|(k, _)| k == "x-request-key").map(|(_, v)| v.clone()).expect("the configured header arrives")
        })
        .collect();
    assert_eq!(keys.len(), 4);
    let unique: std::collections::BTreeSet<_> = keys.iter().collect();
    assert_eq!(unique.len(), 4, "a new version is a new key: {keys:?}");
}

#[tokio::test]
async fn never_more_than_max_concurrency_deliveries_are_in_flight() {
    let mock = MockServer::start(MockConfig { entities: entities(&[("items", 60)]), ..Default::default() }).await.unwrap();
    mock.set_target_delay(Duration::from_millis(20));
    let text = forwarding_config(&mock, "").replace("max_concurrency = 1\n", "max_concurrency = 3\n");
    assert!(text.contains("max_concurrency = 3"));
    let h = Harness::with_config(mock, text).await;
    let r = h.sync_ok("items").await;
    assert_eq!(r.forwarded.unwrap().delivered, 60);
    assert_target_converged(&h);
    let peak = h.mock.target_peak_in_flight();
    assert!(peak <= 3, "{peak} deliveries were in flight at once; max_concurrency is 3");
    assert!(peak >= 2, "with 60 records to a slow target, deliveries overlap (peak {peak})");
}

#[tokio::test]
async fn the_field_mapping_renames_and_drops_fields_on_the_way_to_the_target_only() {
    let mock = MockServer::start(MockConfig { entities: entities(&[("items", 10)]), ..Default::default() }).await.unwrap();
    let sample = mock.dataset("items").remove(0).data;
    let mut fields = sample.as_object().unwrap().keys().filter(|k| *k != "id" && *k != "rowVersion").cloned();
    let (renamed, dropped) = (fields.next().expect("records have fields"), fields.next().expect("records have two fields"));
    let entity_extra = format!("forward_to = \"dst\"\nforward_rename = {{ {renamed} = \"renamedField\" }}\nforward_drop = [\"{dropped}\"]");
    let text = config_text(&mock.base_url(), &["items"], "", &entity_extra) + &target_section(&mock.base_url(), "");
    let h = Harness::with_config(mock, text).await;
    let r = h.sync_ok("items").await;
    assert_eq!(r.forwarded.unwrap().delivered, 10);
    let source = h.source("items");
    let target = h.mock.target_dataset("items");
    assert_eq!(target.len(), 10);
    for t in &target {
        let (_, src) = &source[&t.id];
        let body = t.data.as_object().unwrap();
        assert!(!body.contains_key(&dropped), "{dropped} is dropped: {body:?}");
        assert!(!body.contains_key(&renamed), "{renamed} is renamed: {body:?}");
        assert_eq!(body.get("renamedField"), src.get(&renamed), "the value moves to the new name");
        assert_eq!(body.len(), src.as_object().unwrap().len() - 1, "nothing else changes");
    }
    // The replica keeps the source's names.
    let replica = h.replica("items");
    let (_, row) = &replica[&target[0].id];
    assert!(row.get(&renamed).is_some() && row.get(&dropped).is_some());
}

/// Lag counts delivery: an entity whose changes wait for its target is not "in sync", even when
/// its source is read up to date; the status says what waits and why.
#[tokio::test]
async fn changes_waiting_for_the_target_count_as_lag() {
    let mock = MockServer::start(MockConfig { entities: entities(&[("items", 30)]), ..Default::default() }).await.unwrap();
    let text = forwarding_config(&mock, "breaker_threshold = 1\nbreaker_cooldown = \"1h\"");
    let clock = std::sync::Arc::new(syncmon_core::TestClock::fixed(1_700_000_000_000));
    let dir = tempfile::tempdir().unwrap();
    let sm = syncmon_core::Syncmon::open_with_clock(syncmon_core::Config::parse(&text).unwrap(), dir.path(), clock.clone()).unwrap();
    mock.inject(at_target(Fault { kind: FaultKind::Status(503), entity: None, times: 0 }));
    let sel = sm.select(None, &["items".to_string()]).unwrap();
    let r = sm.sync_once(&sel, &CancellationToken::new()).await.remove(0);
    assert!(r.forwarded.as_ref().unwrap().pending > 0, "{}", r.summary());
    assert_eq!(sm.status().unwrap()[0].health, syncmon_core::Health::Healthy, "just queued: not late yet");

    // Fifteen minutes on (the poll interval is 5 min), the source is read again (nothing new)
    // but the changes still wait.
    clock.advance(Duration::from_secs(900));
    sm.sync_once(&sel, &CancellationToken::new()).await;
    let s = sm.status().unwrap().remove(0);
    assert_eq!(s.health, syncmon_core::Health::Lagging, "{s:?}");
    let why = s.reason.unwrap_or_default();
    assert!(why.contains("29 changes wait for target `dst` for 15 min") && why.contains("keeps failing"), "{why}");
    assert_eq!(s.lag_seconds, Some(900), "the lag is the oldest waiting change's");
}
