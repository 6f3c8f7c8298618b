//! What two-way bookkeeping costs replication: records per second of one cycle reading N records
//! into the replica, for an entity forwarding one way, against the same read by one side of a
//! two-way pair where every record is Syncmon's own write coming back (each fingerprinted and
//! checked against its base: the most bookkeeping a page can need). Both systems are simulated
//! targets serving what they hold as a feed; only the cycles are timed, not the deliveries.
//!
//!     cargo run --release -p syncmon-core --example two_way_bench [-- 20000]

use syncmon_core::config::Config;
use syncmon_core::Syncmon;
use syncmon_mock::{MockConfig, MockServer};
use tokio_util::sync::CancellationToken;

async fn system(records: usize) -> MockServer {
    let m = MockServer::start(MockConfig { entities: Vec::new(), ..Default::default() }).await.unwrap();
    for i in 0..records {
        let id = format!("r{i:07}");
        m.target_put(
            "items",
            &id,
            serde_json::json!({ "id": id, "name": format!("item {i}"), "qty": i, "tags": ["a", "b"], "price": { "amount": i * 3, "currency": "EUR" } }),
        );
    }
    m
}

fn conn(id: &str, mock: &MockServer, forward_to: &str) -> String {
    format!(
        "[[connection]]\nid = \"{id}\"\nbase_url = \"{}/target\"\nrequests_per_second = 10000\n\
         [[connection.entity]]\nname = \"items\"\npage_size = 1000\nforward_to = \"{forward_to}\"\n",
        mock.base_url()
    )
}

fn target(id: &str, mock: &MockServer) -> String {
    format!("[[target]]\nid = \"{id}\"\nbase_url = \"{}/target\"\nmax_concurrency = 8\nrequests_per_second = 100000\n", mock.base_url())
}

async fn cycle(sm: &Syncmon, name: &str) -> (u64, u64) {
    let sel = sm.select(None, &[name.to_string()]).unwrap();
    let r = sm.sync_once(&sel, &CancellationToken::new()).await.remove(0);
    (r.records, r.duration_ms.max(1))
}

#[tokio::main]
async fn main() {
    let records: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5000);

    // One way: `src` reads A and forwards to B.
    let (a, b) = (system(records).await, system(0).await);
    let dir = tempfile::tempdir().unwrap();
    let sm = Syncmon::open(Config::parse(&(conn("src", &a, "dst") + &target("dst", &b))).unwrap(), dir.path()).unwrap();
    let (n, ms) = cycle(&sm, "src/items").await;
    let one_way = n as f64 * 1000.0 / ms as f64;
    println!("one-way forwarding: a cycle reads {n} records in {ms} ms = {one_way:.0} records/s");

    // Two ways: `a` reads A and forwards to B, `b` reads B (every record an echo of a's writes).
    let (a, b) = (system(records).await, system(0).await);
    let dir = tempfile::tempdir().unwrap();
    let text = conn("a", &a, "b") + &conn("b", &b, "a") + &target("a", &a) + &target("b", &b);
    let sm = Syncmon::open(Config::parse(&text).unwrap(), dir.path()).unwrap();
    let (n_a, ms_a) = cycle(&sm, "a/items").await;
    let (n, ms) = cycle(&sm, "b/items").await;
    let two_way = n as f64 * 1000.0 / ms as f64;
    assert_eq!(sm.status().unwrap().iter().map(|s| s.forward_pending).sum::<i64>(), 0, "the echoes were not queued");
    println!("two-way pair, first side: {n_a} records in {ms_a} ms = {:.0} records/s", n_a as f64 * 1000.0 / ms_a as f64);
    println!("two-way pair, every record an echo: {n} records in {ms} ms = {two_way:.0} records/s ({:.2}x the one-way rate)", two_way / one_way);
}
