//! `syncmon serve`'s HTTP surface on loopback, with a real engine on a temporary directory
//! replicating the simulated source: auth, Host/Origin checks, RPC, the event stream, static files.
//! Requests are written by hand so that every header (Host, Origin, Cookie) is exactly what a
//! browser or an attacker would send.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use syncmon_core::config::Config;
use syncmon_core::Syncmon;
use syncmon_mock::{EntitySpec, MockConfig, MockServer};
use syncmon_serve::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "test-token-0123456789abcdef";

struct Setup {
    _dir: tempfile::TempDir,
    ui: tempfile::TempDir,
    _mock: MockServer,
    sm: Arc<Syncmon>,
    addr: SocketAddr,
    stop: CancellationToken,
    server: Option<Server>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn setup(with_ui: bool) -> Setup {
    let mock = MockServer::start(MockConfig { entities: vec![EntitySpec { name: "items".into(), records: 120 }], ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{}\"\nrequests_per_second = 1000\n[[connection.entity]]\nname = \"items\"\npage_size = 50\npoll_every = \"1h\"\n",
        mock.base_url()
    );
    let sm = Arc::new(Syncmon::open(Config::parse(&text).unwrap(), dir.path()).unwrap());
    let ui = tempfile::tempdir().unwrap();
    if with_ui {
        std::fs::write(ui.path().join("index.html"), "<!doctype html><title>Syncmon UI</title>").unwrap();
        std::fs::create_dir(ui.path().join("assets")).unwrap();
        std::fs::write(ui.path().join("assets/app-1234.js"), "console.log('ui')").unwrap();
    }
    let stop = CancellationToken::new();
    let server = Server::start(sm.clone(), "127.0.0.1:0".parse().unwrap(), TOKEN.into(), ui.path().to_path_buf(), stop.clone()).await.unwrap();
    let addr = server.addr;
    Setup { _dir: dir, ui, _mock: mock, sm, addr, stop, server: Some(server) }
}

struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// One request over a fresh connection; `extra` are header lines ("Name: value").
async fn send(addr: SocketAddr, method: &str, path: &str, host: &str, extra: &[String], body: &str) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for h in extra {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw)).await.expect("the server answers within 10 s").unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let r = Resp { status, head: head.to_string(), body: body.to_string() };
    assert!(r.header("access-control-allow-origin").is_none(), "no CORS headers, ever: {}", r.head);
    r
}

fn host(addr: SocketAddr) -> String {
    format!("127.0.0.1:{}", addr.port())
}

fn bearer() -> Vec<String> {
    vec![format!("Authorization: Bearer {TOKEN}")]
}

async fn rpc(addr: SocketAddr, auth: &[String], body: &str) -> Resp {
    let mut h = auth.to_vec();
    h.push("Content-Type: application/json".into());
    send(addr, "POST", "/api/rpc", &host(addr), &h, body).await
}

#[tokio::test]
async fn the_api_needs_the_token_as_bearer_or_cookie() {
    let s = setup(true).await;
    let r = rpc(s.addr, &[], r#"{"method":"overview"}"#).await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("\"unauthorized\"") && r.body.contains("--show-token"), "{}", r.body);
    assert_eq!(rpc(s.addr, &["Authorization: Bearer wrong-token-0123456789".into()], r#"{"method":"overview"}"#).await.status, 401);
    assert_eq!(send(s.addr, "GET", "/api/events", &host(s.addr), &[], "").await.status, 401);
    assert_eq!(send(s.addr, "GET", "/api/status", &host(s.addr), &[], "").await.status, 401);

    let r = rpc(s.addr, &bearer(), r#"{"method":"overview","params":{}}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["entities"][0]["entity"], "items");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let st = send(s.addr, "GET", "/api/status", &host(s.addr), &bearer(), "").await;
    assert_eq!(st.status, 200);
    assert!(st.body.contains("\"items\""));

    // Errors keep the contract's shape.
    let r = rpc(s.addr, &bearer(), r#"{"method":"entity_detail","params":{"entity":"nope"}}"#).await;
    assert_eq!(r.status, 404);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"]["code"], "not_found");
    let r = send(s.addr, "POST", "/api/rpc", &host(s.addr), &bearer(), r#"{"method":"overview"}"#).await;
    assert_eq!(r.status, 400, "a form post (no JSON content type) is refused");

    // The link with the token sets an HttpOnly, SameSite=Strict cookie and redirects to /.
    let r = send(s.addr, "GET", &format!("/?token={TOKEN}"), &host(s.addr), &[], "").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location").as_deref(), Some("/"));
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with(&format!("syncmon_token={TOKEN}")) && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"),
        "{cookie}"
    );
    let r = rpc(s.addr, &[format!("Cookie: syncmon_token={TOKEN}")], r#"{"method":"settings"}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = send(s.addr, "GET", "/?token=wrong", &host(s.addr), &[], "").await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("syncmon serve --show-token"), "the page says how to get the URL: {}", r.body);
    assert!(r.header("set-cookie").is_none());
}

#[tokio::test]
async fn foreign_hosts_and_origins_are_refused() {
    let s = setup(true).await;
    let port = s.addr.port();
    for bad in [format!("evil.example:{port}"), format!("127.0.0.1:{}", port + 1), "127.0.0.1".to_string(), format!("localhost.evil.example:{port}")] {
        let r = send(s.addr, "GET", "/api/status", &bad, &bearer(), "").await;
        assert_eq!(r.status, 403, "Host {bad}");
        assert_eq!(send(s.addr, "GET", "/", &bad, &[], "").await.status, 403, "Host {bad} on a static file");
    }
    for good in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        assert_eq!(send(s.addr, "GET", "/api/status", &good, &bearer(), "").await.status, 200, "Host {good}");
    }
    let mut h = bearer();
    h.push("Content-Type: application/json".into());
    h.push("Origin: http://evil.example".into());
    let r = send(s.addr, "POST", "/api/rpc", &host(s.addr), &h, r#"{"method":"overview"}"#).await;
    assert_eq!(r.status, 403);
    h.pop();
    h.push(format!("Origin: http://127.0.0.1:{port}"));
    assert_eq!(send(s.addr, "POST", "/api/rpc", &host(s.addr), &h, r#"{"method":"overview"}"#).await.status, 200, "same origin is fine");
    h.pop();
    h.push("Origin: null".into());
    assert_eq!(send(s.addr, "POST", "/api/rpc", &host(s.addr), &h, r#"{"method":"overview"}"#).await.status, 403);
}

#[tokio::test]
async fn static_files_spa_fallback_and_security_headers() {
    let s = setup(true).await;
    let r = send(s.addr, "GET", "/", &host(s.addr), &[], "").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Syncmon UI"));
    assert_eq!(
        r.header("content-security-policy").as_deref(),
        Some("default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
    );
    assert_eq!(r.header("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(r.header("referrer-policy").as_deref(), Some("no-referrer"));
    assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
    let js = send(s.addr, "GET", "/assets/app-1234.js", &host(s.addr), &[], "").await;
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").unwrap().starts_with("text/javascript"));
    assert!(js.header("cache-control").unwrap().contains("immutable"));
    let route = send(s.addr, "GET", "/failed/items", &host(s.addr), &[], "").await;
    assert_eq!(route.status, 200, "client-side routes get index.html");
    assert!(route.body.contains("Syncmon UI"));
    assert_eq!(send(s.addr, "GET", "/assets/missing.js", &host(s.addr), &[], "").await.status, 404);
    assert_eq!(send(s.addr, "GET", "/../Cargo.toml", &host(s.addr), &[], "").await.status, 404);
    // Percent-escapes are not decoded into path segments: this is a (client-side) route, not a way out.
    let escaped = send(s.addr, "GET", "/assets/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", &host(s.addr), &[], "").await;
    assert!(escaped.body.contains("Syncmon UI") && !escaped.body.contains("root:"), "{}", escaped.body);
    assert_eq!(send(s.addr, "GET", "/api/nothing", &host(s.addr), &bearer(), "").await.status, 404);

    // Without a built UI: a page that says how to build it; the API still works.
    std::fs::remove_file(s.ui.path().join("index.html")).unwrap();
    let r = send(s.addr, "GET", "/", &host(s.addr), &[], "").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("npm --prefix ui ci &amp;&amp; npm --prefix ui run build"), "{}", r.body);
    assert_eq!(rpc(s.addr, &bearer(), r#"{"method":"overview"}"#).await.status, 200);
}

#[tokio::test]
async fn the_event_stream_delivers_a_finished_cycle_after_sync_now() {
    let mut s = setup(false).await;
    let agent = {
        let (sm, stop) = (s.sm.clone(), s.stop.clone());
        tokio::spawn(async move { sm.run(stop).await })
    };
    // The agent's first cycle runs at start; wait for it so the event below comes from sync_now.
    for _ in 0..200 {
        if s.sm.status().unwrap()[0].last_caught_up_at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(s.sm.status().unwrap()[0].last_caught_up_at.is_some(), "the first cycle catches up");

    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let req = format!("GET /api/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nAccept: text/event-stream\r\n\r\n", host(s.addr));
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    // Read until the stream says it is connected (the subscription exists from then on).
    while !seen.contains(": connected") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.expect("the stream opens").unwrap();
        assert!(n > 0, "the stream closed early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.to_ascii_lowercase().contains("content-type: text/event-stream"), "{seen}");

    let r = rpc(s.addr, &bearer(), r#"{"method":"sync_now","params":{"entity":"src/items"}}"#).await;
    assert_eq!(r.body, r#"{"nudged":1}"#);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut events = String::new();
    while !events.contains(r#""type":"cycle_finished""#) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await.expect("a cycle_finished event within 20 s").unwrap();
        assert!(n > 0, "the stream closed early: {events}");
        events.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let line = events.lines().find(|l| l.contains("cycle_finished")).unwrap();
    let event: serde_json::Value = serde_json::from_str(line.split_once("data:").expect("an SSE data line").1.trim()).unwrap();
    assert_eq!(event["entity"], "items");
    assert_eq!(event["outcome"], "caught_up");
    assert!(event["seq"].as_u64().is_some());

    // Shutdown ends the stream and the server, promptly.
    s.stop.cancel();
    let server = s.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.wait()).await.expect("the server stops with an event stream open").unwrap();
    tokio::time::timeout(Duration::from_secs(10), agent).await.expect("the agent stops").unwrap().unwrap();
}

/// The Failed screen's download: every matching item, streamed as CSV or JSON lines, behind the token.
#[tokio::test]
async fn failed_items_download_as_csv_and_json_lines() {
    let s = setup(false).await;
    s._mock.inject(syncmon_mock::Fault { kind: syncmon_mock::FaultKind::MissingRowVersion { records: 3 }, entity: None, times: 1 });
    let entities = s.sm.select(None, &[]).unwrap();
    s.sm.sync_once(&entities, &CancellationToken::new()).await;

    let r = send(s.addr, "GET", "/api/failed/export?format=csv&entity=items", &host(s.addr), &bearer(), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"), "{}", r.head);
    assert!(r.header("content-disposition").unwrap().contains("attachment; filename=\"syncmon-failed-items.csv\""), "{}", r.head);
    assert!(r.body.contains("id,connection,entity,record_id"), "{}", r.body);
    assert_eq!(r.body.matches("missing_row_version").count(), 3, "{}", r.body);

    let r = send(s.addr, "GET", "/api/failed/export?format=jsonl&kind=missing_row_version", &host(s.addr), &bearer(), "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.matches("\"error_kind\":\"missing_row_version\"").count(), 3, "{}", r.body);
    let r = send(s.addr, "GET", "/api/failed/export?format=jsonl&kind=not_json", &host(s.addr), &bearer(), "").await;
    assert!(!r.body.contains("error_kind"), "the filter applies: {}", r.body);

    let r = send(s.addr, "GET", "/api/failed/export?format=xml", &host(s.addr), &bearer(), "").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = send(s.addr, "GET", "/api/failed/export?entity=nope", &host(s.addr), &bearer(), "").await;
    assert!(r.status >= 400 && r.body.contains("nope"), "{} {}", r.status, r.body);
    let r = send(s.addr, "GET", "/api/failed/export", &host(s.addr), &[], "").await;
    assert_eq!(r.status, 401, "the download needs the token");

    // The RPC page carries the summary by error kind.
    let r = rpc(s.addr, &bearer(), r#"{"method":"failed_page","params":{"filter":{},"offset":0,"limit":10}}"#).await;
    let page: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(page["kinds"], serde_json::json!([{ "error_kind": "missing_row_version", "count": 3 }]), "{}", r.body);
}

/// The served UI's Diagnostics button: the bundle as a download behind the token, built in memory,
/// with SUMMARY.md first and stored uncompressed (the browser shows it without unzipping).
#[tokio::test]
async fn the_diagnostics_bundle_downloads_behind_the_token() {
    let s = setup(false).await;
    let entities = s.sm.select(None, &[]).unwrap();
    s.sm.sync_once(&entities, &CancellationToken::new()).await;

    let r = send(s.addr, "GET", "/api/diagnostics", &host(s.addr), &[], "").await;
    assert_eq!(r.status, 401, "the download needs the token");
    let r = send(s.addr, "GET", "/api/diagnostics", &host(s.addr), &bearer(), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type").as_deref(), Some("application/zip"), "{}", r.head);
    let disposition = r.header("content-disposition").unwrap();
    assert!(disposition.starts_with("attachment; filename=\"syncmon-diagnostics-") && disposition.ends_with(".zip\""), "{disposition}");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert!(r.body.starts_with("PK\u{3}\u{4}"), "a zip");
    let summary_at = r.body.find("SUMMARY.md").expect("SUMMARY.md is the first file");
    assert!(summary_at < 40, "SUMMARY.md's local header comes first: at {summary_at}");
    assert!(r.body.contains("# Syncmon diagnostics") && r.body.contains("src/items"), "the summary, uncompressed: {}", &r.body[..400.min(r.body.len())]);
    assert!(r.body.contains("status.json"), "the other files follow");
    assert!(!s._dir.path().join("diagnostics").exists(), "nothing is saved on the server");
}
