//! What the store's unit tests share: a fresh database with one entity, and a record.

use super::{EntityKey, Store};
use crate::record::Record;
use crate::rowversion::RowVersion;

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
