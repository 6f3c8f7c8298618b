//! The demo's two-way pair: the store's stock and the ERP's, each the other's target. After two
//! rounds of syncs both systems hold the same stock; an edit on the ERP side reaches the store.

use std::net::TcpListener;
use syncmon_demo::{Demo, DemoOptions, ERP_STOCK, STORE_STOCK};
use tokio_util::sync::CancellationToken;

fn stock(demo: &Demo, system: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
    demo.mock.target_dataset(system).into_iter().map(|r| (r.id, r.data["quantity"].clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_pair_brings_both_systems_level_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let free_port = || TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let opts = DemoOptions { mock_listen: free_port(), webhook_listen: free_port(), records: 20, poll_seconds: 15 };
    let demo = Demo::start(&opts, dir.path()).await.unwrap();
    let sm = demo.open().unwrap();
    let pair = sm.select(None, &["store/stock".to_string(), "erp/stock".to_string()]).unwrap();
    let cancel = CancellationToken::new();
    for _ in 0..2 {
        for e in &pair {
            sm.sync_once(std::slice::from_ref(e), &cancel).await;
        }
    }
    assert_eq!(stock(&demo, ERP_STOCK).len(), 200, "the ERP side filled from the store");
    assert_eq!(stock(&demo, ERP_STOCK), stock(&demo, STORE_STOCK));

    let mut sku = demo.mock.target_get(ERP_STOCK, "sku-0003").unwrap();
    sku["quantity"] = 7.into();
    demo.mock.target_put(ERP_STOCK, "sku-0003", sku);
    for e in pair.iter().rev() {
        sm.sync_once(std::slice::from_ref(e), &cancel).await;
    }
    assert_eq!(stock(&demo, STORE_STOCK)["sku-0003"], 7, "the ERP's edit reached the store");
    let targets = sm.targets().unwrap();
    assert_eq!(targets.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), vec!["store", "erp"]);
}
