//! Webhook nudges make an entity sync now, in both dialects; forged or stale calls are refused.

mod common;

use common::*;
use std::time::{Duration, Instant};
use syncmon_mock::MockConfig;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Starts the agent with an hour-long poll: any sync after the first is the nudge's doing.
async fn agent() -> (Harness, String, CancellationToken) {
    std::env::set_var("SYNCMON_TEST_WEBHOOK_SECRET", SECRET);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mock = syncmon_mock::MockServer::start(MockConfig { entities: entities(&[("items", 100), ("customers", 100)]), ..Default::default() }).await.unwrap();
    let mut text = format!("[webhooks]\nlisten = \"127.0.0.1:{port}\"\n");
    text.push_str(&config_text(&mock.base_url(), &["items", "customers"], "webhook_secret_env = \"SYNCMON_TEST_WEBHOOK_SECRET\"", "poll_every = \"1h\""));
    let h = Harness::with_config(mock, text).await;
    let cancel = CancellationToken::new();
    let (sm, c) = (h.sm.clone(), cancel.clone());
    tokio::spawn(async move { sm.run(c).await.unwrap() });
    // The initial catch-up of both entities.
    wait_for(|| h.sm.status().unwrap().iter().all(|s| s.last_caught_up_at.is_some()), "initial catch-up").await;
    (h, format!("http://127.0.0.1:{port}/webhooks/src"), cancel)
}

async fn wait_for(mut ok: impl FnMut() -> bool, what: &str) -> Duration {
    let started = Instant::now();
    for _ in 0..200 {
        if ok() {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_signed_standard_webhook_makes_the_entity_sync_now() {
    let (h, url, cancel) = agent().await;
    let changed = h.mock.mutate("items", 1).remove(0);
    let version = h.source("items")[&changed].0.clone();
    let status = h.mock.send_standard_webhook(&url, SECRET, "items").await.unwrap();
    assert_eq!(status.as_u16(), 202);
    let took = wait_for(|| h.replica("items").get(&changed).map(|r| &r.0) == Some(&version), "the nudged sync").await;
    println!("nudge to replica: {took:?}");
    assert!(took < Duration::from_secs(3), "the nudge syncs at once, not at the next poll ({took:?})");
    cancel.cancel();
}

#[tokio::test]
async fn a_business_central_notification_makes_the_entity_sync_now() {
    let (h, url, cancel) = agent().await;
    let (code, body) = h.mock.bc_validate(&url, "tok-123").await.unwrap();
    assert_eq!((code.as_u16(), body.as_str()), (200, "tok-123"), "the subscription handshake echoes the token");
    let changed = h.mock.mutate("customers", 1).remove(0);
    let version = h.source("customers")[&changed].0.clone();
    let status = h.mock.send_bc_webhook(&url, SECRET, "customers").await.unwrap();
    assert_eq!(status.as_u16(), 202);
    let took = wait_for(|| h.replica("customers").get(&changed).map(|r| &r.0) == Some(&version), "the nudged sync").await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    cancel.cancel();
}

#[tokio::test]
async fn forged_and_stale_webhooks_are_refused_and_sync_nothing() {
    let (h, url, cancel) = agent().await;
    let runs_before = h.sm.runs("items", 100).unwrap().len();
    assert_eq!(h.mock.send_standard_webhook(&url, "whsec_d3Jvbmcgc2VjcmV0IGtleSAxMjM0NTY3OA==", "items").await.unwrap().as_u16(), 401);
    assert_eq!(h.mock.send_bc_webhook(&url, "not-the-client-state", "items").await.unwrap().as_u16(), 401);
    // A correctly signed call from six minutes ago is a replay: refused.
    let body = r#"{"entity":"items"}"#;
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - 360;
    let sig = syncmon_core::webhook::sign_standard(SECRET, "msg_stale", ts, body.as_bytes());
    let resp = reqwest::Client::new()
        .post(&url)
        .header("webhook-id", "msg_stale")
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.sm.runs("items", 100).unwrap().len(), runs_before, "no refused call starts a cycle");
    cancel.cancel();
}
