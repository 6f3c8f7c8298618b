//! Every row of the failure table (DESIGN §4) against a source that misbehaves on purpose,
//! asserting both the outcome and the number of tries.

mod common;

use common::*;
use std::time::{Duration, Instant};
use syncmon_core::engine::Outcome;
use syncmon_core::source::FailureClass;
use syncmon_core::state::{FailedStage, FailedState, Resolution};
use syncmon_core::store::FailedFilter;
use syncmon_mock::{Fault, FaultKind, MockAuth, MockConfig};

fn fault(kind: FaultKind, times: u32) -> Fault {
    Fault { kind, entity: Some("items".into()), times }
}

fn data_calls(h: &Harness) -> usize {
    h.mock.requests().iter().filter(|r| r.path.starts_with("/items")).count()
}

/// A source with one entity, `items`, of `records` records; `conn_extra` in the connection.
async fn items(records: usize, conn_extra: &str) -> Harness {
    Harness::start(MockConfig { entities: entities(&[("items", records)]), ..Default::default() }, conn_extra, "").await
}

async fn small() -> Harness {
    items(250, "max_retries = 4").await
}

#[tokio::test]
async fn rate_limits_wait_for_retry_after_then_succeed() {
    let h = small().await;
    h.mock.inject(fault(FaultKind::RateLimit { retry_after_secs: 1 }, 1));
    let started = Instant::now();
    h.sync_ok("items").await;
    assert!(started.elapsed() >= Duration::from_millis(950), "Retry-After: 1 must be honoured");
    h.assert_converged("items");
    let limited: Vec<_> = h.sm.requests(Some("items"), true, None, 10).unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].status, Some(429));
    assert!(limited[0].tracking_id.is_some(), "the request log keeps the Trackingid of the 429");
}

#[tokio::test]
async fn server_errors_are_retried_until_they_heal() {
    for status in [500, 502, 503, 504] {
        let h = small().await;
        h.mock.inject(fault(FaultKind::Status(status), 3));
        h.sync_ok("items").await;
        h.assert_converged("items");
        assert_eq!(data_calls(&h), 3 + 3, "HTTP {status}: three failures then the three pages");
    }
}

#[tokio::test]
async fn resets_truncated_bodies_invalid_json_and_timeouts_are_retried() {
    for kind in [FaultKind::Reset, FaultKind::Truncated, FaultKind::InvalidJson, FaultKind::Slow { millis: 3000 }] {
        let h = small().await;
        h.mock.inject(fault(kind.clone(), 2));
        let r = h.sync_ok("items").await;
        h.assert_converged("items");
        let failed = h.sm.requests(Some("items"), false, None, 50).unwrap().iter().filter(|r| r.error.is_some() || r.status != Some(200)).count();
        assert!(failed >= 2 || matches!(kind, FaultKind::InvalidJson), "{kind:?}: both failures are logged ({failed}); {}", r.summary());
    }
}

#[tokio::test]
async fn a_source_that_stays_down_fails_the_cycle_keeping_the_trackingid_and_the_checkpoint() {
    let h = small().await;
    h.sync_ok("items").await;
    let checkpoint = h.checkpoint("items");
    h.mock.mutate("items", 5);
    h.mock.inject(fault(FaultKind::Status(503), 0));
    let r = h.sync("items").await;
    assert_eq!(r.outcome, Outcome::Failed);
    let err = r.error.clone().unwrap();
    assert_eq!(err.class, FailureClass::Transient);
    assert_eq!(err.http_status, Some(503));
    assert!(err.tracking_id.is_some(), "the failed call's Trackingid is kept");
    assert_eq!(data_calls(&h) - 3, 5, "one try plus max_retries = 4 retries");
    assert_eq!(h.checkpoint("items"), checkpoint, "the checkpoint does not move on a failed cycle");
    // One failed cycle on a transient error is inside the retry budget (the breaker's default
    // threshold): retrying by itself at the next poll, not failing.
    let s = h.sm.status().unwrap().remove(0);
    assert_eq!(s.health, syncmon_core::Health::Retrying);
    assert_eq!(s.last_http_status, Some(503));
    assert_eq!(s.last_tracking_id, err.tracking_id);
    assert!(!s.waits_for_user);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let next = s.next_attempt_at.expect("a retrying entity says when it tries again");
    assert!(next > now && next <= now + 301_000, "the next poll (the default poll_every, 5 min): {next} vs {now}");
    assert!(s.reason.unwrap().contains("503"));
    h.mock.clear_faults();
    h.sync_ok("items").await;
    h.assert_converged("items");
}

#[tokio::test]
async fn repeated_failed_cycles_open_the_circuit_and_a_success_closes_it() {
    let h = items(50, "max_retries = 0\nbreaker_threshold = 2\nbreaker_cooldown = \"1s\"").await;
    h.mock.inject(fault(FaultKind::Status(502), 0));
    assert_eq!(h.sync("items").await.outcome, Outcome::Failed);
    assert_eq!(h.sm.status().unwrap()[0].health, syncmon_core::Health::Retrying, "one failed cycle of two allowed");
    let opened = h.sync("items").await;
    assert_eq!(opened.outcome, Outcome::Failed);
    assert!(opened.next_attempt_at.is_some(), "the second failure opens the circuit");
    let calls = data_calls(&h);
    let skipped = h.sync("items").await;
    assert_eq!(skipped.outcome, Outcome::CircuitOpen);
    assert_eq!(data_calls(&h), calls, "an open circuit does not call the source");
    let s = h.sm.status().unwrap().remove(0);
    assert_eq!(s.health, syncmon_core::Health::CircuitOpen);
    assert!(s.next_attempt_at.is_some(), "the status says when the next attempt is");
    // Past the cooldown the source still fails: the budget is spent, so it is failing, not retrying.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(h.sync("items").await.outcome, Outcome::Failed);
    let s = h.sm.status().unwrap().remove(0);
    assert_eq!(s.health, syncmon_core::Health::Failing);
    assert!(s.next_attempt_at.is_some(), "a failing entity says when it tries again");
    h.mock.clear_faults();
    h.sync_ok("items").await;
    assert_eq!(h.sm.status().unwrap()[0].health, syncmon_core::Health::Healthy);
}

#[tokio::test]
async fn configuration_errors_fail_at_once_without_hot_retries_and_show_the_body() {
    for status in [400, 403, 404] {
        let h = small().await;
        h.mock.inject(fault(FaultKind::Status(status), 0));
        let r = h.sync("items").await;
        assert_eq!(r.outcome, Outcome::Failed);
        let err = r.error.unwrap();
        assert_eq!(err.class, FailureClass::Config);
        assert_eq!(data_calls(&h), 1, "HTTP {status}: no retry");
        let st = h.sm.status().unwrap().remove(0);
        assert_eq!(st.health, syncmon_core::Health::Failing, "HTTP {status} is not retried away: failing");
        assert!(st.next_attempt_at.is_some(), "HTTP {status}: the next poll is when it tries again");
        assert!(err.message.contains(':'), "the API's {{code, message}} is shown: {}", err.message);
    }
}

#[tokio::test]
async fn an_unknown_entity_path_says_what_the_source_answered() {
    let mock = syncmon_mock::MockServer::start(MockConfig { entities: entities(&[("items", 5)]), ..Default::default() }).await.unwrap();
    let text = config_text(&mock.base_url(), &["itemz"], "", "");
    let h = Harness::with_config(mock, text).await;
    let r = h.sync("itemz").await;
    let err = r.error.unwrap();
    assert_eq!(err.http_status, Some(404));
    assert!(err.message.contains("resource_not_found"), "{}", err.message);
}

#[tokio::test]
async fn an_unreachable_host_fails_with_a_clear_error() {
    let mock = syncmon_mock::MockServer::start(MockConfig { entities: entities(&[("items", 5)]), ..Default::default() }).await.unwrap();
    // A port nobody listens on: bind one, note it, free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = config_text(&format!("http://127.0.0.1:{port}"), &["items"], "max_retries = 1", "");
    let h = Harness::with_config(mock, text).await;
    let r = h.sync("items").await;
    assert_eq!(r.outcome, Outcome::Failed);
    let message = r.error.unwrap().message;
    assert!(message.contains(&format!("cannot connect to http://127.0.0.1:{port}")), "names where it tried: {message}");
}

#[tokio::test]
async fn poison_records_become_failed_items_and_the_checkpoint_moves_on() {
    let h = small().await;
    h.mock.inject(fault(FaultKind::MissingRowVersion { records: 2 }, 1));
    h.mock.inject(Fault { kind: FaultKind::MissingId { records: 1 }, entity: Some("items".into()), times: 1 });
    let r = h.sync_ok("items").await;
    assert_eq!(r.failed_new, 3);
    let items = h.sm.failed_items(&FailedFilter::default(), None, 100).unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|i| i.tracking_id.is_some() && i.stage == FailedStage::Validate && i.http_status == Some(200)));
    let kinds: std::collections::BTreeSet<_> = items.iter().map(|i| i.error_kind.as_str()).collect();
    assert_eq!(kinds, ["missing_id", "missing_row_version"].into_iter().collect());
    assert_eq!(h.checkpoint("items").parse::<u128>().unwrap(), max_version(&h, "items"), "one bad record never stalls the entity");
    assert_eq!(h.sm.status().unwrap()[0].pending_failed, 3);

    // The cause is fixed at the source: replaying re-fetches the records by id.
    let ids = h.sm.failed_ids(&FailedFilter::default()).unwrap();
    let report = h.sm.replay(&ids, &Default::default()).await.unwrap();
    assert_eq!(report.replayed, 2, "{report:?}");
    assert_eq!(report.still_failing, 1, "a record without an id cannot be re-fetched");
    let left = h.sm.failed_items(&FailedFilter::default(), None, 100).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].attempts, 2);
    assert_eq!(h.sm.discard(&[left[0].id]).unwrap(), 1);
    assert_eq!(h.sm.status().unwrap()[0].pending_failed, 0);
    // The id-less record was served under some id the replica never saw; a full resync (the
    // documented remedy) brings it in without deleting anything else.
    assert_eq!(h.replica("items").len() + 1, h.source("items").len());
    h.sm.resync("items", false, &Default::default()).await.unwrap();
    h.assert_converged("items");
}

#[tokio::test]
async fn a_failed_item_clears_itself_when_its_record_later_syncs_fine() {
    let h = small().await;
    h.sync_ok("items").await;
    let changed = h.mock.mutate("items", 1);
    h.mock.inject(fault(FaultKind::MissingRowVersion { records: 1 }, 1));
    h.sync_ok("items").await;
    let items = h.sm.failed_items(&FailedFilter::default(), None, 10).unwrap();
    assert_eq!(items[0].record_id.as_deref(), Some(changed[0].as_str()));
    // The fault is gone; the next poll reads the record again, now valid (served without its
    // rowVersion, it could not move the checkpoint past itself).
    h.sync_ok("items").await;
    assert!(h.sm.failed_items(&FailedFilter::default(), None, 10).unwrap().is_empty(), "superseded, not lingering");
    let resolved = h.sm.failed_items(&FailedFilter { state: Some(FailedState::Resolved), ..Default::default() }, None, 10).unwrap();
    assert_eq!(resolved[0].resolution, Some(Resolution::Superseded));
}

#[tokio::test]
async fn the_same_id_twice_in_one_page_keeps_the_highest_version() {
    let h = small().await;
    h.mock.inject(fault(FaultKind::DuplicateId, 1));
    h.sync_ok("items").await;
    h.assert_converged("items");
}

#[tokio::test]
async fn oauth_tokens_are_cached_and_refreshed_once_on_401() {
    std::env::set_var("SYNCMON_TEST_OAUTH_SECRET", "s3cret");
    let mock_cfg = MockConfig {
        entities: entities(&[("items", 120)]),
        auth: MockAuth::OAuth { client_id: "syncmon".into(), client_secret: "s3cret".into(), token_ttl_secs: 3600 },
        ..Default::default()
    };
    let mock = syncmon_mock::MockServer::start(mock_cfg).await.unwrap();
    let conn =
        format!("auth = \"oauth2\"\ntoken_url = \"{}/oauth/token\"\nclient_id = \"syncmon\"\nsecret_env = \"SYNCMON_TEST_OAUTH_SECRET\"", mock.base_url());
    let text = config_text(&mock.base_url(), &["items"], &conn, "");
    let h = Harness::with_config(mock, text).await;
    h.sync_ok("items").await;
    assert_eq!(h.mock.tokens_issued(), 1);
    h.mock.mutate("items", 3);
    h.sync_ok("items").await;
    assert_eq!(h.mock.tokens_issued(), 1, "the token is cached until shortly before expiry");
    h.mock.expire_tokens();
    h.mock.mutate("items", 3);
    h.sync_ok("items").await;
    assert_eq!(h.mock.tokens_issued(), 2, "a 401 refreshes the token once");
    h.assert_converged("items");
    let log = h.sm.requests(None, false, None, 200).unwrap();
    assert!(log.iter().all(|r| !r.url.contains("s3cret")), "no secret in the request log");
}

#[tokio::test]
async fn wrong_credentials_fail_as_authentication_errors() {
    std::env::set_var("SYNCMON_TEST_WRONG_KEY", "nope");
    let mock_cfg = MockConfig {
        entities: entities(&[("items", 10)]),
        auth: MockAuth::ApiKey { header: "x-np-api-key".into(), key: "right".into() },
        ..Default::default()
    };
    let h = Harness::start(mock_cfg, "auth = \"api_key\"\nsecret_env = \"SYNCMON_TEST_WRONG_KEY\"", "").await;
    let r = h.sync("items").await;
    let err = r.error.unwrap();
    assert_eq!(err.class, FailureClass::Auth);
    assert!(err.message.contains("authentication failed"), "{}", err.message);
    assert_eq!(h.mock.requests().len(), 1, "a 401 on an API key is not retried");
}

#[tokio::test]
async fn a_missing_secret_says_how_to_provide_it() {
    let h = items(10, "auth = \"bearer\"\nsecret_env = \"SYNCMON_TEST_UNSET_VAR\"").await;
    let r = h.sync("items").await;
    assert!(r.error.unwrap().message.contains("SYNCMON_TEST_UNSET_VAR"));
}

#[tokio::test]
async fn the_reference_headers_are_pinned_and_echoed() {
    let h = items(250, "api_version = \"2024-06-01\"").await;
    h.sync_ok("items").await;
    let reqs = h.mock.requests();
    let header = |r: &syncmon_mock::RequestInfo, n: &str| r.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert!(reqs.iter().all(|r| header(r, "x-api-version").as_deref() == Some("2024-06-01")));
    assert!(reqs.iter().skip(1).all(|r| header(r, "x-server-cache-id").is_some()), "the server cache id is echoed after the first call");
}
