//! Records pushed to `POST /ingest/<connection>/<entity>`: signed like a webhook, stored before
//! the 202, applied by the agent through the polled pages' write path; refusals store nothing.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use syncmon_core::events::EventKind;
use syncmon_core::{FailedFilter, Health, IngestState};
use syncmon_mock::MockConfig;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The limit the tests configure: small, so that an oversized body is cheap to send.
const MAX_BYTES: usize = 4096;

struct Agent {
    h: Harness,
    /// `http://127.0.0.1:PORT/ingest/src`
    base: String,
    cancel: CancellationToken,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The agent with `items` polled hourly (from the simulated source) and `pushed`, push-only,
/// whose path the simulated source does not serve: a poll of it would fail and be a run.
async fn agent() -> Agent {
    std::env::set_var("SYNCMON_TEST_INGEST_SECRET", SECRET);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mock = syncmon_mock::MockServer::start(MockConfig { entities: entities(&[("items", 50)]), ..Default::default() }).await.unwrap();
    let mock_url = mock.base_url();
    let mut text = format!("[webhooks]\nlisten = \"127.0.0.1:{port}\"\ningest_max_bytes = {MAX_BYTES}\n");
    text.push_str(&config_text(&mock.base_url(), &["items"], "webhook_secret_env = \"SYNCMON_TEST_INGEST_SECRET\"", "poll_every = \"1h\""));
    text.push_str("[[connection.entity]]\nname = \"pushed\"\npath = \"/not-served\"\npoll_every = \"never\"\nrequired_fields = [\"name\"]\n");
    // A snapshot-profile connection: its versions are the store's own, a pushed record has none.
    text.push_str(&format!(
        "\n[[connection]]\nid = \"snap\"\nbase_url = \"{}\"\nprofile = \"snapshot\"\nwebhook_secret_env = \"SYNCMON_TEST_INGEST_SECRET\"\n\
         [[connection.entity]]\nname = \"things\"\npoll_every = \"never\"\n",
        mock_url
    ));
    let h = Harness::with_config(mock, text).await;
    let cancel = CancellationToken::new();
    let (sm, c) = (h.sm.clone(), cancel.clone());
    tokio::spawn(async move { sm.run(c).await.unwrap() });
    let a = Agent { h, base: format!("http://127.0.0.1:{port}/ingest/src"), cancel };
    wait_for(|| a.h.sm.status().unwrap().iter().any(|s| s.entity == "items" && s.last_caught_up_at.is_some()), "the initial catch-up of items").await;
    a
}

async fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A signed push; `secret` None signs with the right secret.
async fn push(url: &str, msg_id: &str, body: &str, secret: Option<&str>) -> (u16, Value) {
    let ts = now();
    let sig = syncmon_core::webhook::sign_standard(secret.unwrap_or(SECRET), msg_id, ts, body.as_bytes());
    let resp = reqwest::Client::new()
        .post(url)
        .header("webhook-id", msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn applied(a: &Agent, id: &str) -> syncmon_core::IngestBatch {
    wait_for(|| a.h.sm.ingest_batch(id).is_ok_and(|b| b.state != IngestState::Queued), "the batch to be applied").await;
    a.h.sm.ingest_batch(id).unwrap()
}

fn record(id: &str, version: u64, name: &str) -> Value {
    json!({ "id": id, "rowVersion": version.to_string(), "name": name })
}

#[tokio::test]
async fn a_batch_with_one_invalid_record_is_partly_failed_and_the_rest_applied() {
    let mut a = agent().await;
    let url = format!("{}/pushed", a.base);
    let body = json!([record("p1", 5, "one"), {"id": "p2", "rowVersion": "6"}, record("p3", 7, "three")]).to_string();
    let (status, answer) = push(&url, "msg_batch", &body, None).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().expect("the 202 names the batch").to_string();
    let b = applied(&a, &id).await;
    assert_eq!(b.state, IngestState::PartlyFailed);
    assert_eq!((b.records, b.applied, b.unchanged, b.failed), (Some(3), Some(2), Some(0), Some(1)));
    assert_eq!(b.failures[0].record_id.as_deref(), Some("p2"));
    assert_eq!(b.failures[0].error_kind, "missing_field");
    let replica = a.h.replica("pushed");
    assert_eq!(replica.keys().collect::<Vec<_>>(), ["p1", "p3"]);
    assert_eq!(replica["p3"].1["name"], "three");
    let failed = a.h.sm.failed_items(&a.h.sm.failed_filter(FailedFilter { entity: Some("pushed".into()), ..Default::default() }).unwrap(), None, 10).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].stage.as_str(), failed[0].record_id.as_deref(), failed[0].tracking_id.as_deref()), ("ingest", Some("p2"), Some(id.as_str())));
    // Activity says so, naming the batch.
    let said = a.h.sm.recent_events(200).into_iter().find_map(|e| match e.kind {
        EventKind::IngestApplied { batch, records, failed, state, .. } if batch == id => Some((records, failed, state)),
        _ => None,
    });
    assert_eq!(said, Some((3, 1, "partly_failed".to_string())), "an ingest_applied event for {id}");

    // One record (not an array), older than the replica's: version compare leaves it out.
    let (status, answer) = push(&url, "msg_old", &record("p3", 2, "stale").to_string(), None).await;
    assert_eq!(status, 202);
    let b = applied(&a, answer["id"].as_str().unwrap()).await;
    assert_eq!((b.state, b.applied, b.unchanged), (IngestState::Applied, Some(0), Some(1)));
    assert_eq!(a.h.replica("pushed")["p3"].1["name"], "three");

    // The same webhook-id again is the same batch: its first id, nothing stored twice.
    let (status, again) = push(&url, "msg_batch", &body, None).await;
    assert_eq!((status, again["id"].as_str(), again["duplicate"].as_bool()), (202, Some(id.as_str()), Some(true)));
    // The polled feed's checkpoint is not the pushed records' business.
    assert_eq!(a.h.checkpoint("pushed"), "0");

    // A replay reads the stored payload again (a pushed record is not re-fetched from the
    // source): with `name` no longer required, it goes through.
    a.cancel.cancel();
    a.h.config_text = a.h.config_text.replace("required_fields = [\"name\"]\n", "");
    a.h.reopen();
    let report = a.h.sm.replay(&[failed[0].id], &CancellationToken::new()).await.unwrap();
    assert_eq!((report.replayed, report.still_failing), (1, 0), "{:?}", a.h.sm.failed_item(failed[0].id).unwrap());
    assert!(a.h.replica("pushed").contains_key("p2"));
}

#[tokio::test]
async fn records_pushed_to_a_snapshot_entity_become_failed_items() {
    let a = agent().await;
    let url = a.base.replace("/ingest/src", "/ingest/snap/things");
    let (status, answer) = push(&url, "msg_snap", &json!([{"id": "t1"}, {"id": "t2"}]).to_string(), None).await;
    assert_eq!(status, 202, "{answer}");
    let b = applied(&a, answer["id"].as_str().unwrap()).await;
    assert_eq!((b.state, b.applied, b.failed), (IngestState::PartlyFailed, Some(0), Some(2)));
    assert_eq!(b.failures[0].error_kind, "unversioned_entity");
    assert!(a.h.sm.status().unwrap().iter().any(|s| s.entity == "things" && s.replica_rows == 0));
}

#[tokio::test]
async fn a_pushed_batch_with_a_bad_signature_gets_401_and_stores_nothing() {
    let a = agent().await;
    let url = format!("{}/pushed", a.base);
    let forged = record("forged", 9, "forged").to_string();
    let (status, answer) = push(&url, "msg_forged", &forged, Some("whsec_Zm9yZ2VkLXNlY3JldA==")).await;
    assert_eq!((status, answer["code"].as_str()), (401, Some("bad_signature")), "{answer}");
    let unsigned = reqwest::Client::new().post(&url).body(forged.clone()).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    // A later genuine batch is applied after anything stored before it (arrival order): had the
    // forged one been stored, it would be in the replica by then.
    let (status, answer) = push(&url, "msg_genuine", &record("genuine", 1, "ok").to_string(), None).await;
    assert_eq!(status, 202);
    applied(&a, answer["id"].as_str().unwrap()).await;
    assert_eq!(a.h.replica("pushed").keys().collect::<Vec<_>>(), ["genuine"]);
}

#[tokio::test]
async fn an_oversized_batch_gets_413_declared_or_chunked() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = agent().await;
    let url = format!("{}/pushed", a.base);
    let names: Vec<Value> = (0..100).map(|i| record(&format!("big{i}"), 1, &"x".repeat(40))).collect();
    let big = Value::Array(names).to_string();
    assert!(big.len() > MAX_BYTES);
    let (status, answer) = push(&url, "msg_big", &big, None).await;
    assert_eq!((status, answer["code"].as_str()), (413, Some("body_too_large")), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains(&MAX_BYTES.to_string()), "the answer says the limit: {answer}");

    let addr = a.base.trim_start_matches("http://").split('/').next().unwrap().to_string();
    // A declared length over the limit is refused before any of the body is read (none is sent).
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!("POST /ingest/src/pushed HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 104857600\r\nConnection: close\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut answer)).await.expect("answered without the body").unwrap();
    assert_eq!(String::from_utf8_lossy(&answer), "HTTP/1.1 413");

    // Without a Content-Length: refused once the limit is passed, not after reading everything.
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!("POST /ingest/src/pushed HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..64 {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if tcp.write_all(&frame).await.is_err() {
            break; // the receiver stopped reading: that is the point
        }
    }
    let _ = tcp.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(a.h.replica("pushed").is_empty());
}

#[tokio::test]
async fn unknown_targets_are_404_and_a_body_that_is_not_records_is_400() {
    let a = agent().await;
    let body = record("p1", 1, "one").to_string();
    let (status, answer) = push(&format!("{}/vendors", a.base), "msg_1", &body, None).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("unknown_entity")));
    let other = a.base.replace("/ingest/src", "/ingest/nope");
    let (status, answer) = push(&format!("{other}/pushed"), "msg_2", &body, None).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("unknown_connection")));
    let (status, answer) = push(&format!("{}/pushed", a.base), "msg_3", "{\"id\": \"p1\",", None).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("invalid_json")));
    assert!(answer["message"].as_str().unwrap().starts_with("the body is not JSON"), "{answer}");
    let (status, answer) = push(&format!("{}/pushed", a.base), "msg_4", "\"p1\"", None).await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().contains("one record (a JSON object) or an array"), "{answer}");
    // Case-insensitive entity names, as for webhooks.
    let (status, answer) = push(&format!("{}/PUSHED", a.base), "msg_5", &body, None).await;
    assert_eq!(status, 202, "{answer}");
    applied(&a, answer["id"].as_str().unwrap()).await;
    assert!(a.h.replica("pushed").contains_key("p1"));
}

#[tokio::test]
async fn a_push_only_entity_is_never_polled_and_not_lagging() {
    let a = agent().await;
    // The worker has applied a batch, so the agent is well past its start.
    let (status, answer) = push(&format!("{}/pushed", a.base), "msg_1", &record("p1", 1, "one").to_string(), None).await;
    assert_eq!(status, 202);
    applied(&a, answer["id"].as_str().unwrap()).await;
    // Nudges (webhooks, "Sync now") do not poll it either.
    let items_runs = a.h.sm.runs("items", 10).unwrap().len();
    a.h.sm.nudge_where(Some("pushed")).unwrap();
    a.h.sm.nudge_where(Some("items")).unwrap();
    wait_for(|| a.h.sm.runs("items", 10).unwrap().len() > items_runs, "the nudged poll of items").await;
    assert!(a.h.sm.runs("pushed", 10).unwrap().is_empty(), "a push-only entity is never polled");
    let st = a.h.sm.status().unwrap();
    let pushed = st.iter().find(|s| s.entity == "pushed").unwrap();
    assert_eq!(pushed.health, Health::PushOnly, "{pushed:?}");
    assert_eq!((pushed.replica_rows, pushed.poll_every_seconds), (1, 0));
}

/// 40 pushed batches all answered and all applied; prints pushed records per second, from the first
/// push to the last batch applied (a figure, not asserted: `cargo test --release --test ingest
/// pushed_records -- --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_records_per_second() {
    const BATCHES: usize = 40;
    const PER_BATCH: usize = 20;
    let a = agent().await;
    let url = format!("{}/pushed", a.base);
    let started = Instant::now();
    let mut last = String::new();
    for b in 0..BATCHES {
        let records: Vec<Value> = (0..PER_BATCH).map(|i| record(&format!("r{b}-{i}"), 1, "bench")).collect();
        let (status, answer) = push(&url, &format!("msg_bench_{b}"), &Value::Array(records).to_string(), None).await;
        assert_eq!(status, 202, "{answer}");
        last = answer["id"].as_str().unwrap().to_string();
    }
    let acked = started.elapsed();
    applied(&a, &last).await;
    let took = started.elapsed();
    let n = BATCHES * PER_BATCH;
    assert_eq!(a.h.replica("pushed").len(), n);
    println!(
        "pushed {n} records in {BATCHES} batches: all answered 202 in {acked:?}, all applied in {took:?} ({:.0} records/s)",
        n as f64 / took.as_secs_f64()
    );
}
