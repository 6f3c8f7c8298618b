//! Read models for the front ends (overview header, sparklines, checkpoint chart, the failed-items
//! table) and the small settings table. Kept apart from the replica write path in `store.rs` so the
//! two evolve without stepping on each other; these are reads plus one tiny key/value write.

use super::{EntityKey, Result, Store};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

/// One point of an entity's checkpoint history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct CheckpointPoint {
    pub at: i64,
    pub checkpoint: String,
}

impl Store {
    /// The entity's checkpoint over time (after each caught-up cycle that moved it, and every few
    /// seconds within a long cycle), since `since_ms`, oldest first.
    pub fn checkpoint_history(&self, key: &EntityKey, since_ms: i64) -> Result<Vec<CheckpointPoint>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT at, checkpoint FROM checkpoint_history WHERE connection = ?1 AND entity = ?2 AND at >= ?3 ORDER BY at",
            )?;
            let rows = st
                .query_map(params![key.connection, key.entity, since_ms], |r| Ok(CheckpointPoint { at: r.get(0)?, checkpoint: r.get(1)? }))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Pauses or resumes the entities in one transaction; returns how many actually changed.
    pub fn set_paused_many(&self, keys: &[EntityKey], paused: bool) -> Result<usize> {
        self.write(|c| {
            let tx = c.transaction()?;
            let mut n = 0;
            {
                let mut st = tx.prepare_cached("UPDATE entity_state SET paused = ?1 WHERE connection = ?2 AND entity = ?3 AND paused <> ?1")?;
                for k in keys {
                    n += st.execute(params![paused, k.connection, k.entity])?;
                }
            }
            tx.commit()?;
            Ok(n)
        })
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| Ok(c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?))
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Store, EntityKey) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("replica.db")).unwrap();
        let key = EntityKey::new("c", "items");
        store.ensure_entity(&key).unwrap();
        (dir, store, key)
    }

    #[test]
    fn settings_round_trip() {
        let (_d, store, _key) = setup();
        assert_eq!(store.setting("ui").unwrap(), None);
        store.set_setting("ui", "{}").unwrap();
        store.set_setting("ui", "{\"a\":1}").unwrap();
        assert_eq!(store.setting("ui").unwrap().as_deref(), Some("{\"a\":1}"));
    }
}
