//! The engine reads the time of day from one clock, the one given at open.
//!
//! Backoff, breaker and scheduler timing run on tokio's paused clock: minutes of simulated time
//! in milliseconds of real time, and exact. The engine's clock is a `TestClock` that follows
//! tokio's clock, so its decisions (open-until, half-open, waits) and tokio's sleeps see the same
//! simulated time. Servers run on loopback in the same runtime.

mod common;

use common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use syncmon_core::config::Config;
use syncmon_core::source::{FailureClass, SourceClient};
use syncmon_core::store::Store;
use syncmon_core::{Syncmon, TestClock};
use syncmon_mock::{MockConfig, MockServer};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const START_MS: i64 = 1_800_000_000_000;

/// One connection, `src`, with one entity, `items`. No rate limit to speak of: the limiter spaces
/// calls on the machine's clock, which barely moves here. A request timeout far beyond the
/// simulated spans, so no call times out while the paused clock jumps ahead.
fn config(base_url: &str, conn_extra: &str, entity_extra: &str) -> Config {
    parse(&text(base_url, conn_extra, entity_extra))
}

fn text(base_url: &str, conn_extra: &str, entity_extra: &str) -> String {
    format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{base_url}\"\nrequests_per_second = 1000000\ntimeout = \"1h\"\n{conn_extra}\n\
         [[connection.entity]]\nname = \"items\"\npage_size = 100\n{entity_extra}\n"
    )
}

fn parse(text: &str) -> Config {
    Config::parse(text).unwrap_or_else(|e| panic!("test config must parse: {e}\n{text}"))
}

/// A source that answers every request 503 and notes when each arrived (on tokio's clock).
async fn failing_source() -> (String, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(Instant::now());
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down for maintenance")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), arrivals)
}

#[tokio::test(start_paused = true)]
async fn transient_failures_wait_with_full_jitter_under_the_cap_and_stop_after_max_retries() {
    let (base_url, arrivals) = failing_source().await;
    let cfg = config(&base_url, "max_retries = 6\nbackoff_base = \"1s\"\nbackoff_max = \"2s\"", "").connections.remove(0);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("syncmon.db")).unwrap());
    let client = SourceClient::new(cfg, SourceClient::http_client(), store, Arc::new(TestClock::following_tokio(START_MS)));

    let mut waits = Vec::new();
    let url = url::Url::parse(&format!("{base_url}/items")).unwrap();
    let cancel = CancellationToken::new();
    let started = Instant::now();
    // Bounded: a retry loop without its budget would run into this simulated hour.
    let result = tokio::time::timeout(Duration::from_secs(3600), client.fetch(&url, Some("items"), &cancel, |_| Ok(()), |_, _, after| waits.push(after)))
        .await
        .expect("the retries end within their budget");
    let failure = result.expect_err("the source always answers 503");
    assert_eq!(failure.class, FailureClass::Transient);
    assert_eq!(failure.http_status, Some(503));

    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 7, "one call and max_retries = 6 retries, no more");
    assert_eq!(waits.len(), 6);
    for (i, wait) in waits.iter().enumerate() {
        // Full jitter: uniform in [0, min(cap, base · 2^i)], so 1 s, then the 2 s cap.
        let ceiling = Duration::from_secs(1 << i.min(1));
        assert!(*wait <= ceiling, "retry {}: waited {wait:?}, over the ceiling {ceiling:?}", i + 1);
        // And the client really waits that long before the next call (no time passes on loopback).
        let gap = arrivals[i + 1] - arrivals[i];
        assert!(gap >= *wait && gap < *wait + Duration::from_millis(50), "retry {}: announced {wait:?}, called again after {gap:?}", i + 1);
    }
    assert!(started.elapsed() <= Duration::from_secs(11) + Duration::from_millis(100), "at most 1 + 5 × 2 s of waiting: {:?}", started.elapsed());
}

/// Sleeps (simulated) until `at` after `t0`, letting the agent run meanwhile.
async fn until(t0: Instant, at: Duration) {
    tokio::time::sleep_until(t0 + at).await;
}

/// The agent (`Syncmon::run`) on `clock` in a fresh data directory, as a task of this runtime.
struct Agent {
    dir: tempfile::TempDir,
    sm: Arc<Syncmon>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Agent {
    fn start(config: Config, clock: TestClock) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let sm = Arc::new(Syncmon::open_with_clock(config, dir.path(), Arc::new(clock)).unwrap());
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let (sm, cancel) = (sm.clone(), cancel.clone());
            async move { sm.run(cancel).await.unwrap() }
        });
        Agent { dir, sm, cancel, task }
    }

    /// Cancels the agent and waits for it to stop (at most 60 s); gives back its data directory.
    async fn stop(self) -> tempfile::TempDir {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.task).await.expect("the agent stops when cancelled").unwrap();
        self.dir
    }
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_after_the_threshold_and_half_opens_after_its_cooldown() {
    let (base_url, arrivals) = failing_source().await;
    let config = config(&base_url, "max_retries = 0\nbreaker_threshold = 3\nbreaker_cooldown = \"5m\"", "poll_every = \"10s\"");
    let agent = Agent::start(config, TestClock::following_tokio(START_MS));
    let t0 = Instant::now();
    let calls = || arrivals.lock().unwrap().len();

    // Cycles at 0, ~10 s and ~20 s (polls jitter by ±10 %) fail; the third opens the circuit
    // for 5 minutes, so it opens at 18..22 s and half-opens at 318..322 s.
    until(t0, Duration::from_secs(300)).await;
    assert_eq!(calls(), 3, "three failed cycles open the circuit; polls during the cooldown do not call the source");
    until(t0, Duration::from_secs(325)).await;
    assert_eq!(calls(), 4, "after the cooldown the circuit half-opens: the next poll calls the source again");
    // Two more failures reach the threshold again: open for twice as long (10 minutes).
    until(t0, Duration::from_secs(360)).await;
    assert_eq!(calls(), 6);
    until(t0, Duration::from_secs(900)).await;
    assert_eq!(calls(), 6, "the circuit reopened with a doubled cooldown");

    agent.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_agent_polls_each_entity_at_its_interval() {
    let mock = MockServer::start(MockConfig { entities: entities(&[("items", 50)]), ..Default::default() }).await.unwrap();
    let config = config(&mock.base_url(), "", "poll_every = \"30s\"");
    let agent = Agent::start(config, TestClock::following_tokio(START_MS));
    let t0 = Instant::now();

    // Ten poll intervals of simulated time.
    until(t0, Duration::from_secs(300)).await;
    let sm = agent.sm.clone();
    let dir = agent.stop().await;

    let mut starts: Vec<i64> = sm.runs("src/items", 100).unwrap().into_iter().map(|r| r.started_at).collect();
    starts.sort();
    // The catch-up at 0, then a poll every 30 s ± 10 %: 9 to 11 polls in 300 s.
    assert!((10..=12).contains(&starts.len()), "{} cycles in 10 poll intervals: {starts:?}", starts.len());
    assert_eq!(starts[0], START_MS, "the catch-up runs at once");
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((27_000..=33_100).contains(&gap), "polls 30 s ± 10 % apart, not {gap} ms: {starts:?}");
    }
    Harness { dir, mock, sm, config_text: String::new() }.assert_converged("items");
}

#[tokio::test]
async fn the_webhook_receiver_checks_timestamps_on_the_engines_clock() {
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    std::env::set_var("SYNCMON_CLOCK_TEST_WEBHOOK_SECRET", SECRET);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mock = MockServer::start(MockConfig { entities: entities(&[("items", 10)]), ..Default::default() }).await.unwrap();
    let entity = text(&mock.base_url(), "webhook_secret_env = \"SYNCMON_CLOCK_TEST_WEBHOOK_SECRET\"", "poll_every = \"1h\"");
    let config = parse(&format!("[webhooks]\nlisten = \"127.0.0.1:{port}\"\n{entity}"));
    // The engine's clock, months away from the machine's.
    let agent = Agent::start(config, TestClock::fixed(START_MS));
    let url = format!("http://127.0.0.1:{port}/webhooks/src");
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let send = |id: &'static str, ts: i64| {
        let body = r#"{"entity":"items"}"#;
        let req = client
            .post(&url)
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", syncmon_core::webhook::sign_standard(SECRET, id, ts, body.as_bytes()))
            .body(body);
        async move { req.send().await.map(|r| r.status().as_u16()) }
    };
    // The receiver listens once the agent runs (bounded: 100 × 50 ms).
    let machine_now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut on_machine_time = Err(());
    for _ in 0..100 {
        if let Ok(status) = send("msg_machine", machine_now).await {
            on_machine_time = Ok(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(on_machine_time, Ok(401), "a timestamp on the machine's clock is stale on the engine's");
    assert_eq!(send("msg_engine", START_MS / 1000 - 60).await.unwrap(), 202, "a minute before the engine's now is fresh");
    agent.stop().await;
}
