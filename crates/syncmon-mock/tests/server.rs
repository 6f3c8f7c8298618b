//! The simulated source over real HTTP on loopback.

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use syncmon_mock::{EntitySpec, Fault, FaultKind, MockAuth, MockConfig, MockServer};

mod common;
use common::{client, get, get_json};

fn cfg(specs: &[(&str, usize)]) -> MockConfig {
    MockConfig { entities: specs.iter().map(|(n, r)| EntitySpec { name: n.to_string(), records: *r }).collect(), ..Default::default() }
}

async fn start(specs: &[(&str, usize)]) -> MockServer {
    MockServer::start(cfg(specs)).await.unwrap()
}

fn version(v: &Value) -> u64 {
    v["rowVersion"].as_str().unwrap().parse().unwrap()
}

/// Follows a rowVersion feed by nextPageURL (or by nextPageKey); returns every record in order.
async fn feed(mock: &MockServer, entity: &str, first_query: &str, by_key: bool) -> (Vec<Value>, usize) {
    let mut url = format!("{}/{entity}?{first_query}", mock.base_url());
    let mut out = Vec::new();
    for pages in 1..=10_000 {
        let page = get_json(&url).await;
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        if !page["morePages"].as_bool().unwrap() {
            assert_eq!(page["nextPageKey"], "");
            return (out, pages);
        }
        url = if by_key {
            format!("{}/{entity}?pageKey={}", mock.base_url(), page["nextPageKey"].as_str().unwrap())
        } else {
            page["nextPageURL"].as_str().unwrap().to_string()
        };
    }
    panic!("the feed never ended");
}

fn assert_exactly_dataset(mock: &MockServer, entity: &str, records: &[Value]) {
    let versions: Vec<u64> = records.iter().map(version).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "ascending by rowVersion as integers");
    let served: BTreeMap<String, Value> = records.iter().map(|r| (r["id"].as_str().unwrap().to_string(), r.clone())).collect();
    assert_eq!(served.len(), records.len(), "each record exactly once");
    let ds = mock.dataset(entity);
    assert_eq!(ds.len(), served.len());
    for r in ds {
        assert_eq!(served[&r.id], r.data, "{}", r.id);
        assert_eq!(r.data["rowVersion"].as_str(), Some(r.row_version.as_str()));
    }
}

#[tokio::test]
async fn paging_returns_every_record_once_in_version_order() {
    let mock = start(&[("items", 2345), ("customers", 10)]).await;
    let (records, pages) = feed(&mock, "items", "sync=true&pageSize=500", false).await;
    assert_eq!(pages, 5);
    assert_exactly_dataset(&mock, "items", &records);
    let (by_key, _) = feed(&mock, "items", "sync=true&pageSize=700", true).await;
    assert_eq!(by_key, records);
    // Defaults: 1000 per page.
    let first = get_json(&format!("{}/items?sync=true", mock.base_url())).await;
    assert_eq!(first["data"].as_array().unwrap().len(), 1000);
    assert!(first["nextPageURL"].as_str().unwrap().starts_with(&format!("{}/items?pageKey=", mock.base_url())));
    // Realistic records.
    let rec = &records[0];
    assert!(uuid::Uuid::parse_str(rec["id"].as_str().unwrap()).is_ok());
    assert!(rec.as_object().unwrap().len() >= 16);
    assert!(rec["baseUnitOfMeasure"]["code"].is_string());
    let size = serde_json::to_string(rec).unwrap().len();
    assert!((600..1100).contains(&size), "about 800 bytes per item ({size})");
    mock.shutdown().await;
}

#[tokio::test]
async fn page_size_is_clamped_not_refused() {
    let mock = MockServer::start(MockConfig { max_page_size: 100, ..cfg(&[("items", 250)]) }).await.unwrap();
    let page = get_json(&format!("{}/items?sync=true&pageSize=100000", mock.base_url())).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 100);
    assert_eq!(page["morePages"], true);
    let (all, pages) = feed(&mock, "items", "sync=true&pageSize=5000", false).await;
    assert_eq!((all.len(), pages), (250, 3));
    let bad = get(&format!("{}/items?pageSize=zero", mock.base_url())).await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn last_row_version_filters_to_newer_changes() {
    let mock = start(&[("items", 300), ("customers", 50)]).await;
    let (all, _) = feed(&mock, "items", "sync=true", false).await;
    let high = version(all.last().unwrap());
    let (none, _) = feed(&mock, "items", &format!("sync=true&lastRowVersion={high}"), false).await;
    assert!(none.is_empty());
    let changed: HashSet<String> = mock.mutate("items", 5).into_iter().collect();
    assert_eq!(changed.len(), 5);
    mock.mutate("customers", 3);
    let inserted = mock.insert("items", 2);
    let (news, _) = feed(&mock, "items", &format!("sync=true&lastRowVersion={high}&pageSize=3"), false).await;
    let ids: HashSet<String> = news.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    let want: HashSet<String> = changed.iter().cloned().chain(inserted).collect();
    assert_eq!(ids, want);
    assert!(news.iter().all(|r| version(r) > high));
    // Deleted records disappear from the feed and the dataset.
    let deleted = mock.delete("items", 4);
    let (after, _) = feed(&mock, "items", "sync=true", false).await;
    assert_eq!(after.len(), 300 + 2 - 4);
    assert!(after.iter().all(|r| !deleted.contains(&r["id"].as_str().unwrap().to_string())));
    assert_exactly_dataset(&mock, "items", &after);
    // Single records.
    let one = &after[0];
    let got = get_json(&format!("{}/items/{}", mock.base_url(), one["id"].as_str().unwrap())).await;
    assert_eq!(&got, one);
    let gone = get(&format!("{}/items/{}", mock.base_url(), deleted[0])).await;
    assert_eq!(gone.status(), 404);
    assert_eq!(gone.json::<Value>().await.unwrap()["code"], "resource_not_found");
    mock.delete_all("items");
    assert!(mock.dataset("items").is_empty());
    let empty = get_json(&format!("{}/items?sync=true", mock.base_url())).await;
    assert_eq!(empty["data"].as_array().unwrap().len(), 0);
    assert_eq!(empty["morePages"], false);
}

#[tokio::test]
async fn versions_crossing_a_digit_boundary_compare_as_integers() {
    let mock = MockServer::start(MockConfig { start_version: 999_990, ..cfg(&[("items", 60)]) }).await.unwrap();
    let (all, pages) = feed(&mock, "items", "sync=true&pageSize=7", false).await;
    assert_eq!((all.len(), pages), (60, 9));
    let versions: Vec<u64> = all.iter().map(version).collect();
    assert_eq!(versions[0], 999_990);
    assert!(versions.iter().any(|v| *v >= 1_000_000));
    assert_exactly_dataset(&mock, "items", &all);
    let (tail, _) = feed(&mock, "items", "lastRowVersion=999998", false).await;
    assert_eq!(version(&tail[0]), 1_000_000);
}

#[tokio::test]
async fn errors_are_json_with_a_code() {
    let mock = start(&[("items", 5)]).await;
    let r = get(&format!("{}/itemz?sync=true", mock.base_url())).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "resource_not_found");
    for bad in ["lastRowVersion=12a", "lastRowVersion=-1", "pageKey=garbage!"] {
        let r = get(&format!("{}/items?sync=true&{bad}", mock.base_url())).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_parameter");
    }
}

#[tokio::test]
async fn every_response_has_a_trackingid_and_a_cache_id() {
    let mock =
        MockServer::start(MockConfig { auth: MockAuth::ApiKey { header: "x-np-api-key".into(), key: "k".into() }, ..cfg(&[("items", 5)]) }).await.unwrap();
    let base = mock.base_url();
    mock.inject(Fault { kind: FaultKind::Status(503), entity: None, times: 1 });
    let c = client();
    let mut seen = HashSet::new();
    let calls = vec![
        c.get(format!("{base}/items")).header("x-np-api-key", "k"),
        c.get(format!("{base}/items")).header("x-np-api-key", "k").header("x-api-version", "2024-06-01"),
        c.get(format!("{base}/items")),
        c.get(format!("{base}/nothing")).header("x-np-api-key", "k"),
        c.get(format!("{base}/_mock/entities")),
        c.post(format!("{base}/oauth/token")).body("grant_type=client_credentials&client_id=a&client_secret=b"),
    ];
    let mut statuses = Vec::new();
    for call in calls {
        let r = call.send().await.unwrap();
        statuses.push(r.status().as_u16());
        let t = r.headers().get("Trackingid").expect("Trackingid on every response").to_str().unwrap().to_string();
        assert!(seen.insert(t), "unique per call");
        assert!(r.headers().get("x-server-cache-id").is_some());
    }
    assert_eq!(statuses, [503, 200, 401, 404, 200, 200]);
    let log = mock.requests();
    assert_eq!(log.len(), 4, "data calls only");
    assert_eq!(log.iter().map(|r| r.status).collect::<Vec<_>>(), [503, 200, 401, 404]);
    assert!(log.iter().all(|r| seen.contains(&r.tracking_id)));
    let hv = |r: &syncmon_mock::RequestInfo, n: &str| r.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(hv(&log[1], "x-api-version").as_deref(), Some("2024-06-01"));
    assert_eq!(hv(&log[0], "x-np-api-key").as_deref(), Some("k"));
}

#[tokio::test]
async fn transport_faults_are_observable_and_heal() {
    let mock = start(&[("items", 30), ("customers", 30)]).await;
    let url = format!("{}/items?sync=true", mock.base_url());
    let c = client();

    mock.inject(Fault { kind: FaultKind::RateLimit { retry_after_secs: 7 }, entity: Some("items".into()), times: 1 });
    let r = get(&url).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert!(r.headers().get("trackingid").is_some());
    assert_eq!(get(&url).await.status(), 200, "used up");

    for s in [500u16, 502, 503, 504] {
        mock.inject(Fault { kind: FaultKind::Status(s), entity: Some("items".into()), times: 2 });
        for _ in 0..2 {
            let r = get(&url).await;
            assert_eq!(r.status().as_u16(), s);
            assert!(r.text().await.unwrap().contains("<html>"));
        }
        assert_eq!(get(&url).await.status(), 200);
    }
    for s in [400u16, 401, 403, 404] {
        mock.inject(Fault { kind: FaultKind::Status(s), entity: None, times: 1 });
        let r = get(&url).await;
        assert_eq!(r.status().as_u16(), s);
        let body: Value = r.json().await.unwrap();
        assert!(body["code"].as_str().unwrap().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        assert!(body["message"].is_string());
    }

    // Another entity's fault does not touch items; times = 0 lasts until cleared.
    mock.inject(Fault { kind: FaultKind::Status(503), entity: Some("customers".into()), times: 0 });
    assert_eq!(get(&url).await.status(), 200);
    for _ in 0..3 {
        assert_eq!(get(&format!("{}/customers", mock.base_url())).await.status(), 503);
    }
    mock.clear_faults();
    assert_eq!(get(&format!("{}/customers", mock.base_url())).await.status(), 200);

    mock.inject(Fault { kind: FaultKind::Slow { millis: 300 }, entity: None, times: 1 });
    let t = Instant::now();
    assert_eq!(get(&url).await.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(290));

    mock.inject(Fault { kind: FaultKind::Reset, entity: None, times: 1 });
    let err = c.get(&url).send().await.expect_err("the connection is reset without a response");
    assert!(!err.is_status());
    assert_eq!(get(&url).await.status(), 200, "the next call works");

    mock.inject(Fault { kind: FaultKind::Truncated, entity: None, times: 1 });
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err(), "the body ends before its Content-Length");
    assert_eq!(get(&url).await.status(), 200);

    mock.inject(Fault { kind: FaultKind::InvalidJson, entity: None, times: 1 });
    let r = get(&url).await;
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_err());

    let statuses: Vec<u16> = mock.requests().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&0), "the reset is logged with status 0");
}

#[tokio::test]
async fn record_faults_damage_one_page_and_leave_the_dataset_intact() {
    let mock = start(&[("items", 30)]).await;
    let url = format!("{}/items?sync=true&pageSize=10", mock.base_url());
    mock.inject(Fault { kind: FaultKind::MissingId { records: 2 }, entity: Some("items".into()), times: 1 });
    mock.inject(Fault { kind: FaultKind::MissingRowVersion { records: 3 }, entity: Some("items".into()), times: 1 });
    let p1 = get_json(&url).await;
    let d1 = p1["data"].as_array().unwrap();
    assert_eq!(d1.iter().filter(|r| r.get("id").is_none()).count(), 2);
    assert!(d1[0].get("id").is_none() && d1[0].get("rowVersion").is_some() && d1[0].get("number").is_some());
    let p2 = get_json(p1["nextPageURL"].as_str().unwrap()).await;
    let d2 = p2["data"].as_array().unwrap();
    assert_eq!(d2.iter().filter(|r| r.get("rowVersion").is_none()).count(), 3);
    assert!(d2.iter().all(|r| r.get("id").is_some()));
    let p3 = get_json(p2["nextPageURL"].as_str().unwrap()).await;
    assert!(p3["data"].as_array().unwrap().iter().all(|r| r.get("id").is_some() && r.get("rowVersion").is_some()));
    assert_eq!(mock.dataset("items").len(), 30);
    assert!(mock.dataset("items").iter().all(|r| r.data.get("id").is_some()));

    mock.inject(Fault { kind: FaultKind::DuplicateId, entity: None, times: 1 });
    let p = get_json(&url).await;
    let d = p["data"].as_array().unwrap();
    assert_eq!(d.len(), 11);
    assert_eq!(d[0]["id"], d[1]["id"]);
    assert!(version(&d[1]) < version(&d[0]), "the copy after it is older");
    let ids: HashSet<&str> = d.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 10);
}

/// Poison records stay poison: every read of them (feed or by id), before and after a change,
/// lacks `rowVersion`, while the feed still orders them by their version.
#[tokio::test]
async fn poison_records_are_served_without_row_version_in_every_version() {
    let mock = start(&[("items", 10)]).await;
    let base = mock.base_url();
    let served_before = mock.records_served();
    let poisoned = mock.insert_poisoned("items", 2);
    let by_http: Vec<String> = client().post(format!("{base}/_mock/insert-poisoned/items?n=1")).send().await.unwrap().json().await.unwrap();
    let all: HashSet<String> = poisoned.iter().chain(&by_http).cloned().collect();
    assert_eq!(all.len(), 3);
    assert_eq!(mock.poisoned("items").into_iter().collect::<HashSet<_>>(), all);
    let bad = |records: &[Value]| -> HashSet<String> {
        records.iter().filter(|r| r.get("rowVersion").is_none()).map(|r| r["id"].as_str().unwrap().to_string()).collect()
    };
    let page = get_json(&format!("{base}/items?sync=true&pageSize=100")).await;
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 13);
    assert_eq!(bad(data), all, "exactly the poison records lack rowVersion");
    assert_eq!(mock.records_served() - served_before, 13, "records served in pages are counted");
    for _ in 0..5 {
        mock.mutate("items", 13);
    }
    let page = get_json(&format!("{base}/items?sync=true&pageSize=100")).await;
    assert_eq!(bad(page["data"].as_array().unwrap()), all, "a change does not cure a poison record");
    let one = get_json(&format!("{base}/items/{}", poisoned[0])).await;
    assert!(one.get("rowVersion").is_none() && one["id"] == poisoned[0].as_str());
    mock.delete("items", 13);
    assert!(mock.poisoned("items").is_empty(), "deleted poison records are not listed");
}

#[tokio::test]
async fn faults_arrive_through_the_control_api() {
    let mock = start(&[("items", 20)]).await;
    let base = mock.base_url();
    let c = client();
    let r = c.post(format!("{base}/_mock/faults")).body(r#"{"kind":"status","status":503,"entity":"items","times":2}"#).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = c.post(format!("{base}/_mock/faults")).body(r#"{"kind":"rate_limit","retry_after_secs":3}"#).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.post(format!("{base}/_mock/faults")).body(r#"{"kind":"nope"}"#).send().await.unwrap().status(), 400);
    assert_eq!(get(&format!("{base}/items")).await.status(), 503);
    assert_eq!(get(&format!("{base}/items")).await.status(), 503);
    assert_eq!(get(&format!("{base}/items")).await.status(), 429);
    assert_eq!(get(&format!("{base}/items")).await.status(), 200);
    c.post(format!("{base}/_mock/faults")).body(r#"{"kind":"reset","times":0}"#).send().await.unwrap();
    assert!(c.get(format!("{base}/items")).send().await.is_err());
    assert_eq!(c.delete(format!("{base}/_mock/faults")).send().await.unwrap().status(), 204);
    assert_eq!(get(&format!("{base}/items")).await.status(), 200);

    let f: Fault = serde_json::from_str(r#"{"kind":"missing_row_version","records":2}"#).unwrap();
    assert_eq!(f, Fault { kind: FaultKind::MissingRowVersion { records: 2 }, entity: None, times: 1 });
    let back: Fault = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
    assert_eq!(back, f);

    let ids: Vec<String> = c.post(format!("{base}/_mock/mutate/items?n=3")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ids.len(), 3);
    let ids: Vec<String> = c.post(format!("{base}/_mock/insert/items?n=2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ids.len(), 2);
    let ids: Vec<String> = c.post(format!("{base}/_mock/delete/items?n=4")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ids.len(), 4);
    let ds: Vec<Value> = get_json(&format!("{base}/_mock/dataset/items")).await.as_array().unwrap().clone();
    assert_eq!(ds.len(), 18);
    assert!(ds.iter().all(|r| r["id"] == r["data"]["id"] && r["rowVersion"] == r["data"]["rowVersion"]));
    let ents = get_json(&format!("{base}/_mock/entities")).await;
    assert_eq!(ents[0]["name"], "items");
    assert_eq!(ents[0]["records"], 18);
    get_json(&format!("{base}/items")).await;
    let late: Value = c.post(format!("{base}/_mock/late-commit/items")).send().await.unwrap().json().await.unwrap();
    assert!(late["rowVersion"].as_str().unwrap().parse::<u64>().unwrap() < ents[0]["maxRowVersion"].as_str().unwrap().parse().unwrap());
    assert_eq!(c.post(format!("{base}/_mock/mutate/nope")).send().await.unwrap().status(), 404);
    assert!(mock.requests().iter().all(|r| !r.path.starts_with("/_mock")), "control calls are not logged");
}

#[tokio::test]
async fn a_late_commit_lands_below_the_highest_version_served() {
    let mock = start(&[("items", 100), ("customers", 10)]).await;
    let (all, _) = feed(&mock, "items", "sync=true&pageSize=40", false).await;
    let served_max = version(all.last().unwrap());
    mock.mutate("customers", 2);
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let late = mock.late_commit("items");
        let v: u64 = late.row_version.parse().unwrap();
        assert!(v < served_max);
        assert!(seen.insert(v));
        assert!(all.iter().all(|r| version(r) != v), "unused");
        assert_eq!(late.data["id"].as_str(), Some(late.id.as_str()));
        assert!(mock.dataset("items").contains(&late));
    }
    // A checkpoint at the served maximum misses it; a re-read from below finds it.
    let (after, _) = feed(&mock, "items", &format!("lastRowVersion={served_max}"), false).await;
    assert!(after.is_empty());
    let (again, _) = feed(&mock, "items", &format!("lastRowVersion={}", served_max - 20), false).await;
    assert!(again.len() >= 3);
}

/// A client-credentials request to the token endpoint, the form as given.
async fn token_request(c: &reqwest::Client, base: &str, form: &'static str) -> reqwest::Response {
    c.post(format!("{base}/oauth/token")).header("content-type", "application/x-www-form-urlencoded").body(form).send().await.unwrap()
}

#[tokio::test]
async fn oauth_tokens_are_required_and_can_be_expired() {
    let mock = MockServer::start(MockConfig {
        auth: MockAuth::OAuth { client_id: "app".into(), client_secret: "s3cret".into(), token_ttl_secs: 3600 },
        ..cfg(&[("items", 10)])
    })
    .await
    .unwrap();
    let base = mock.base_url();
    let c = client();
    let r = get(&format!("{base}/items")).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthorized");
    let bad = token_request(&c, &base, "grant_type=client_credentials&client_id=app&client_secret=wrong").await;
    assert_eq!(bad.status(), 401);
    let tok: Value =
        token_request(&c, &base, "grant_type=client_credentials&client_id=app&client_secret=s3cret&scope=api%3A%2F%2Fx%2F.default").await.json().await.unwrap();
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 3600);
    let token = tok["access_token"].as_str().unwrap().to_string();
    let ok = c.get(format!("{base}/items")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // HTTP Basic works too.
    let basic: Value = c
        .post(format!("{base}/oauth/token"))
        .basic_auth("app", Some("s3cret"))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(basic["access_token"].is_string());
    assert_eq!(mock.tokens_issued(), 2);
    mock.expire_tokens();
    let r = c.get(format!("{base}/items")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("trackingid").is_some());

    // Short-lived tokens expire by themselves.
    let mock = MockServer::start(MockConfig {
        auth: MockAuth::OAuth { client_id: "app".into(), client_secret: "s".into(), token_ttl_secs: 0 },
        ..cfg(&[("items", 1)])
    })
    .await
    .unwrap();
    let tok: Value = token_request(&c, &mock.base_url(), "grant_type=client_credentials&client_id=app&client_secret=s").await.json().await.unwrap();
    let r = c.get(format!("{}/items", mock.base_url())).bearer_auth(tok["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_alternative_shapes_page_through_everything() {
    let mock = MockServer::start(MockConfig { start_version: 99_900, ..cfg(&[("items", 345)]) }).await.unwrap();
    let base = mock.base_url();
    let truth: BTreeMap<String, String> = mock.dataset("items").into_iter().map(|r| (r.id, r.row_version)).collect();
    let check = |records: &[Value], shape: &str| {
        let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{shape}");
        let got: BTreeMap<String, String> = records.iter().map(|r| (r["uid"].as_str().unwrap().to_string(), r["seq"].as_u64().unwrap().to_string())).collect();
        assert_eq!(got, truth, "{shape}");
        assert!(records.iter().all(|r| r.get("id").is_none() && r.get("rowVersion").is_none() && r.get("displayName").is_some()));
    };

    // A token in the body, records under /result/items.
    let mut records = Vec::new();
    let mut token = String::new();
    for _ in 0..100 {
        let page = get_json(&format!("{base}/alt/token/items?since=0&limit=100&token={token}")).await;
        records.extend(page["result"]["items"].as_array().unwrap().iter().cloned());
        token = page["paging"]["next"].as_str().unwrap_or("").to_string();
        if token.is_empty() {
            break;
        }
    }
    check(&records, "token");

    // A Link header, top-level arrays.
    let mut records = Vec::new();
    let mut url = format!("{base}/alt/link/items?since=0&limit=100");
    for _ in 0..100 {
        let r = get(&url).await;
        let next = r.headers().get("link").map(|l| l.to_str().unwrap().to_string());
        records.extend(r.json::<Vec<Value>>().await.unwrap());
        match next {
            Some(l) => {
                assert!(l.ends_with("; rel=\"next\""));
                url = l[1..l.find('>').unwrap()].to_string();
            }
            None => break,
        }
    }
    check(&records, "link");

    // A short page ends the feed.
    let mut records: Vec<Value> = Vec::new();
    let mut since = 0;
    for _ in 0..100 {
        let page: Vec<Value> = get_json(&format!("{base}/alt/short/items?since={since}&limit=100&order=seq")).await.as_array().unwrap().clone();
        let n = page.len();
        records.extend(page);
        if n < 100 {
            break;
        }
        since = records.last().unwrap()["seq"].as_u64().unwrap();
    }
    check(&records, "short");

    // Faults apply to them too; single records by id.
    mock.inject(Fault { kind: FaultKind::MissingId { records: 1 }, entity: None, times: 1 });
    let page = get_json(&format!("{base}/alt/short/items?limit=5")).await;
    assert!(page[0].get("uid").is_none() && page[1].get("uid").is_some());
    mock.inject(Fault { kind: FaultKind::Status(504), entity: Some("items".into()), times: 1 });
    assert_eq!(get(&format!("{base}/alt/link/items")).await.status(), 504);
    let (id, v) = truth.iter().next().unwrap();
    let one = get_json(&format!("{base}/alt/token/items/{id}")).await;
    assert_eq!(one["seq"].as_u64().unwrap().to_string(), *v);
}

#[tokio::test]
async fn the_same_seed_gives_the_same_data() {
    let a = start(&[("items", 50), ("customers", 20), ("salesorders", 20)]).await;
    let b = start(&[("items", 50), ("customers", 20), ("salesorders", 20)]).await;
    let c = MockServer::start(MockConfig { seed: 7, ..cfg(&[("items", 50)]) }).await.unwrap();
    for e in ["items", "customers", "salesorders"] {
        assert_eq!(a.dataset(e), b.dataset(e), "{e}");
        assert_eq!(a.dataset(e).len(), if e == "items" { 50 } else { 20 });
    }
    assert_eq!(a.mutate("items", 5), b.mutate("items", 5), "the same changes too");
    assert_eq!(a.insert("customers", 2), b.insert("customers", 2));
    assert_eq!(a.dataset("items"), b.dataset("items"));
    assert_ne!(a.dataset("items")[0].id, c.dataset("items")[0].id);
    let cust = &a.dataset("customers")[0].data;
    assert!(cust["address"]["city"].is_string() && cust["email"].is_string());
    let order = &a.dataset("salesorders")[0].data;
    assert!(order["sellToAddress"]["city"].is_string() && order["totalAmountIncludingTax"].is_number());
}

#[tokio::test]
async fn background_mutations_change_records_over_time() {
    let mock = MockServer::start(MockConfig { mutations_per_sec: 400.0, ..cfg(&[("items", 100), ("customers", 100)]) }).await.unwrap();
    let before: BTreeMap<String, String> = mock.dataset("items").into_iter().map(|r| (r.id, r.row_version)).collect();
    let mut changed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now: BTreeMap<String, String> = mock.dataset("items").into_iter().map(|r| (r.id, r.row_version)).collect();
        if now != before {
            changed = true;
            break;
        }
    }
    assert!(changed);
    mock.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let mock = start(&[("items", 3)]).await;
    let url = format!("{}/items", mock.base_url());
    assert_eq!(get(&url).await.status(), 200);
    mock.shutdown().await;
    assert!(client().get(&url).send().await.is_err());
}

mod webhooks {
    use super::*;
    use axum::extract::{Query, State};
    use axum::http::HeaderMap;
    use base64::Engine;
    use hmac::{Hmac, Mac};
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<(HeaderMap, String, Option<String>)>>>;

    async fn receiver() -> (String, Seen) {
        let seen: Seen = Arc::default();
        async fn hook(
            State(seen): State<Seen>,
            Query(q): Query<std::collections::HashMap<String, String>>,
            headers: HeaderMap,
            body: String,
        ) -> (axum::http::StatusCode, String) {
            let token = q.get("validationToken").cloned();
            seen.lock().unwrap().push((headers, body, token.clone()));
            match token {
                Some(t) => (axum::http::StatusCode::OK, t),
                None => (axum::http::StatusCode::ACCEPTED, String::new()),
            }
        }
        let app = axum::Router::new().route("/hook", axum::routing::post(hook)).with_state(seen.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        (url, seen)
    }

    #[tokio::test]
    async fn standard_webhooks_are_signed() {
        let mock = start(&[("items", 3)]).await;
        let (url, seen) = receiver().await;
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert_eq!(mock.send_standard_webhook(&url, secret, "items").await.unwrap().as_u16(), 202);
        let (h, body, _) = seen.lock().unwrap().remove(0);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((v["type"].as_str(), v["entity"].as_str()), (Some("record.changed"), Some("items")));
        let id = h["webhook-id"].to_str().unwrap();
        let ts: i64 = h["webhook-timestamp"].to_str().unwrap().parse().unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        assert!((now - ts).abs() < 60);
        let key = base64::engine::general_purpose::STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{ts}.{body}").as_bytes());
        let want = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
        assert_eq!(h["webhook-signature"].to_str().unwrap(), want);
    }

    #[tokio::test]
    async fn business_central_notifications_and_validation() {
        let mock = start(&[("customers", 3)]).await;
        let (url, seen) = receiver().await;
        let (status, body) = mock.bc_validate(&url, "tok 123&x").await.unwrap();
        assert_eq!((status.as_u16(), body.as_str()), (200, "tok 123&x"));
        assert_eq!(seen.lock().unwrap().remove(0).1, "", "an empty body");
        assert_eq!(mock.send_bc_webhook(&url, "state-1", "customers").await.unwrap().as_u16(), 202);
        let (_, body, _) = seen.lock().unwrap().remove(0);
        let v: Value = serde_json::from_str(&body).unwrap();
        let n = &v["value"][0];
        assert_eq!(n["clientState"], "state-1");
        assert_eq!(n["changeType"], "updated");
        let resource = n["resource"].as_str().unwrap();
        assert!(resource.starts_with("api/v2.0/companies(") && resource.contains(")/customers("), "{resource}");
        assert!(n["subscriptionId"].is_string() && n["expirationDateTime"].is_string());
    }
}

/// Sends one raw HTTP/1.1 request and reads until the peer closes (bounded by a timeout).
async fn raw(addr: std::net::SocketAddr, path: &str) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await??;
    Ok(out)
}

#[tokio::test]
async fn truncation_and_reset_on_the_wire() {
    let mock = start(&[("items", 3000)]).await;
    for page_size in [1, 20_000] {
        mock.inject(Fault { kind: FaultKind::Truncated, entity: None, times: 1 });
        let bytes = raw(mock.addr(), &format!("/items?pageSize={page_size}")).await.unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"));
        assert!(head.to_ascii_lowercase().contains("trackingid: "));
        let len: usize = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap())).unwrap();
        assert!(!body.is_empty() && body.len() < len, "{} of {len} bytes", body.len());
        assert!(body.starts_with("{\"morePages\":"));
    }
    mock.inject(Fault { kind: FaultKind::Reset, entity: None, times: 1 });
    match raw(mock.addr(), "/items").await {
        Ok(bytes) => assert!(bytes.is_empty(), "no response at all"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    let page = get_json(&format!("{}/items?pageSize=2", mock.base_url())).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_target_stores_puts_removes_deletes_and_takes_only_faults_aimed_at_it() {
    let mock = start(&[("items", 3)]).await;
    let c = client();
    let url = |id: &str| format!("{}/target/items/{id}", mock.base_url());
    let rec = serde_json::json!({ "id": "a", "rowVersion": "7", "name": "x" });

    let r = c.put(url("a")).json(&rec).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("trackingid").is_some(), "target answers carry a Trackingid");
    let newer = serde_json::json!({ "id": "a", "rowVersion": "9", "name": "y" });
    assert_eq!(c.put(url("a")).json(&newer).send().await.unwrap().status(), 200, "a replace");
    let held = mock.target_dataset("items");
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].id.as_str(), held[0].row_version.as_str()), ("a", "9"));
    assert_eq!(held[0].data, newer);
    let over_http = get_json(&format!("{}/_mock/target/items", mock.base_url())).await;
    assert_eq!(over_http[0]["rowVersion"], "9");
    assert_eq!(get_json(&url("a")).await, newer);

    assert_eq!(c.put(url("b")).json(&rec).send().await.unwrap().status(), 400, "the body's id must be the URL's");
    assert_eq!(c.put(url("b")).body("[1]").send().await.unwrap().status(), 400, "an object, not an array");

    // Faults without an entity are the source's; target faults are aimed with `target:`.
    mock.inject(Fault { kind: FaultKind::Status(503), entity: None, times: 1 });
    assert_eq!(c.put(url("a")).json(&newer).send().await.unwrap().status(), 200);
    assert_eq!(get(&format!("{}/items", mock.base_url())).await.status(), 503);
    mock.inject(Fault { kind: FaultKind::Status(422), entity: Some("target:items".into()), times: 1 });
    mock.inject(Fault { kind: FaultKind::RateLimit { retry_after_secs: 3 }, entity: Some("target:*".into()), times: 1 });
    assert_eq!(get(&format!("{}/items", mock.base_url())).await.status(), 200, "the source is not affected");
    let r = c.put(url("a")).json(&newer).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "unprocessable_entity");
    let r = c.delete(url("a")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["retry-after"].to_str().unwrap()), (429, "3"));

    assert_eq!(c.delete(url("a")).send().await.unwrap().status(), 204);
    assert_eq!(c.delete(url("a")).send().await.unwrap().status(), 404, "already gone");
    assert!(mock.target_dataset("items").is_empty());
    let target_calls: Vec<_> = mock.requests().into_iter().filter(|r| r.path.starts_with("/target/")).collect();
    assert_eq!(target_calls.iter().filter(|r| r.method == "DELETE").count(), 3);
    assert_eq!(target_calls.last().unwrap().status, 404);
}
