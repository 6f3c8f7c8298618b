//! The ported store on PostgreSQL: the same calls on both databases give the same answers.

use super::db::{Db, PgConn};
use super::test_support::rec;
use super::*;
use crate::record::{Record, Rejected};
use crate::state::{Outcome, RunKind};
use std::cell::RefCell;

/// A store on a new PostgreSQL database with the entity's replica table made as PostgreSQL's
/// schema makes it (`ensure_entity` still writes SQLite's DDL: see its `postgres:` note).
fn pg_store(url: &str, key: &EntityKey) -> Store {
    let connect = || Db::Postgres(Box::new(RefCell::new(PgConn::connect(&url.parse().unwrap()).unwrap())));
    let writer = connect();
    schema_pg::migrate(&writer).unwrap();
    writer.execute_batch(&schema_pg::replica_table_ddl(&key.table())).unwrap();
    Store {
        path: PathBuf::from("postgres"),
        writer: Some(Mutex::new(writer)),
        reader: Mutex::new(connect()),
        pending_log: Mutex::new(Vec::new()),
        pending_events: Mutex::new(Vec::new()),
    }
}

fn page(store: &Store, key: &EntityKey, run: i64, records: &[Record], rejected: &[Rejected], now_ms: i64) -> Result<Applied> {
    let max = records.iter().map(|r| r.version.clone()).max();
    let b = PageBatch {
        records,
        rejected,
        tracking_id: Some("t"),
        http_status: Some(200),
        max_version: max.as_ref(),
        resync_cursor: None,
        rereads_checkpoint: false,
        run_id: run,
        now_ms,
    };
    store.apply_page(key, &b)
}

/// Every step's answer (or error), in order. Left out until they have PostgreSQL's form (the
/// `postgres:` notes): `hourly_changes` (INDEXED BY), text filters of failed items and events
/// (instr), `find` (sqlite_master), `ingest_enqueue` (PRAGMA synchronous), snapshot passes.
fn steps(store: &Store, key: &EntityKey) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut step = |name: &'static str, r: Result<String>| out.push((name, r.unwrap_or_else(|e| format!("ERR {e}"))));
    let dbg = |v: &dyn std::fmt::Debug| format!("{v:?}");
    step("ensure_entity", store.ensure_entity(key).map(|v| dbg(&v)));
    let begun = store.begin_run(key, RunKind::Incremental, 1);
    let run = *begun.as_ref().unwrap_or(&0);
    step("begin_run", begun.map(|v| dbg(&v)));
    let bad = |id: &str| Rejected { id: Some(id.into()), version: None, payload: "{}".into(), kind: "missing_row_version", message: "m".into(), rule: None };
    step("apply", page(store, key, run, &[rec("a", "1"), rec("b", "2")], &[bad("c")], 10).map(|v| dbg(&v)));
    step("apply_again", page(store, key, run, &[rec("a", "3"), rec("b", "1"), rec("c", "4")], &[bad("d")], 20_000).map(|v| dbg(&v)));
    step("finish_run", store.finish_run(key, run, Outcome::CaughtUp, None, None, false, Some("t"), true, 30_000, 10).map(|v| dbg(&v)));
    step("entity", store.entity(key).map(|e| dbg(&(e.checkpoint, e.last_outcome, e.last_caught_up_at, e.last_full_resync_at, e.paused))));
    step("replica_count", store.replica_count(key).map(|v| dbg(&v)));
    step("checkpoint_history", store.checkpoint_history(key, 0).map(|v| dbg(&v)));
    step("schedule_lookback", store.schedule_lookback(key, 30_000, 600_000, None).map(|v| dbg(&v)));
    step("checkpoint_at", store.checkpoint_at(key, Some(25_000)).map(|v| dbg(&v)));
    step("runs", store.runs(key, 5).map(|v| dbg(&v.iter().map(|r| (r.outcome, r.pages, r.records, r.failed_records)).collect::<Vec<_>>())));
    step("failed_streak", store.failed_streak(key).map(|v| dbg(&v)));
    step("lag_history", store.lag_history(key, 0, 40_000, 10).map(|v| dbg(&v)));
    let all = FailedFilter::default();
    step("failed_count", store.failed_count(&all).map(|v| dbg(&v)));
    step("failed_kind_counts", store.failed_kind_counts(&all).map(|v| dbg(&v)));
    step("failed_page", store.failed_page(&all, 0, 10).map(|v| dbg(&v.iter().map(|i| (&i.record_id, i.attempts, i.state)).collect::<Vec<_>>())));
    step("failed_counts_by_stage", store.failed_counts_by_stage_and_state().map(|v| dbg(&v)));
    step("set_paused_many", store.set_paused_many(std::slice::from_ref(key), true).map(|v| dbg(&v)));
    step("set_forward_target", store.set_forward_target(key, Some("t"), 40_000).map(|v| dbg(&v)));
    step("outbox_batch", store.outbox_batch(key, 0, 10).map(|v| dbg(&v.iter().map(|o| (&o.record_id, &o.row_version, &o.kind, &o.data)).collect::<Vec<_>>())));
    step("delivery_succeeded", store.delivery_succeeded(key, "a", "3", "upsert", None, 41_000).map(|v| dbg(&v)));
    step("outbox_pending", store.outbox_pending(key).map(|v| dbg(&v)));
    step("outbox_by_target", store.outbox_by_target().map(|v| dbg(&v)));
    step("resync_begin", store.resync_begin(key).map(|v| dbg(&v)));
    step("apply_in_resync", page(store, key, run, &[rec("a", "3")], &[], 50_000).map(|v| dbg(&v)));
    step("resync_finish", store.resync_finish(key, 1, 0.9, false, 51_000).map(|v| dbg(&v)));
    step("replica_row", store.replica_row(key, "b").map(|v| dbg(&v)));
    step("set_setting", store.set_setting("ui", "{}").and_then(|_| store.set_setting("ui", "{\"a\":1}")).map(|v| dbg(&v)));
    step("setting", store.setting("ui").map(|v| dbg(&v)));
    step("verify", store.save_verify(key, 1, "{}").and_then(|_| store.last_verify(key)).map(|v| dbg(&v)));
    step("ingest_queued_count", store.ingest_queued_count().map(|v| dbg(&v)));
    step("events", {
        let e = events::StoredEvent { seq: 7, at: 1, kind: "caught_up".into(), connection: Some("c".into()), entity: None, body: "{}".into() };
        let q = EventQuery { kind: Some("caught_up".into()), entity: Some("items".into()), limit: 5, ..Default::default() };
        store.log_event(e).and_then(|_| store.find_events(&q)).map(|v| dbg(&v))
    });
    step("last_event_seq", store.last_event_seq().map(|v| dbg(&v)));
    step("log_request", {
        let r = RequestRow {
            id: 0,
            at: 5,
            connection: "c".into(),
            entity: Some("items".into()),
            method: "GET".into(),
            url: "http://x".into(),
            status: Some(503),
            duration_ms: 12,
            attempt: 1,
            bytes: None,
            tracking_id: Some("t".into()),
            error: None,
        };
        store
            .log_request(&r)
            .and_then(|_| store.requests(Some(key), true, Some("t"), 5))
            .map(|v| dbg(&v.iter().map(|r| (r.status, r.duration_ms)).collect::<Vec<_>>()))
    });
    step("request_stats", store.request_stats(0).map(|v| dbg(&v)));
    step("integrity_check", store.integrity_check().map(|v| dbg(&v)));
    out
}

#[test]
fn the_store_answers_alike_on_sqlite_and_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let key = EntityKey::new("c", "items");
    let sqlite = steps(&Store::open(&dir.path().join("replica.db")).unwrap(), &key);
    let pg = syncmon_testpg::PgCluster::start();
    let postgres = steps(&pg_store(&pg.create_database("syncmon"), &key), &key);
    let mut differ = Vec::new();
    for ((name, s), (_, p)) in sqlite.iter().zip(&postgres) {
        if s != p {
            differ.push(format!("{name}:\n  sqlite:   {s}\n  postgres: {p}"));
        }
    }
    assert!(sqlite.iter().all(|(_, s)| !s.starts_with("ERR")), "{sqlite:?}");
    let answer = |name: &str| sqlite.iter().find(|(n, _)| *n == name).map(|(_, s)| s.as_str());
    assert_eq!(answer("replica_count"), Some("3"), "a, b and c");
    assert_eq!(answer("resync_finish"), Some("PassEnd { live_before: 3, unseen: 2, deleted: 2, guard_tripped: false }"));
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
