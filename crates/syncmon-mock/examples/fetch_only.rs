//! The benchmark's fetch-only baseline (`bench/run.py`): reads a running source's replication feed
//! page by page over one keep-alive connection and parses every record (id, rowVersion, the rest
//! kept as raw JSON), storing nothing. This is what any replicator pays before it writes a byte:
//! `cargo run --release -p syncmon-mock --example fetch_only -- URL [entity] [page_size] [last_row_version]`
//! where URL is the source's base (e.g. `http://127.0.0.1:8080`). Prints one JSON line.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::time::{Duration, Instant};

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(rename = "morePages")]
    more_pages: bool,
    #[serde(rename = "nextPageURL", default)]
    next_page_url: String,
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(rename = "rowVersion", borrow)]
    row_version: std::borrow::Cow<'a, str>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let base = args.next().expect("usage: fetch_only URL [entity] [page_size] [last_row_version]");
    let entity = args.next().unwrap_or_else(|| "items".into());
    let page_size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let last: String = args.next().unwrap_or_else(|| "0".into());
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap();
    let t = Instant::now();
    let mut url = format!("{base}/{entity}?sync=true&lastRowVersion={last}&pageSize={page_size}");
    let (mut n, mut bytes, mut pages, mut max_len) = (0usize, 0usize, 0usize, 0usize);
    // Bounded: a feed of more than 100 million pages is a bug in the source.
    for _ in 0..100_000_000u64 {
        let resp = client.get(&url).send().await.unwrap();
        assert!(resp.status().is_success(), "{url}: HTTP {}", resp.status());
        let body = resp.bytes().await.unwrap();
        bytes += body.len();
        pages += 1;
        let page: Page = serde_json::from_slice(&body).unwrap();
        for raw in &page.data {
            let r: Record = serde_json::from_str(raw.get()).unwrap();
            max_len = max_len.max(r.id.len() + r.row_version.len());
        }
        n += page.data.len();
        if !page.more_pages || page.next_page_url.is_empty() {
            break;
        }
        // The key stands for the whole query (page size included).
        url = page.next_page_url;
    }
    let secs = t.elapsed().as_secs_f64();
    std::hint::black_box(max_len);
    println!("{{\"records\":{n},\"pages\":{pages},\"bytes\":{bytes},\"seconds\":{secs:.4},\"records_per_sec\":{:.0}}}", n as f64 / secs.max(1e-9));
}
