//! The hostile-input table: small real HTTP servers on 127.0.0.1 that misbehave on purpose, the
//! real engine on a temporary SQLite file. Every case ends in a clear state (failed items for the
//! bad records, or a failed cycle whose message says what to do) within a timeout: never a hang,
//! a panic, a checkpoint past unprocessed data, or a lost change.

mod common;

use common::config_text;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use syncmon_core::config::Config;
use syncmon_core::engine::{CycleReport, Outcome};
use syncmon_core::source::FailureClass;
use syncmon_core::state::FailedStage;
use syncmon_core::store::FailedFilter;
use syncmon_core::{Health, Syncmon};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// No case may take longer than this: a hang fails the test instead of holding the suite.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

const API_KEY: &str = "hostile-test-api-key-0123";
const CLIENT_SECRET: &str = "hostile-test-client-secret-4567";

#[derive(Debug, Clone)]
struct Req {
    method: String,
    /// Path and query, as sent.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn query(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(&format!("http://x{}", self.target)).ok()?;
        url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

enum Body {
    Bytes(Vec<u8>),
    /// `chunk` written `times` times with no Content-Length, the connection closed at the end.
    Stream {
        chunk: Vec<u8>,
        times: usize,
    },
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

fn resp(status: u16, body: impl Into<Vec<u8>>) -> Resp {
    Resp { status, headers: vec![("trackingid".into(), format!("trk-{status}"))], body: Body::Bytes(body.into()) }
}

fn json(body: serde_json::Value) -> Resp {
    let mut r = resp(200, body.to_string());
    r.headers.push(("content-type".into(), "application/json".into()));
    r
}

fn with_header(mut r: Resp, name: &str, value: &str) -> Resp {
    r.headers.push((name.into(), value.into()));
    r
}

fn redirect(status: u16, location: &str) -> Resp {
    with_header(resp(status, ""), "location", location)
}

/// A page of the reference profile.
fn page(records: &[(&str, u64)], next_key: Option<&str>) -> Resp {
    let data: Vec<_> = records.iter().map(|(id, v)| serde_json::json!({"id": id, "rowVersion": v.to_string(), "name": format!("record {id}")})).collect();
    let mut body = serde_json::json!({"data": data, "morePages": next_key.is_some()});
    if let Some(k) = next_key {
        body["nextPageKey"] = k.into();
    }
    json(body)
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

/// A one-purpose HTTP/1.1 server: every connection gets one answer from `handler`, then closes.
/// Raw, so that it can send what no framework would (a body that never ends, bytes that are not
/// UTF-8, any status with any header).
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    async fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (handler, log) = (handler.clone(), log.clone());
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else { return };
                    log.lock().unwrap().push(req.clone());
                    let r = handler(&req);
                    let mut head = format!("HTTP/1.1 {} X\r\nconnection: close\r\n", r.status);
                    for (k, v) in &r.headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    match r.body {
                        Body::Bytes(b) => {
                            head.push_str(&format!("content-length: {}\r\n\r\n", b.len()));
                            let _ = sock.write_all(head.as_bytes()).await;
                            let _ = sock.write_all(&b).await;
                        }
                        Body::Stream { chunk, times } => {
                            head.push_str("\r\n");
                            if sock.write_all(head.as_bytes()).await.is_err() {
                                return;
                            }
                            for _ in 0..times {
                                if sock.write_all(&chunk).await.is_err() {
                                    return; // the client hung up: what a size cap does
                                }
                            }
                        }
                    }
                    let _ = sock.shutdown().await;
                });
            }
        });
        Server { port, seen }
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut chunk)).await.ok()?.ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut chunk)).await.ok()?.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Req { method, target, headers, body })
}

/// The engine on a temporary data directory, one entity `items` at `server`.
struct Case {
    _dir: tempfile::TempDir,
    sm: Arc<Syncmon>,
}

impl Case {
    fn new(base_url: &str, conn_extra: &str) -> Case {
        Self::with_entity(base_url, conn_extra, "")
    }

    fn with_entity(base_url: &str, conn_extra: &str, entity_extra: &str) -> Case {
        let extra = format!("max_retries = 1\n{conn_extra}");
        Self::from_text(config_text(base_url, &["items"], &extra, entity_extra))
    }

    fn from_text(text: String) -> Case {
        std::env::set_var("SYNCMON_HOSTILE_KEY", API_KEY);
        std::env::set_var("SYNCMON_HOSTILE_SECRET", CLIENT_SECRET);
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(&text).unwrap_or_else(|e| panic!("test config must parse: {e}\n{text}"));
        let sm = Arc::new(Syncmon::open(config, dir.path()).unwrap());
        Case { _dir: dir, sm }
    }

    async fn sync(&self) -> CycleReport {
        let sel = self.sm.select(None, &["items".to_string()]).unwrap();
        let cancel = CancellationToken::new();
        let run = self.sm.sync_once(&sel, &cancel);
        tokio::time::timeout(CASE_TIMEOUT, run).await.expect("the cycle must end, not hang").remove(0)
    }

    fn replica(&self) -> BTreeMap<String, String> {
        let mut buf = Vec::new();
        self.sm.export("items", false, &mut buf).unwrap();
        String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|v| (v["id"].as_str().unwrap().to_string(), v["rowVersion"].as_str().unwrap().to_string()))
            .collect()
    }

    fn status(&self) -> syncmon_core::EntityStatus {
        self.sm.status().unwrap().remove(0)
    }

    fn checkpoint(&self) -> String {
        self.status().checkpoint
    }

    fn error(r: &CycleReport) -> String {
        r.error.as_ref().map(|f| f.to_string()).unwrap_or_else(|| panic!("the cycle should fail: {}", r.summary()))
    }
}

const API_KEY_CONN: &str = "auth = \"api_key\"\napi_key_header = \"x-np-api-key\"\nsecret_env = \"SYNCMON_HOSTILE_KEY\"";

// ---- credentials never leave the configured origin ----

#[tokio::test]
async fn a_redirect_to_another_port_fails_naming_both_origins_and_the_key_never_arrives_there() {
    let other = Server::start(|_| page(&[("stolen", 7)], None)).await;
    let to = format!("{}/items?sync=true", other.origin());
    let api = Server::start(move |_| redirect(302, &to)).await;
    let case = Case::new(&api.origin(), API_KEY_CONN);
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::Failed);
    let err = r.error.clone().unwrap();
    assert_eq!(err.class, FailureClass::Config, "a cross-origin redirect is a configuration problem, not retried");
    assert!(err.message.contains(&api.origin()) && err.message.contains(&other.origin()), "names both origins: {}", err.message);
    assert!(err.message.contains("base_url"), "says what to do: {}", err.message);
    assert!(other.requests().iter().all(|q| q.header("x-np-api-key").is_none()), "the other origin must never see the API key");
    assert!(other.requests().is_empty(), "the other origin is not called at all");
    assert_eq!(api.requests().len(), 1, "not retried");
    assert!(case.replica().is_empty(), "the other origin's page is not accepted as data");
    let log = case.sm.requests(Some("items"), false, None, 10).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, Some(302));
    assert!(log[0].error.as_deref().unwrap_or("").contains("another origin"), "{:?}", log[0]);
}

#[tokio::test]
async fn a_target_that_redirects_to_another_origin_never_gets_the_change_nor_the_key() {
    let other = Server::start(|_| resp(200, "")).await;
    let to = other.origin();
    let target = Server::start(move |q| redirect(308, &format!("{to}{}", q.target))).await;
    let api = Server::start(|_| page(&[("a", 1)], None)).await;
    let text = config_text(&api.origin(), &["items"], "", "forward_to = \"dst\"")
        + &format!("\n[[target]]\nid = \"dst\"\nbase_url = \"{}\"\n{API_KEY_CONN}\n", target.origin());
    let case = Case::from_text(text);
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::CaughtUp, "{}", r.summary());
    assert!(other.requests().is_empty(), "the other origin gets neither the record nor the key");
    assert_eq!(target.requests().len(), 1, "not retried");
    let failed = case.sm.failed_items(&FailedFilter::default(), None, 10).unwrap();
    assert_eq!(failed.len(), 1, "the change is a failed item of stage deliver, to replay once the target is fixed");
    assert_eq!(failed[0].stage, FailedStage::Deliver);
    let msg = &failed[0].message;
    assert!(msg.contains(&target.origin()) && msg.contains(&other.origin()) && msg.contains("target's base_url"), "{msg}");
}

#[tokio::test]
async fn a_same_origin_redirect_is_followed_and_logged_as_its_own_call() {
    let api = Server::start(|q| {
        if q.target.starts_with("/v2/items") {
            page(&[("a", 1), ("b", 2)], None)
        } else {
            redirect(301, &q.target.replacen("/items", "/v2/items", 1))
        }
    })
    .await;
    let case = Case::new(&api.origin(), API_KEY_CONN);
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::CaughtUp, "{}", r.summary());
    assert_eq!(case.replica().len(), 2);
    assert!(api.requests().iter().all(|q| q.header("x-np-api-key") == Some(API_KEY)), "the same origin gets the key on every hop");
    let mut log = case.sm.requests(Some("items"), false, None, 10).unwrap();
    log.sort_by_key(|r| r.id);
    assert_eq!(log.len(), 2, "the redirect and the call it led to: {log:?}");
    assert_eq!(log[0].status, Some(301));
    assert!(log[0].url.contains("/items?") && !log[0].url.contains("/v2/"), "{}", log[0].url);
    assert_eq!(log[1].status, Some(200));
    assert!(log[1].url.contains("/v2/items?"), "{}", log[1].url);
}

#[tokio::test]
async fn redirects_in_a_circle_stop_after_a_few_hops() {
    let api = Server::start(|q| redirect(302, if q.target.starts_with("/a") { "/items" } else { "/a" })).await;
    let case = Case::new(&api.origin(), "");
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(Case::error(&r).contains("redirected more than 5 times"), "{}", Case::error(&r));
    assert_eq!(api.requests().len(), 6, "five hops followed, not retried");
}

#[tokio::test]
async fn a_token_url_307_to_another_origin_never_receives_the_client_secret() {
    let other = Server::start(|_| json(serde_json::json!({"access_token": "t", "expires_in": 3600}))).await;
    let to = format!("{}/oauth/token", other.origin());
    let api = Server::start(move |q| if q.target.starts_with("/oauth/token") { redirect(307, &to) } else { page(&[("a", 1)], None) }).await;
    let conn = format!("auth = \"oauth2\"\ntoken_url = \"{}/oauth/token\"\nclient_id = \"syncmon\"\nsecret_env = \"SYNCMON_HOSTILE_SECRET\"", api.origin());
    let case = Case::new(&api.origin(), &conn);
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::Failed);
    let msg = Case::error(&r);
    assert!(msg.contains(&api.origin()) && msg.contains(&other.origin()) && msg.contains("token_url"), "{msg}");
    assert!(!msg.contains(CLIENT_SECRET));
    assert!(other.requests().iter().all(|q| !String::from_utf8_lossy(&q.body).contains(CLIENT_SECRET)), "the secret never reaches the other origin");
    assert!(other.requests().is_empty());
    assert!(api.requests().iter().all(|q| q.method == "POST" && q.target.starts_with("/oauth/token")), "no data call without a token");
}

#[tokio::test]
async fn a_token_url_307_within_its_origin_re_posts_the_credentials_there() {
    let api = Server::start(|q| match q.target.as_str() {
        "/oauth/token" => redirect(307, "/oauth2/token"),
        "/oauth2/token" if String::from_utf8_lossy(&q.body).contains(CLIENT_SECRET) => json(serde_json::json!({"access_token": "tok", "expires_in": 3600})),
        "/oauth2/token" => resp(401, "no client secret"),
        _ if q.header("authorization") == Some("Bearer tok") => page(&[("a", 1)], None),
        _ => resp(401, "no token"),
    })
    .await;
    let conn = format!("auth = \"oauth2\"\ntoken_url = \"{}/oauth/token\"\nclient_id = \"syncmon\"\nsecret_env = \"SYNCMON_HOSTILE_SECRET\"", api.origin());
    let case = Case::new(&api.origin(), &conn);
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::CaughtUp, "{}", r.summary());
    let methods: Vec<_> = api.requests().iter().map(|q| format!("{} {}", q.method, q.target.split('?').next().unwrap())).collect();
    assert_eq!(methods, ["POST /oauth/token", "POST /oauth2/token", "GET /items"], "307 keeps the method and the body");
}

#[tokio::test]
async fn a_next_page_url_on_another_origin_is_refused() {
    let api = Server::start(|_| json(serde_json::json!({"data": [], "morePages": true, "nextPageURL": "http://127.0.0.2:9/items?pageKey=x"}))).await;
    let case = Case::new(&api.origin(), API_KEY_CONN);
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::Failed);
    let msg = Case::error(&r);
    assert!(msg.contains("http://127.0.0.2:9") && msg.contains(&api.origin()) && msg.contains("base_url"), "{msg}");
}

// ---- pages that never end ----

#[tokio::test]
async fn a_page_key_that_repeats_fails_the_cycle_at_the_last_good_page() {
    let api = Server::start(|q| match q.query("pageKey").as_deref() {
        None => page(&[("a", 1), ("b", 2)], Some("k1")),
        // Points at itself: the source is not advancing. Its record must not move the checkpoint.
        Some(_) => page(&[("c", 3)], Some("k1")),
    })
    .await;
    let case = Case::new(&api.origin(), "");
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::Failed);
    let msg = Case::error(&r);
    assert!(msg.contains("same next page twice (pageKey k1)") && msg.contains("not advancing"), "{msg}");
    assert!(msg.contains("checkpoint 2") && msg.contains("Trackingid trk-200") && msg.contains("source's owner"), "{msg}");
    assert_eq!(case.checkpoint(), "2", "nothing past the last good page is checkpointed");
    assert_eq!(case.replica().keys().cloned().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(api.requests().len(), 2);
    assert_eq!(case.status().health, Health::Failing);
}

#[tokio::test]
async fn a_run_of_pages_without_progress_fails_the_cycle() {
    let api = Server::start(|q| match q.query("pageKey") {
        None => page(&[("a", 1)], Some("p0")),
        Some(k) => {
            let n: u32 = k[1..].parse().unwrap();
            page(&[], Some(&format!("p{}", n + 1)))
        }
    })
    .await;
    let case = Case::new(&api.origin(), "");
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::Failed);
    let msg = Case::error(&r);
    assert!(msg.contains("50 pages in a row with no record") && msg.contains("not advancing") && msg.contains("checkpoint 1"), "{msg}");
    assert_eq!(case.checkpoint(), "1");
    assert_eq!(api.requests().len(), 51, "the first page and fifty empty ones");
}

#[tokio::test]
async fn a_timestamp_feed_of_empty_pages_without_end_fails_the_cycle() {
    // Reading its checkpoint again is how a timestamp feed polls; empty pages with a fresh next
    // link forever are still a source that is not advancing.
    let api = Server::start(|q| {
        let n: u32 = q.query("cursor").map_or(0, |c| c.parse().unwrap());
        let items = if n == 0 { serde_json::json!([{"id": "a", "lastModified": "2024-01-01T00:00:05Z"}]) } else { serde_json::json!([]) };
        json(serde_json::json!({"items": items, "links": {"next": format!("/items?cursor={}", n + 1)}}))
    })
    .await;
    let conn = "profile = \"timestamp\"\n[connection.cursor]\nversion_field = \"lastModified\"\nrecords_pointer = \"/items\"\n\
                filter_param = \"modifiedSince\"\nnext_url_pointer = \"/links/next\"";
    let case = Case::new(&api.origin(), conn);
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::Failed);
    let msg = Case::error(&r);
    assert!(msg.contains("50 pages in a row with no record") && msg.contains("checkpoint 2024-01-01T00:00:05Z"), "{msg}");
    assert_eq!(api.requests().len(), 51, "the first page and fifty empty ones");
    assert_eq!(case.replica().keys().cloned().collect::<Vec<_>>(), ["a"]);
}

#[tokio::test]
async fn decreasing_row_versions_across_pages_all_arrive() {
    let api = Server::start(|q| match q.query("pageKey").as_deref() {
        None => page(&[("a", 10), ("b", 11)], Some("k1")),
        Some(_) => page(&[("c", 5), ("d", 6)], None),
    })
    .await;
    let case = Case::new(&api.origin(), "");
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::CaughtUp, "{}", r.summary());
    assert_eq!(case.replica().len(), 4, "no change lost: {:?}", case.replica());
    assert_eq!(case.checkpoint(), "11");
}

// ---- bodies that are not pages ----

/// A body the page parser refuses: the cycle fails (after its retries) with what was wrong and
/// what to do, and the checkpoint stays.
async fn assert_refused_body(make: fn() -> Resp, expect: &str) {
    let api = Server::start(move |_| make()).await;
    let case = Case::new(&api.origin(), "");
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.summary());
    let msg = Case::error(&r);
    assert!(msg.contains(expect), "`{expect}` in: {msg}");
    assert!(msg.contains("source's owner"), "says what to do: {msg}");
    assert_eq!(case.checkpoint(), "0");
    assert!(case.replica().is_empty());
    assert_eq!(api.requests().len(), 2, "retried once (max_retries = 1), then given up");
}

#[tokio::test]
async fn a_body_that_is_not_json_fails_the_cycle() {
    assert_refused_body(|| resp(200, "hello, world"), "not a page of records").await;
}

#[tokio::test]
async fn html_with_status_200_fails_the_cycle() {
    assert_refused_body(
        || with_header(resp(200, "<!doctype html><html><body><h1>Sign in</h1></body></html>"), "content-type", "text/html"),
        "not a page of records",
    )
    .await;
}

#[tokio::test]
async fn a_body_that_is_not_utf8_fails_the_cycle() {
    assert_refused_body(|| resp(200, b"{\"data\":[{\"id\":\"a\",\"rowVersion\":\"1\",\"name\":\"\xff\xfe\"}]}".to_vec()), "not UTF-8").await;
}

#[tokio::test]
async fn deeply_nested_json_fails_the_cycle_without_overflowing_the_stack() {
    assert_refused_body(|| resp(200, format!("{{\"data\":{}", "[".repeat(100_000))), "not a page of records").await;
}

#[tokio::test]
async fn wrong_types_for_the_page_fields_fail_the_cycle() {
    assert_refused_body(|| json(serde_json::json!({"data": "records", "morePages": "yes"})), "not a page of records").await;
}

#[tokio::test]
async fn records_with_wrong_types_or_nested_too_deep_become_failed_items_and_the_good_ones_around_them_arrive() {
    let nested = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = format!(
        r#"{{"data":[{{"id":"a","rowVersion":"1"}},{{"id":"t","rowVersion":true}},{{"id":"n","rowVersion":"2","deep":{nested}}},{{"id":{{}},"rowVersion":"3"}},{{"id":"c","rowVersion":"4"}}]}}"#
    );
    let api = Server::start(move |_| resp(200, body.clone())).await;
    let case = Case::new(&api.origin(), "");
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::CaughtUp, "{}", r.summary());
    assert_eq!(case.replica().keys().cloned().collect::<Vec<_>>(), ["a", "c"], "the good records around the bad ones arrive");
    let failed = case.sm.failed_items(&FailedFilter::default(), None, 100).unwrap();
    let mut kinds: Vec<_> = failed.iter().map(|f| (f.record_id.clone().unwrap_or_default(), f.error_kind.clone())).collect();
    kinds.sort();
    assert_eq!(kinds, [("".to_string(), "missing_id".to_string()), ("n".into(), "too_deep".into()), ("t".into(), "missing_row_version".into())]);
    assert_eq!(case.checkpoint(), "4");
}

#[tokio::test]
async fn a_100_mb_body_is_refused_at_the_cap_while_it_streams_not_retried() {
    // 100 MB of a page that never closes, sent without a Content-Length.
    let api = Server::start(|_| {
        let mut r = resp(200, "");
        r.body = Body::Stream { chunk: [b"{\"data\":[".as_slice(), &[b' '; 1 << 20]].concat(), times: 100 };
        r
    })
    .await;
    let case = Case::new(&api.origin(), "");
    let started = Instant::now();
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::Failed);
    let err = r.error.clone().unwrap();
    assert_eq!(err.class, FailureClass::Config, "too large stays too large: no retry");
    assert!(err.message.contains("larger than 64 MB") && err.message.contains("page_size"), "{}", err.message);
    assert_eq!(api.requests().len(), 1);
    assert_eq!(case.checkpoint(), "0");
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}

// ---- a source that asks for a very long wait ----

#[tokio::test]
async fn a_retry_after_of_a_year_leaves_the_entity_waiting_with_the_time_not_a_hang() {
    const YEAR: u64 = 365 * 24 * 3600;
    let api = Server::start(|_| with_header(resp(429, r#"{"code":"too_many_requests","message":"slow down"}"#), "retry-after", &YEAR.to_string())).await;
    let case = Case::with_entity(&api.origin(), "", "poll_every = \"1s\"");
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::Waiting, "{}", r.summary());
    let until = r.next_attempt_at.expect("the report says until when");
    assert!((until - before - YEAR as i64 * 1000).abs() < 60_000, "a year from now: {until}");
    assert!(Case::error(&r).contains("asked to wait 365 days (Retry-After)"), "{}", Case::error(&r));
    let st = case.status();
    assert_eq!(st.health, Health::Waiting);
    assert_eq!(st.next_attempt_at, Some(until));
    assert_eq!(api.requests().len(), 1, "one call, no hot retries");

    // The agent does not call the source again before the time it was given: it polls every
    // second, so a window of 2.5 s would show its calls (an absence has no event to wait for).
    let cancel = CancellationToken::new();
    let agent = tokio::spawn({
        let (sm, cancel) = (case.sm.clone(), cancel.clone());
        async move { sm.run(cancel).await }
    });
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    cancel.cancel();
    tokio::time::timeout(CASE_TIMEOUT, agent).await.expect("the agent stops").unwrap().unwrap();
    assert_eq!(api.requests().len(), 1, "neither polls nor nudges call a source that asked to wait");
    assert_eq!(case.status().health, Health::Waiting);
}

#[tokio::test]
async fn a_short_retry_after_is_waited_for_within_the_cycle() {
    let calls = Arc::new(Mutex::new(0));
    let c = calls.clone();
    let api = Server::start(move |_| {
        let mut n = c.lock().unwrap();
        *n += 1;
        if *n == 1 {
            with_header(resp(429, ""), "retry-after", "1")
        } else {
            page(&[("a", 1)], None)
        }
    })
    .await;
    let case = Case::new(&api.origin(), "");
    let r = case.sync().await;
    assert_eq!(r.outcome, Outcome::CaughtUp, "{}", r.summary());
    assert_eq!(case.replica().len(), 1);
}
