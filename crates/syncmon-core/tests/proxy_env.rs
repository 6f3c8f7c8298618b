//! The standard proxy variables: with HTTPS_PROXY set, a source's HTTPS calls go through the
//! proxy (a CONNECT to the source's host and port), as on a back-office PC behind a company
//! proxy. Its own test binary: it sets the process environment before any client is built.

mod common;

use common::{config_text, Harness};
use syncmon_core::engine::Outcome;
use syncmon_mock::{MockConfig, MockServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn https_calls_go_through_the_proxy_named_in_https_proxy() {
    // A "proxy" on loopback that records the first request line and refuses the tunnel.
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel::<String>();
    tokio::spawn(async move {
        let (mut conn, _) = proxy.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let _ = conn.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n").await;
        let _ = seen_tx.send(String::from_utf8_lossy(&got).lines().next().unwrap_or("").to_string());
    });
    for var in ["NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy"] {
        std::env::remove_var(var);
    }
    std::env::set_var("HTTPS_PROXY", format!("http://{proxy_addr}"));

    // The source's host does not resolve: only a proxy can reach it.
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let h = Harness::with_config(mock, config_text("https://erp.syncmon-test.invalid", &["items"], "max_retries = 0", "")).await;
    let report = tokio::time::timeout(std::time::Duration::from_secs(20), h.sync("items")).await.expect("the sync ends");
    assert_ne!(report.outcome, Outcome::CaughtUp);
    let first_line = tokio::time::timeout(std::time::Duration::from_secs(5), seen_rx).await.expect("the proxy was called").unwrap();
    assert_eq!(first_line, "CONNECT erp.syncmon-test.invalid:443 HTTP/1.1", "the call went to the proxy as a tunnel");
}
