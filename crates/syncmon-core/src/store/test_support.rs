//! What the store's unit tests share: a fresh database with one entity, a record, and a page
//! applied as a cycle applies it.

use super::{Applied, EntityKey, PageBatch, Store};
use crate::record::{Record, Rejected};
use crate::rowversion::RowVersion;
use crate::state::RunKind;

/// A new database in a temporary directory (kept alive by the returned guard) with entity `c/items`.
pub(super) fn setup() -> (tempfile::TempDir, Store, EntityKey) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("replica.db")).unwrap();
    let key = EntityKey::new("c", "items");
    store.ensure_entity(&key).unwrap();
    (dir, store, key)
}

/// A record as the source serves it: its id and rowVersion in the JSON too.
pub(super) fn rec(id: &str, v: &str) -> Record {
    Record { id: id.into(), version: RowVersion::parse(v).unwrap(), data: format!(r#"{{"id":"{id}","rowVersion":"{v}"}}"#) }
}

/// Applies one page in run `run` at `now_ms` as the cycle does (tracking id `t`, HTTP 200): the
/// records, the rejected ones as failed items, the checkpoint moved to the highest version.
pub(super) fn apply_in_run(store: &Store, key: &EntityKey, run: i64, records: &[Record], rejected: &[Rejected], now_ms: i64) -> Applied {
    try_apply_in_run(store, key, run, records, rejected, now_ms).unwrap()
}

/// [`apply_in_run`], the store's answer as it is.
pub(super) fn try_apply_in_run(store: &Store, key: &EntityKey, run: i64, records: &[Record], rejected: &[Rejected], now_ms: i64) -> super::Result<Applied> {
    let max = records.iter().map(|r| r.version.clone()).max();
    let batch = PageBatch {
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
    store.apply_page(key, &batch)
}

/// One page in a new incremental run, at time 1.
pub(super) fn apply(store: &Store, key: &EntityKey, records: &[Record], rejected: &[Rejected]) -> Applied {
    let run = store.begin_run(key, RunKind::Incremental, 1).unwrap();
    apply_in_run(store, key, run, records, rejected, 1)
}
