//! How fast the UI's heaviest reads answer: a failed-items page of 100 at offset 0 / middle / end
//! out of 100,000 and 1,000,000 failed items (with and without filters), and the overview with 50
//! entities. Prints milliseconds (median of 5) and the query plans; asserts nothing.
//!
//!     cargo run --release -p syncmon-core --example api_bench [-- 100000]

use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use syncmon_core::api;
use syncmon_core::config::Config;
use syncmon_core::Syncmon;

const ENTITIES: usize = 50;
const KINDS: &[&str] = &["missing_id", "missing_row_version", "missing_field", "not_found"];

fn setup(failed: usize) -> (tempfile::TempDir, Arc<Syncmon>) {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("[[connection]]\nid = \"bench\"\nbase_url = \"http://127.0.0.1:9\"\n");
    for e in 0..ENTITIES {
        text.push_str(&format!("[[connection.entity]]\nname = \"e{e:02}\"\n"));
    }
    let sm = Arc::new(Syncmon::open(Config::parse(&text).unwrap(), dir.path()).unwrap());
    // Rows written straight into the store's tables (the triggers keep the pending counters).
    let mut c = rusqlite::Connection::open(dir.path().join("syncmon.db")).unwrap();
    let tx = c.transaction().unwrap();
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO failed_items (connection, entity, record_id, row_version, payload, stage, error_kind, message, http_status,
                   tracking_id, first_failed_at, last_failed_at) VALUES ('bench', ?1, ?2, NULL, ?3, 'validate', ?4, ?5, 200, ?6, ?7, ?7)",
            )
            .unwrap();
        let payload = format!("{{\"description\":\"{}\"}}", "x".repeat(600));
        for i in 0..failed {
            let kind = KINDS[i % KINDS.len()];
            ins.execute(rusqlite::params![
                format!("e{:02}", i % ENTITIES),
                format!("{:08x}-rec-{i}", i.wrapping_mul(2654435761) as u32),
                payload,
                kind,
                format!("the record has no `{kind}` value; fix it at the source, then replay"),
                format!("trk-{:032x}", (i as u128).wrapping_mul(0x9e3779b97f4a7c15)),
                i as i64,
            ])
            .unwrap();
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let mut run = tx
            .prepare("INSERT INTO runs (connection, entity, kind, started_at, finished_at, pages, records, outcome) VALUES ('bench', ?1, 'incremental', ?2, ?2, 1, ?3, 'caught_up')")
            .unwrap();
        let mut req = tx
            .prepare("INSERT INTO request_log (at, connection, entity, method, url, status, duration_ms, attempt) VALUES (?1, 'bench', ?2, 'GET', 'http://x', ?3, ?4, 1)")
            .unwrap();
        for e in 0..ENTITIES {
            for r in 0..500i64 {
                run.execute(rusqlite::params![format!("e{e:02}"), now - r * 170_000, r % 37]).unwrap();
            }
            for r in 0..200i64 {
                req.execute(rusqlite::params![now - r * 1_000, format!("e{e:02}"), if r % 50 == 0 { 503 } else { 200 }, 20 + r % 300]).unwrap();
            }
        }
    }
    tx.commit().unwrap();
    (dir, sm)
}

fn median_ms(rt: &tokio::runtime::Runtime, sm: &Arc<Syncmon>, req: serde_json::Value) -> (f64, serde_json::Value) {
    let mut times = Vec::new();
    let mut last = serde_json::Value::Null;
    for _ in 0..5 {
        let r = api::parse_request(req.clone()).unwrap();
        let t = Instant::now();
        last = rt.block_on(api::call(sm, r)).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[2], last)
}

fn plans(dir: &std::path::Path) {
    let c = rusqlite::Connection::open(dir.join("syncmon.db")).unwrap();
    for sql in [
        "SELECT id FROM failed_items WHERE state = 'pending' ORDER BY id DESC LIMIT 100 OFFSET 500000",
        "SELECT id FROM failed_items WHERE state = 'pending' AND connection = 'bench' AND entity = 'e07' ORDER BY id DESC LIMIT 100 OFFSET 100",
        "SELECT id FROM failed_items WHERE state = 'pending' AND error_kind = 'missing_id' ORDER BY id DESC LIMIT 100 OFFSET 100",
        "SELECT count(*) FROM failed_items WHERE state = 'pending' AND error_kind = 'missing_id'",
    ] {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let detail: Vec<String> = st.query_map([], |r| r.get::<_, String>(3)).unwrap().map(Result::unwrap).collect();
        println!("  plan  {sql}\n        → {}", detail.join(" / "));
    }
}

fn main() {
    let sizes: Vec<usize> = match std::env::args().nth(1) {
        Some(n) => vec![n.parse().expect("a number of failed items")],
        None => vec![100_000, 1_000_000],
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for n in sizes {
        let t = Instant::now();
        let (dir, sm) = setup(n);
        println!("{n} failed items, {ENTITIES} entities (set up in {:.1} s)", t.elapsed().as_secs_f64());
        plans(dir.path());
        let filters = [
            ("all pending", json!({})),
            ("one entity", json!({"entity": "bench/e07"})),
            ("error kind", json!({"error_kind": "missing_id"})),
            ("text search", json!({"text": "rec-4242"})),
        ];
        for (name, filter) in filters {
            let (_, first) = median_ms(&rt, &sm, json!({"method": "failed_page", "params": {"filter": filter, "offset": 0, "limit": 100}}));
            let total = first["total"].as_u64().unwrap() as u32;
            let mut line = format!("  failed_page {name:<12} total {total:>8}:");
            for (label, offset) in [("offset 0", 0), ("middle", total / 2), ("end", total.saturating_sub(100))] {
                let (ms, v) = median_ms(&rt, &sm, json!({"method": "failed_page", "params": {"filter": filter, "offset": offset, "limit": 100}}));
                assert!(!v["items"].as_array().unwrap().is_empty() || total == 0);
                line.push_str(&format!("  {label} {ms:7.2} ms"));
            }
            println!("{line}");
        }
        let (ms, o) = median_ms(&rt, &sm, json!({"method": "overview"}));
        println!("  overview ({} entities, {} requests in 5 min): {ms:.2} ms", o["entities"].as_array().unwrap().len(), o["header"]["requests_5m"]);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let time = |f: &dyn Fn()| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        };
        println!(
            "    of which: status {:.2} ms, request stats {:.2} ms, hourly changes {:.2} ms",
            time(&|| drop(sm.status().unwrap())),
            time(&|| {
                let _ = sm.store().request_stats(now - 300_000).unwrap();
            }),
            time(&|| drop(sm.store().hourly_changes(now, 24).unwrap())),
        );
    }
}
