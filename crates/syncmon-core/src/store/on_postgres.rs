//! The ported store on PostgreSQL: the same calls on both databases give the same answers.

use super::test_support::rec;
use super::*;
use crate::record::{Record, Rejected};
use crate::state::{Outcome, RunKind};

/// A store on a new PostgreSQL database, opened as `[replica] url` opens it.
fn pg_store(url: &str) -> Store {
    let replica = crate::config::ReplicaConfig {
        url: url.into(),
        password_env: None,
        lease: std::time::Duration::from_secs(30),
        agent: None,
        ca_file: None,
        ca: Vec::new(),
    };
    Store::open_postgres(&replica, None, false).unwrap()
}

fn page(store: &Store, key: &EntityKey, run: i64, records: &[Record], rejected: &[Rejected], now_ms: i64) -> Result<Applied> {
    super::test_support::try_apply_in_run(store, key, run, records, rejected, now_ms)
}

/// Every step's answer (or error), in order.
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
    // Replays, discards, rules.
    let ids = store.failed_ids(&FailedFilter { any_state: true, ..Default::default() });
    step("failed_ids", ids.as_ref().map(|v| dbg(&v.len())).map_err(|e| StoreError::NotFound(e.to_string())));
    let first = ids.ok().and_then(|v| v.last().copied()).unwrap_or(0);
    step(
        "replay_failed_again",
        store.replay_failed_again(first, &bad("c"), Some("t2"), 60_000).and_then(|_| store.failed_item(first)).map(|i| dbg(&(i.attempts, i.tracking_id))),
    );
    step("apply_replayed", store.apply_replayed(key, &rec("c", "9"), first, 61_000).map(|v| dbg(&v)));
    step("failed_rule_counts", store.failed_rule_counts(&FailedFilter::default()).map(|v| dbg(&v)));
    step("discard_failed", store.failed_ids(&FailedFilter::default()).and_then(|ids| store.discard_failed(&ids, 62_000)).map(|v| dbg(&v)));
    step(
        "failed_items",
        store
            .failed_items(&FailedFilter { any_state: true, ..Default::default() }, None, 10)
            .map(|v| dbg(&v.iter().map(|i| (i.state, i.resolution)).collect::<Vec<_>>())),
    );
    // Write-back and two-way pairs.
    step("set_write_back", store.set_write_back(key, true).map(|v| dbg(&v)));
    step("set_forward_off", store.set_forward_target(key, None, 63_000).map(|v| dbg(&v)));
    step("apply_marked", page(store, key, run, &[rec("e", "10")], &[], 64_000).map(|v| dbg(&v)));
    step("write_back_batch", store.write_back_batch(key, 0, 10).map(|v| dbg(&v.iter().map(|w| (&w.record_id, &w.row_version, &w.data)).collect::<Vec<_>>())));
    step("write_back_done", store.write_back_done(key, "e", "10", None, 65_000).and_then(|_| store.write_back_count(key)).map(|v| dbg(&v)));
    let rules = TwoWayRules { peer: "other".into(), ignore: vec!["rowVersion".into()] };
    step("set_two_way", store.set_two_way(key, Some(&rules)).and_then(|_| store.set_forward_target(key, Some("other"), 66_000)).map(|v| dbg(&v)));
    let fp = fingerprint(&rec("f", "11").data, &rules.ignore);
    step(
        "two_way_level",
        store
            .two_way_level(&key.entity, "f", [(&key.connection, fp), ("other", fp)])
            .and_then(|_| store.two_way_base(&key.connection, &key.entity, "f"))
            .map(|v| dbg(&v)),
    );
    step(
        "apply_echo",
        page(store, key, run, &[rec("f", "11")], &[], 67_000)
            .and_then(|a| Ok((a, store.outbox_batch(key, 0, 100)?.iter().any(|o| o.record_id == "f"))))
            .map(|v| dbg(&v)),
    );
    step("pair_row", store.pair_row(key, "a").map(|v| dbg(&v.map(|r| (r.row_version, r.deleted, r.updated_at)))));
    let peer = EntityKey::new("other", &key.entity);
    step("record_conflict", store.record_conflict(key, &peer, "a", "3", "{}", "both changed", 68_000).map(|v| dbg(&v)));
    let conflict = store
        .failed_ids(&FailedFilter { stage: Some(crate::state::FailedStage::Conflict), ..Default::default() })
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(0);
    step("conflict_kept", store.conflict_kept(conflict, 69_000).map(|v| dbg(&v)));
    step("two_way_prefer", store.two_way_prefer(key, &peer, "a", Some(fp), 70_000).map(|v| dbg(&v)));
    step("outbox_forget", store.outbox_forget(key, "a", "3", "upsert").and_then(|_| store.outbox_count(key)).map(|v| dbg(&v)));
    // Pushed batches (queued here by hand: `ingest_enqueue` is left out, see above).
    let queued = store.write(|c| {
        Ok(c.execute(
            "INSERT INTO ingest_batches (id, connection, entity, webhook_id, received_at, body) VALUES ('ing_1', ?1, ?2, 'w', 1, '[]')",
            rusqlite::params![key.connection, key.entity],
        )?)
    });
    step("ingest_queued", queued.and_then(|_| store.ingest_next_queued(0)).map(|v| dbg(&v.map(|b| (b.id, b.key)))));
    let batch = QueuedBatch { seq: 1, id: "ing_1".into(), key: key.clone(), body: "[]".into() };
    let records = [rec("g", "12")];
    let pushed = PageBatch {
        records: &records,
        rejected: &[],
        tracking_id: Some("ing_1"),
        http_status: None,
        max_version: None,
        resync_cursor: None,
        rereads_checkpoint: false,
        run_id: 0,
        now_ms: 71_000,
    };
    step("ingest_apply", store.ingest_apply(&batch, &pushed, 71_000).map(|v| dbg(&v)));
    step("ingest_batch", store.ingest_batch("ing_1").map(|v| dbg(&v.map(|b| (b.state, b.records, b.applied, b.failures)))));
    // The rest of an entity's life.
    step(
        "note_skipped",
        store
            .note_skipped(key, Outcome::Failed, "down", Some(80_000), 72_000)
            .and_then(|_| store.entity(key))
            .map(|e| dbg(&(e.last_outcome, e.next_attempt_at))),
    );
    step("target_writes", store.target_writes("c", 0, 5).map(|v| dbg(&v)));
    step(
        "reset_checkpoint",
        store.reset_checkpoint(key, &crate::rowversion::RowVersion::zero()).and_then(|_| store.checkpoint_history(key, 0)).map(|v| dbg(&v)),
    );
    let pruned = (|| Ok(store.prune_events(2, 0)? + store.prune_request_log(100)? + store.prune_ingest_batches(100)?))();
    step("prune", pruned.map(|n: usize| dbg(&n)));
    // Searches, the overview's sparklines, pushed batches as the receiver stores them, exports.
    step("hourly_changes", store.hourly_changes(100_000, 2).map(|v| dbg(&v)));
    step("failed_text", store.failed_count(&FailedFilter { text: Some("m".into()), any_state: true, ..Default::default() }).map(|v| dbg(&v)));
    step("events_text", store.find_events(&EventQuery { text: Some("CAUGHT".into()), limit: 5, ..Default::default() }).map(|v| dbg(&v.0.len())));
    step("find", store.find("b", std::slice::from_ref(key), 5).map(|v| dbg(&v)));
    step(
        "ingest_enqueue",
        store.ingest_enqueue(key, "w2", "[]", 90_000).and_then(|(_, again)| Ok((again, store.ingest_enqueue(key, "w2", "[]", 90_001)?.1))).map(|v| dbg(&v)),
    );
    let mut exported = Vec::new();
    step(
        "export",
        store
            .for_each_replica_row(key, true, |r| {
                exported.push((r.id, r.row_version, r.deleted_at.is_some()));
                Ok(())
            })
            .map(|_| dbg(&exported)),
    );
    // A snapshot feed's pass on a second entity: new, then one changed and one gone.
    let snap = EntityKey::new("c", "snap");
    let snapshot_pass = |records: &[Record], now_ms: i64| -> Result<String> {
        store.snapshot_begin(&snap)?;
        let b = PageBatch {
            records,
            rejected: &[],
            tracking_id: None,
            http_status: None,
            max_version: None,
            resync_cursor: None,
            rereads_checkpoint: false,
            run_id: 0,
            now_ms,
        };
        let applied = store.apply_snapshot_pages(&snap, &[b])?;
        let end = store.snapshot_finish(&snap, 0.9, true, now_ms)?;
        Ok(dbg(&(applied, end, store.replica_count(&snap)?)))
    };
    step("snapshot_entity", store.ensure_entity(&snap).map(|v| dbg(&v)));
    step("snapshot_first", snapshot_pass(&[rec("s1", "1"), rec("s2", "1"), rec("s3", "1")], 91_000));
    let changed = Record { data: r#"{"id":"s2","changed":true}"#.into(), ..rec("s2", "1") };
    step("snapshot_second", snapshot_pass(&[rec("s1", "1"), changed], 92_000));
    out
}

#[test]
fn the_store_answers_alike_on_sqlite_and_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let key = EntityKey::new("c", "items");
    let sqlite = steps(&Store::open(&dir.path().join("replica.db")).unwrap(), &key);
    let pg = syncmon_testpg::PgCluster::start();
    let postgres = steps(&pg_store(&pg.create_database("syncmon")), &key);
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
