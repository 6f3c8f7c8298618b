//! A source that cannot be reached: `syncmon sync` and the entity's status reason name the origin
//! (never the path or query, which may carry a secret) and what to check, per kind of failure.
//! Only loopback is called: a closed port, and a port that accepts and never answers.

use std::time::Duration;
use tokio::net::TcpListener;

mod common;
use common::{text, Env};

fn config(base_url: &str, extra: &str) -> String {
    format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{base_url}\"\nbackoff_base = \"20ms\"\nmax_retries = 0\n{extra}\n\
         [[connection.entity]]\nname = \"items\"\n"
    )
}

/// `syncmon sync` fails (exit 1) with `expected` in its summary, and `status` shows it as the reason.
fn assert_sync_fails_saying(env: &Env, expected: &str, secret_path: &str) {
    let out = env.run(&["sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let summary = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(summary.contains(expected), "the sync says it:\n{summary}\nexpected: {expected}");
    assert!(!text(&out).contains(secret_path), "no path in the message: {}", text(&out));
    let out = env.run(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let reason = status[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(expected), "the status reason says it: {reason}");
    assert!(!reason.contains(secret_path), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_names_the_origin_and_the_setting_to_check() {
    // A port nobody listens on: bound, then let go.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let env = Env::new(&config(&format!("http://127.0.0.1:{port}/tenant-7f3a"), ""));
    let expected = format!(
        "cannot connect to http://127.0.0.1:{port} (connection refused): check that the server is running and that the base_url of \
         connection `src` (connections[0].base_url) is right"
    );
    assert_sync_fails_saying(&env, &expected, "tenant-7f3a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_never_answers_says_how_long_it_waited_and_what_to_raise() {
    // Accepts the connection, reads nothing, answers nothing (held until the test ends).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok(Ok((c, _))) = tokio::time::timeout(Duration::from_secs(30), listener.accept()).await {
            conns.push(c);
        }
    });
    let env = Env::new(&config(&format!("http://127.0.0.1:{port}/tenant-7f3a"), "timeout = \"1s\""));
    let expected = format!("no answer from http://127.0.0.1:{port} within 1 s (timeout): check the network, or raise the connection's timeout");
    assert_sync_fails_saying(&env, &expected, "tenant-7f3a");
    held.abort();
}
