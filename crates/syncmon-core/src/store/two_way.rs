//! The bookkeeping of two-way flows: two entities of one name on two connections, each
//! forwarding to the other (`forward_to` = the other connection's id).
//!
//! Per system and record the store keeps a *base*: the fingerprint of the content that system
//! held when Syncmon last brought both systems level (a delivery that went through, or content
//! found equal on both sides). The fingerprint is the canonical-JSON hash of the record without
//! the fields a system sets itself (the version fields, a target's `ignore_fields`), so the same
//! content in either system's hands has the same fingerprint.
//!
//! - Echo: a record a feed serves with its system's base fingerprint is Syncmon's own write
//!   coming back. It is written to the replica as usual but not queued for the other system, so
//!   the flow goes quiet instead of bouncing each write back and forth.
//! - Change: any other content is that system's change and is queued for the other one.
//! - Conflict: when a change is about to be delivered, the receiving system's replica row has
//!   moved away from its base too (`crate::two_way` decides what then happens).

use super::db::{Db, DbResult};
use super::{record_failure, EntityKey, Result, Store};
use crate::record::Rejected;
use crate::state::{FailedStage, FailedState, Resolution};
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// What the store needs to know of an entity's pair (`entity_state.two_way`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoWayRules {
    /// The connection id of the other system.
    pub peer: String,
    /// Top-level fields left out of fingerprints: the version fields and what the systems set
    /// themselves.
    pub ignore: Vec<String>,
}

/// The fingerprint of a record's content without the `ignore`d top-level fields.
pub fn fingerprint(data: &str, ignore: &[String]) -> i64 {
    match serde_json::from_str::<serde_json::Value>(data) {
        Ok(mut v) => {
            if let serde_json::Value::Object(obj) = &mut v {
                for f in ignore {
                    obj.remove(f);
                }
            }
            super::snapshot::value_hash(&v)
        }
        Err(_) => super::content_hash(data),
    }
}

pub(super) fn rules(tx: &Db, key: &EntityKey) -> DbResult<Option<TwoWayRules>> {
    let text: Option<String> =
        tx.query_opt("SELECT two_way FROM entity_state WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity], |r| r.get(0))?.flatten();
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// True when `data` is what the entity's system held when last level with its peer: Syncmon's
/// own write coming back, not a change to send on. Always false outside a two-way pair.
pub(super) fn is_echo(tx: &Db, key: &EntityKey, rules: Option<&TwoWayRules>, record_id: &str, data: &str) -> DbResult<bool> {
    let Some(rules) = rules else { return Ok(false) };
    let base: Option<i64> = tx.query_opt(
        "SELECT fingerprint FROM two_way_base WHERE system = ?1 AND entity = ?2 AND record_id = ?3",
        params![key.connection, key.entity, record_id],
        |r| r.get(0),
    )?;
    Ok(base.is_some_and(|b| b == fingerprint(data, &rules.ignore)))
}

/// One side of a pair's record as its replica holds it.
#[derive(Debug, Clone)]
pub struct PairRow {
    pub row_version: String,
    pub data: String,
    pub deleted: bool,
    /// When Syncmon wrote this version (ms): "newest" compares these.
    pub updated_at: i64,
}

impl Store {
    /// Marks the entity as one side of a two-way pair (None = it is not).
    pub fn set_two_way(&self, key: &EntityKey, rules: Option<&TwoWayRules>) -> Result<()> {
        let text = rules.map(|r| serde_json::to_string(r).expect("rules serialize"));
        self.write(|c| {
            c.execute("UPDATE entity_state SET two_way = ?1 WHERE connection = ?2 AND entity = ?3", params![text, key.connection, key.entity])?;
            Ok(())
        })
    }

    /// The system's base fingerprint of a record, if the pair was ever level on it.
    pub fn two_way_base(&self, system: &str, entity: &str, record_id: &str) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT fingerprint FROM two_way_base WHERE system = ?1 AND entity = ?2 AND record_id = ?3",
                params![system, entity, record_id],
                |r| r.get(0),
            )?)
        })
    }

    /// Both systems are level on the record: each one's base becomes the fingerprint of what it holds.
    pub fn two_way_level(&self, entity: &str, record_id: &str, sides: [(&str, i64); 2]) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            for (system, fp) in sides {
                tx.execute(
                    "INSERT INTO two_way_base (system, entity, record_id, fingerprint) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (system, entity, record_id) DO UPDATE SET fingerprint = excluded.fingerprint",
                    params![system, entity, record_id, fp],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// The replica row of one record with the time Syncmon wrote it.
    pub fn pair_row(&self, key: &EntityKey, record_id: &str) -> Result<Option<PairRow>> {
        let table = key.table();
        self.read(|c| {
            Ok(c.query_opt(
                &format!("SELECT row_version, data, deleted_at IS NOT NULL, updated_at FROM \"{table}\" WHERE id_hash = ?1 AND id = ?2"),
                params![super::id_hash(record_id), record_id],
                |r| Ok(PairRow { row_version: r.get(0)?, data: r.get(1)?, deleted: r.get(2)?, updated_at: r.get(3)? }),
            )?)
        })
    }

    /// Settles a conflict one way: `loser`'s base becomes its current content (so its change
    /// counts as superseded and is not delivered), its queued change of the record goes, and the
    /// `winner`'s current version is queued for delivery to the loser. Returns false when the
    /// winner's replica has no live row to send.
    pub fn two_way_prefer(&self, winner: &EntityKey, loser: &EntityKey, record_id: &str, loser_fp: Option<i64>, now_ms: i64) -> Result<bool> {
        let table = winner.table();
        self.write(|c| {
            let tx = c.transaction()?;
            if let Some(fp) = loser_fp {
                tx.execute(
                    "INSERT INTO two_way_base (system, entity, record_id, fingerprint) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (system, entity, record_id) DO UPDATE SET fingerprint = excluded.fingerprint",
                    params![loser.connection, loser.entity, record_id, fp],
                )?;
            }
            tx.execute("DELETE FROM outbox WHERE connection = ?1 AND entity = ?2 AND record_id = ?3", params![loser.connection, loser.entity, record_id])?;
            let row: Option<(i64, String)> = tx.query_opt(
                &format!("SELECT id_hash, row_version FROM \"{table}\" WHERE id_hash = ?1 AND id = ?2 AND deleted_at IS NULL"),
                params![super::id_hash(record_id), record_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let queued = match row {
                Some((hash, version)) => {
                    super::outbox::enqueue(&tx, winner, record_id, hash, &version, super::outbox::UPSERT, now_ms)?;
                    true
                }
                None => false,
            };
            tx.commit()?;
            Ok(queued)
        })
    }

    /// A change left the outbox without being sent (the other system already holds it, or a
    /// conflict took it over).
    pub fn outbox_forget(&self, key: &EntityKey, record_id: &str, version: &str, kind: &str) -> Result<()> {
        self.write(|c| {
            c.execute(
                "DELETE FROM outbox WHERE connection = ?1 AND entity = ?2 AND record_id = ?3 AND row_version = ?4 AND kind = ?5",
                params![key.connection, key.entity, record_id, version, kind],
            )?;
            Ok(())
        })
    }

    /// A conflict to settle by hand: a failed item of stage `conflict` under `key` (the pair's
    /// first connection, so both directions land on one item) holding both versions; the record's
    /// queued changes on both sides leave the outbox until it is settled. Returns true when new.
    #[allow(clippy::too_many_arguments)]
    pub fn record_conflict(
        &self,
        key: &EntityKey,
        peer: &EntityKey,
        record_id: &str,
        version: &str,
        payload: &str,
        message: &str,
        now_ms: i64,
    ) -> Result<bool> {
        self.write(|c| {
            let tx = c.transaction()?;
            let rej = Rejected::of_record(record_id, version, payload, "conflict", message);
            let new = record_failure(&tx, key, &rej, FailedStage::Conflict, None, None, now_ms)?;
            for k in [key, peer] {
                tx.execute("DELETE FROM outbox WHERE connection = ?1 AND entity = ?2 AND record_id = ?3", params![k.connection, k.entity, record_id])?;
            }
            tx.commit()?;
            Ok(new)
        })
    }

    /// Closes a conflict item as settled by keeping one side.
    pub fn conflict_kept(&self, item_id: i64, now_ms: i64) -> Result<bool> {
        self.write(|c| {
            let n = c.execute(
                "UPDATE failed_items SET state = ?1, resolution = ?2, resolved_at = ?3 WHERE id = ?4 AND state = ?5 AND stage = ?6",
                params![FailedState::Resolved, Resolution::Kept, now_ms, item_id, FailedState::Pending, FailedStage::Conflict],
            )?;
            Ok(n > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_key_order_and_the_fields_systems_set_themselves() {
        let ignore = vec!["rowVersion".to_string(), "updatedAt".to_string()];
        let a = fingerprint(r#"{"id":"1","name":"x","rowVersion":"5","updatedAt":"mon"}"#, &ignore);
        let b = fingerprint(r#"{"rowVersion":"900","name":"x","id":"1"}"#, &ignore);
        assert_eq!(a, b);
        assert_ne!(a, fingerprint(r#"{"id":"1","name":"y","rowVersion":"5"}"#, &ignore));
        assert_ne!(a, fingerprint(r#"{"id":"1","name":"x","rowVersion":"5"}"#, &[]), "without rules the version counts");
    }
}
