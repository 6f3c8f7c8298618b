//! What the mock's HTTP tests share: a loopback client and GETs that must answer.

use serde_json::Value;
use std::time::Duration;

/// No proxy (the tests talk to loopback only) and a 10 s timeout on every call.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

pub async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

/// A GET that must answer 200 with JSON.
pub async fn get_json(url: &str) -> Value {
    let r = get(url).await;
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}
