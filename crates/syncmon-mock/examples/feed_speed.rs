//! How fast the simulated source builds and serves a large feed:
//! `cargo run --release -p syncmon-mock --example feed_speed -- [records] [page_size]`.

use std::time::{Duration, Instant};
use syncmon_mock::{EntitySpec, MockConfig, MockServer};

#[derive(serde::Deserialize)]
struct Page {
    #[serde(rename = "morePages")]
    more_pages: bool,
    #[serde(rename = "nextPageURL")]
    next_page_url: String,
    data: Vec<serde::de::IgnoredAny>,
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let records: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let page_size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let t = Instant::now();
    let mock = MockServer::start(MockConfig { entities: vec![EntitySpec { name: "items".into(), records }], ..Default::default() }).await.unwrap();
    println!("built {records} records in {:?}", t.elapsed());
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap();
    let t = Instant::now();
    let mut url = format!("{}/items?sync=true&pageSize={page_size}", mock.base_url());
    let (mut n, mut bytes) = (0usize, 0usize);
    loop {
        let body = client.get(&url).send().await.unwrap().bytes().await.unwrap();
        bytes += body.len();
        let page: Page = serde_json::from_slice(&body).unwrap();
        n += page.data.len();
        if !page.more_pages {
            break;
        }
        url = page.next_page_url;
    }
    let secs = t.elapsed().as_secs_f64();
    println!("served and parsed {n} records ({} MB) in {secs:.2}s: {:.0} records/s", bytes / 1_000_000, n as f64 / secs);
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(l) = status.lines().find(|l| l.starts_with("VmHWM")) {
            println!("peak memory (client and server): {}", l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "));
        }
    }
    mock.shutdown().await;
}
