//! The feeds without a rowVersion over real HTTP on loopback: the timestamp feed (coarse
//! timestamps, an inclusive since, same-second edits) and the snapshot feed (full passes, changes
//! between passes, a pass cut in the middle).

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use syncmon_mock::{FeedKind, FeedSpec, MockConfig, MockServer, TimeFormat, TimestampFeed};

mod common;
use common::{client, get, get_json};

/// 2024-01-01T00:00:10Z: the newest of the initial timestamps.
const T: i64 = 1_704_067_210_000;

async fn post(url: &str, body: &str) -> reqwest::Response {
    client().post(url).body(body.to_string()).send().await.unwrap()
}

/// 250 vendors, 100 per timestamp (3 timestamps, the newest at T), and 120 prices.
fn start_config(format: TimeFormat) -> MockConfig {
    let ts = TimestampFeed { format, records_per_timestamp: 100, ..TimestampFeed::default() };
    MockConfig {
        entities: Vec::new(),
        feeds: vec![FeedSpec { kind: FeedKind::Timestamp(ts), ..FeedSpec::timestamp("vendors", 250) }, FeedSpec::snapshot("prices", 120)],
        clock_ms: Some(T),
        ..Default::default()
    }
}

async fn start_with(format: TimeFormat) -> MockServer {
    MockServer::start(start_config(format)).await.unwrap()
}

async fn start() -> MockServer {
    start_with(TimeFormat::Rfc3339).await
}

/// Follows `/links/next` from `first`; returns every record in order and the pages read.
async fn pass(first: &str) -> (Vec<Value>, usize) {
    let mut url = first.to_string();
    let mut out = Vec::new();
    for pages in 1..=10_000 {
        let page = get_json(&url).await;
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["links"]["next"].as_str() {
            Some(next) => url = next.to_string(),
            None => {
                assert!(page["links"]["next"].is_null());
                return (out, pages);
            }
        }
    }
    panic!("the feed never ended");
}

fn id(r: &Value) -> String {
    r["id"].as_str().unwrap().to_string()
}

fn ids(records: &[Value]) -> BTreeSet<String> {
    records.iter().map(id).collect()
}

#[tokio::test]
async fn an_inclusive_since_returns_the_boundary_second_again() {
    let mock = start().await;
    let base = mock.base_url();
    let (all, _) = pass(&format!("{base}/vendors?orderBy=lastModified&limit=1000")).await;
    assert_eq!(all.len(), 250);
    let newest = all.last().unwrap()["lastModified"].as_str().unwrap().to_string();
    assert_eq!(newest, "2024-01-01T00:00:10Z");
    assert_eq!(mock.newest_served("vendors").as_deref(), Some(newest.as_str()));

    // Since the newest second: that second's 50 records again, not nothing.
    let (again, _) = pass(&format!("{base}/vendors?modifiedSince={newest}&orderBy=lastModified&limit=1000")).await;
    assert_eq!(again.len(), 50);
    assert!(again.iter().all(|r| r["lastModified"] == newest.as_str()));
    // The second before it: both seconds; an offset names the same instant.
    let (two, _) = pass(&format!("{base}/vendors?modifiedSince=2024-01-01T00:00:09Z&limit=1000")).await;
    assert_eq!(two.len(), 150);
    let (offset, _) = pass(&format!("{base}/vendors?modifiedSince=2024-01-01T01%3A00%3A09%2B01%3A00&limit=1000")).await;
    assert_eq!(ids(&offset), ids(&two));
    let (later, _) = pass(&format!("{base}/vendors?modifiedSince=2024-01-01T00:00:10.001Z")).await;
    assert!(later.is_empty());

    for bad in ["modifiedSince=yesterday", "orderBy=displayName", "limit=0", "cursor=garbage!"] {
        let r = get(&format!("{base}/vendors?{bad}")).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_parameter");
    }
    let one = get_json(&format!("{base}/vendors/{}", id(&all[7]))).await;
    assert_eq!(one, all[7]);
}

#[tokio::test]
async fn records_sharing_three_timestamps_page_across_the_boundaries_once_each() {
    let mock = start().await;
    let base = mock.base_url();
    let truth: BTreeMap<String, Value> = mock.dataset("vendors").into_iter().map(|r| (r.id, r.data)).collect();
    assert_eq!(truth.values().map(|r| r["lastModified"].as_str().unwrap()).collect::<BTreeSet<_>>().len(), 3);
    for limit in [1, 7, 99, 100, 101, 250, 1000] {
        let (records, pages) = pass(&format!("{base}/vendors?modifiedSince=2024-01-01T00:00:00Z&orderBy=lastModified&limit={limit}")).await;
        assert_eq!(pages, 250usize.div_ceil(limit), "limit {limit}: a full last page says there is no next");
        assert_eq!(records.len(), 250, "limit {limit}: none missing or repeated");
        let got: BTreeMap<String, Value> = records.iter().map(|r| (id(r), r.clone())).collect();
        assert_eq!(got, truth, "limit {limit}");
        let keys: Vec<(String, String)> = records.iter().map(|r| (r["lastModified"].as_str().unwrap().to_string(), id(r))).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "limit {limit}: ordered by timestamp, ties by id");
        assert!(records.iter().all(|r| r.get("lastModifiedDateTime").is_none() && r.get("rowVersion").is_none()));
    }
    // The next link carries only an opaque cursor.
    let page = get_json(&format!("{base}/vendors?limit=10")).await;
    let next = page["links"]["next"].as_str().unwrap();
    assert!(next.starts_with(&format!("{base}/vendors?cursor=")) && !next.contains("modifiedSince"), "{next}");

    // Epoch milliseconds: an integer field and an integer since.
    let mock = start_with(TimeFormat::EpochMillis).await;
    let (records, _) = pass(&format!("{}/vendors?modifiedSince={}&limit=33", mock.base_url(), T - 1000)).await;
    assert_eq!(records.len(), 150);
    assert!(records.iter().all(|r| r["lastModified"].as_i64().is_some_and(|t| t == T || t == T - 1000)));
}

#[tokio::test]
async fn a_same_second_edit_is_visible_on_a_re_read_of_that_second() {
    let mock = start().await;
    let base = mock.base_url();
    let (all, _) = pass(&format!("{base}/vendors?limit=60")).await;
    let newest = mock.newest_served("vendors").unwrap();
    let at_newest: Vec<&Value> = all.iter().filter(|r| r["lastModified"] == newest.as_str()).collect();
    let older = all.iter().find(|r| r["lastModified"] != newest.as_str()).unwrap();

    // Even with the clock moved on, these edits stay in the second already read: one record of
    // that second changes content, one older record moves into it.
    mock.advance_clock_ms(5000);
    let changed = mock.edit_at_served("vendors", &[&id(at_newest[0]), &id(older)]);
    assert_eq!(changed.len(), 2);
    let by_http: Vec<String> = post(&format!("{base}/_mock/mutate-served/vendors?n=2"), "").await.json().await.unwrap();
    assert_eq!(by_http.len(), 2);

    let (reread, _) = pass(&format!("{base}/vendors?modifiedSince={newest}&limit=7")).await;
    assert!(reread.iter().all(|r| r["lastModified"] == newest.as_str()), "the edits kept the served second");
    let reread: BTreeMap<String, Value> = reread.iter().map(|r| (id(r), r.clone())).collect();
    for edited in changed.iter().chain(&by_http) {
        let before = all.iter().find(|r| id(r) == *edited).unwrap();
        assert_ne!(&reread[edited], before, "{edited} has new content");
    }
    assert!(reread.contains_key(&id(older)), "the older record moved into the second");
    let moved_in = by_http.iter().filter(|i| **i != id(older) && !at_newest.iter().any(|r| id(r) == **i)).count();
    assert_eq!(reread.len(), at_newest.len() + 1 + moved_in);

    // An ordinary change takes the clock's time; the clock is set over the control API too.
    let clock: Value = post(&format!("{base}/_mock/clock"), r#"{"rfc3339": "2024-01-01T00:00:30.700Z"}"#).await.json().await.unwrap();
    assert_eq!((clock["unix_ms"].as_i64(), clock["fixed"].as_bool()), (Some(T + 20_700), Some(true)));
    let moved: Vec<String> = post(&format!("{base}/_mock/mutate/vendors?n=1"), "").await.json().await.unwrap();
    let one = get_json(&format!("{base}/vendors/{}", moved[0])).await;
    assert_eq!(one["lastModified"], "2024-01-01T00:00:30Z", "stamped at the resolution");
    assert_eq!(post(&format!("{base}/_mock/clock"), r#"{"when": 1}"#).await.status(), 400);
    assert_eq!(get_json(&format!("{base}/_mock/clock")).await["unix_ms"], T + 20_700);
}

#[tokio::test]
async fn snapshot_inserts_updates_and_deletes_show_on_the_next_pass() {
    let mock = start().await;
    let base = mock.base_url();
    let (first, pages) = pass(&format!("{base}/prices?limit=40")).await;
    assert_eq!((first.len(), pages), (120, 3));
    assert_eq!(ids(&first).len(), 120);
    assert!(first.iter().all(|r| r.get("lastModified").is_none() && r.get("lastModifiedDateTime").is_none() && r.get("rowVersion").is_none()));

    let inserted: Vec<String> = post(&format!("{base}/_mock/insert/prices?n=3"), "").await.json().await.unwrap();
    let updated: Vec<String> = post(&format!("{base}/_mock/mutate/prices?n=5"), "").await.json().await.unwrap();
    let deleted = mock.delete("prices", 4);
    let (second, _) = pass(&format!("{base}/prices?limit=40")).await;
    let want: BTreeSet<String> = ids(&first).into_iter().filter(|i| !deleted.contains(i)).chain(inserted.iter().cloned()).collect();
    assert_eq!(ids(&second), want);
    assert_eq!(second.len(), want.len(), "each record once");
    let before: BTreeMap<String, Value> = first.iter().map(|r| (id(r), r.clone())).collect();
    for r in &second {
        let i = id(r);
        match before.get(&i) {
            None => assert!(inserted.contains(&i)),
            Some(old) if updated.contains(&i) && !deleted.contains(&i) => assert_ne!(old, r, "{i} changed"),
            Some(old) => assert_eq!(old, r, "{i} unchanged"),
        }
    }
    let truth: BTreeMap<String, Value> = mock.dataset("prices").into_iter().map(|r| (r.id, r.data)).collect();
    assert_eq!(second.iter().map(|r| (id(r), r.clone())).collect::<BTreeMap<_, _>>(), truth);

    // Page numbers page through the same set.
    let (numbered, pages) = pass(&format!("{base}/prices?page=1&limit=50")).await;
    assert_eq!((numbered.len(), pages), (119, 3));
    assert_eq!(numbered, second);
    let page2 = get_json(&format!("{base}/prices?page=2&limit=50")).await;
    assert_eq!(page2["links"]["next"].as_str().unwrap(), format!("{base}/prices?page=3&limit=50"));

    post(&format!("{base}/_mock/delete-all/prices"), "").await;
    let (empty, _) = pass(&format!("{base}/prices")).await;
    assert!(empty.is_empty());
}

#[tokio::test]
async fn an_injected_failure_cuts_a_pass_in_the_middle() {
    let mock = start().await;
    let base = mock.base_url();
    let r = post(&format!("{base}/_mock/faults"), r#"{"kind": "fail_page", "page": 3, "status": 503, "entity": "prices"}"#).await;
    assert_eq!(r.status(), 204);
    let p1 = get_json(&format!("{base}/prices?limit=25")).await;
    let p2 = get_json(p1["links"]["next"].as_str().unwrap()).await;
    assert_eq!(mock.pending_faults(), 1, "the first two pages leave it queued");
    let p3_url = p2["links"]["next"].as_str().unwrap().to_string();
    let failed = get(&p3_url).await;
    assert_eq!(failed.status(), 503);
    assert!(failed.text().await.unwrap().contains("<html>"), "a gateway error page");
    assert_eq!(mock.pending_faults(), 0);
    let p3 = get_json(&p3_url).await;
    assert_eq!(p3["items"].as_array().unwrap().len(), 25, "the same page works when asked again");

    // The page number counts in numbered paging too, and in the timestamp feed; times = 0 lasts.
    post(&format!("{base}/_mock/faults"), r#"{"kind": "fail_page", "page": 2, "times": 0}"#).await;
    assert_eq!(get(&format!("{base}/prices?page=1&limit=25")).await.status(), 200);
    assert_eq!(get(&format!("{base}/prices?page=2&limit=25")).await.status(), 500);
    let v1 = get_json(&format!("{base}/vendors?limit=100")).await;
    for _ in 0..2 {
        assert_eq!(get(v1["links"]["next"].as_str().unwrap()).await.status(), 500);
    }
    mock.clear_faults();
    assert_eq!(get(v1["links"]["next"].as_str().unwrap()).await.status(), 200);

    // The ordinary faults reach the feeds as well.
    post(&format!("{base}/_mock/faults"), r#"{"kind": "status", "status": 502, "entity": "vendors"}"#).await;
    assert_eq!(get(&format!("{base}/prices")).await.status(), 200);
    assert_eq!(get(&format!("{base}/vendors")).await.status(), 502);
    post(&format!("{base}/_mock/faults"), r#"{"kind": "missing_row_version", "records": 2, "entity": "vendors"}"#).await;
    let damaged = get_json(&format!("{base}/vendors?limit=5")).await;
    let items = damaged["items"].as_array().unwrap();
    assert!(items[..2].iter().all(|r| r.get("lastModified").is_none()) && items[2].get("lastModified").is_some());
}

#[tokio::test]
async fn the_default_mock_serves_one_feed_of_each_kind() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let base = mock.base_url();
    let feeds = get_json(&format!("{base}/_mock/feeds")).await;
    assert_eq!(feeds[0]["name"], "vendors");
    assert_eq!(
        (feeds[0]["kind"].as_str(), feeds[0]["field"].as_str(), feeds[0]["sinceParam"].as_str()),
        (Some("timestamp"), Some("lastModified"), Some("modifiedSince"))
    );
    assert_eq!((feeds[1]["name"].as_str(), feeds[1]["kind"].as_str()), (Some("prices"), Some("snapshot")));
    assert!(feeds[0]["newestServed"].is_null());
    let (vendors, _) = pass(&format!("{base}/vendors?modifiedSince=1970-01-01T00:00:00Z&orderBy=lastModified&limit=100")).await;
    assert_eq!(vendors.len(), 300);
    assert_eq!(get_json(&format!("{base}/_mock/feeds")).await[0]["newestServed"], vendors.last().unwrap()["lastModified"]);
    let (prices, _) = pass(&format!("{base}/prices?limit=100")).await;
    assert_eq!(prices.len(), 150);
    let ds: Vec<Value> = get_json(&format!("{base}/_mock/dataset/vendors")).await.as_array().unwrap().clone();
    assert!(ds.iter().all(|r| r["id"] == r["data"]["id"] && r["rowVersion"] == r["data"]["lastModified"]));
    // The rowVersion entities are where they were.
    assert_eq!(get_json(&format!("{base}/_mock/entities")).await.as_array().unwrap().len(), 3);

    // An entity of a feed's name wins; two feeds of one name are refused.
    let clash =
        MockServer::start(MockConfig { entities: vec![syncmon_mock::EntitySpec { name: "vendors".into(), records: 4 }], ..Default::default() }).await.unwrap();
    let page = get_json(&format!("{}/vendors?sync=true", clash.base_url())).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 4);
    assert_eq!(get_json(&format!("{}/_mock/feeds", clash.base_url())).await.as_array().unwrap().len(), 1);
    let twice = MockConfig { feeds: vec![FeedSpec::snapshot("p", 1), FeedSpec::snapshot("p", 2)], ..Default::default() };
    assert_eq!(MockServer::start(twice).await.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
}

/// With background changes on (the demo's), the feeds change too, stamped by the clock.
#[tokio::test]
async fn background_changes_reach_the_feeds() {
    let mock = MockServer::start(MockConfig { mutations_per_sec: 200.0, clock_ms: Some(T + 60_000), ..start_config(TimeFormat::Rfc3339) }).await.unwrap();
    let before = mock.dataset("vendors");
    let prices = mock.dataset("prices");
    let mut changed = (false, false);
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        changed = (mock.dataset("vendors") != before, mock.dataset("prices") != prices);
        if changed == (true, true) {
            break;
        }
    }
    assert_eq!(changed, (true, true));
    let stamped = mock.dataset("vendors").into_iter().filter(|r| r.row_version == "2024-01-01T00:01:10Z").count();
    assert!(stamped > 0, "changed records carry the clock's time");
    mock.shutdown().await;
}
