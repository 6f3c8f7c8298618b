//! Records pushed to Syncmon (`POST /ingest/<connection>/<entity>`): each accepted call is one
//! batch, stored before the caller gets its 202 and applied later by the agent's ingest worker
//! through the same write path as a polled page ([`Store::apply_pages`]).
//!
//! A batch's outcome (counts, the records that failed) is written in the transaction that applies
//! its records, so a crash either applies the batch and records it, or neither: a queued batch is
//! applied again at the next agent start, and applying is idempotent (older never overwrites newer).

use super::db::Dialect;
use super::{EntityKey, PageBatch, Result, Store};
use crate::record::Rejected;
use crate::state::{FailedStage, IngestState};
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// One record of a batch that did not pass validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct IngestFailure {
    pub record_id: Option<String>,
    pub error_kind: String,
    pub message: String,
}

/// A pushed batch as `syncmon ingest show` and the RPC's `ingest_batch` report it (no body).
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct IngestBatch {
    /// The correlation id the 202 answered with.
    pub id: String,
    pub connection: String,
    pub entity: String,
    pub received_at: i64,
    pub state: IngestState,
    /// Records in the body; null while queued.
    pub records: Option<i64>,
    /// Records written to the replica.
    pub applied: Option<i64>,
    /// Valid records not written: the replica already held that version or a newer one.
    pub unchanged: Option<i64>,
    /// Records that failed validation (see `failures`).
    pub failed: Option<i64>,
    pub failures: Vec<IngestFailure>,
    pub applied_at: Option<i64>,
}

/// A batch waiting for the ingest worker.
#[derive(Debug, Clone)]
pub struct QueuedBatch {
    pub seq: i64,
    pub id: String,
    pub key: EntityKey,
    pub body: String,
}

/// What applying a batch came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestApplied {
    pub state: IngestState,
    pub written: usize,
    pub failed: usize,
    /// Failed items created (a record failing again updates its pending item instead).
    pub failed_new: usize,
}

impl Store {
    /// Stores a pushed batch and returns its correlation id, before anything is answered. The
    /// commit is synced to disk (`synchronous = FULL` for this one transaction): a 202 promises
    /// the records survive a power cut, not only a crash. A `webhook_id` already stored for the
    /// connection is the same call repeated: its first batch's id is returned, with `true`.
    pub fn ingest_enqueue(&self, key: &EntityKey, webhook_id: &str, body: &str, now_ms: i64) -> Result<(String, bool)> {
        self.write(|c| {
            // PostgreSQL commits durably anyway (synchronous_commit is the server's).
            let sqlite = c.dialect() == Dialect::Sqlite;
            if sqlite {
                c.execute_batch("PRAGMA synchronous = FULL")?;
            }
            let id = format!("ing_{}", uuid::Uuid::new_v4().simple());
            let inserted = c.execute(
                "INSERT INTO ingest_batches (id, connection, entity, webhook_id, received_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (connection, webhook_id) DO NOTHING",
                params![id, key.connection, key.entity, webhook_id, now_ms, body],
            );
            // Back to the page writer's setting whatever happened.
            if sqlite {
                c.execute_batch("PRAGMA synchronous = NORMAL")?;
            }
            if inserted? == 1 {
                return Ok((id, false));
            }
            let first: String =
                c.query_row("SELECT id FROM ingest_batches WHERE connection = ?1 AND webhook_id = ?2", params![key.connection, webhook_id], |r| r.get(0))?;
            Ok((first, true))
        })
    }

    /// The oldest queued batch after `after_seq` (arrival order), with its body.
    pub fn ingest_next_queued(&self, after_seq: i64) -> Result<Option<QueuedBatch>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT seq, id, connection, entity, body FROM ingest_batches WHERE state = 'queued' AND seq > ?1 ORDER BY seq LIMIT 1",
                params![after_seq],
                |r| Ok(QueuedBatch { seq: r.get(0)?, id: r.get(1)?, key: EntityKey { connection: r.get(2)?, entity: r.get(3)? }, body: r.get(4)? }),
            )?)
        })
    }

    /// Applies a parsed batch: its valid records as one page (no checkpoint: pushed records say
    /// nothing about where the polled feed is), its rejected ones as failed items of stage
    /// `ingest` (tracking id: the batch id), and its outcome, all in one transaction. A batch no
    /// longer queued (applied by an earlier pass) is left as it is.
    pub fn ingest_apply(&self, batch: &QueuedBatch, page: &PageBatch, now_ms: i64) -> Result<IngestApplied> {
        let failures: Vec<IngestFailure> = page.rejected.iter().map(failure_of).collect();
        let state = if failures.is_empty() { IngestState::Applied } else { IngestState::PartlyFailed };
        let total = (page.records.len() + page.rejected.len()) as i64;
        let valid = page.records.len() as i64;
        let applied = self.apply_pages_then(&batch.key, std::slice::from_ref(page), FailedStage::Ingest, |tx, applied| {
            tx.execute(
                "UPDATE ingest_batches SET state = ?1, records = ?2, applied = ?3, unchanged = ?4, failed = ?5, failures = ?6, applied_at = ?7
                 WHERE seq = ?8 AND state = 'queued'",
                params![
                    state,
                    total,
                    applied.rows_written as i64,
                    valid - applied.rows_written as i64,
                    failures.len() as i64,
                    serde_json::to_string(&failures).unwrap_or_else(|_| "[]".into()),
                    now_ms,
                    batch.seq
                ],
            )?;
            Ok(())
        })?;
        Ok(IngestApplied { state, written: applied.rows_written, failed: failures.len(), failed_new: applied.failed_new })
    }

    /// One batch by its correlation id.
    pub fn ingest_batch(&self, id: &str) -> Result<Option<IngestBatch>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT id, connection, entity, received_at, state, records, applied, unchanged, failed, failures, applied_at FROM ingest_batches WHERE id = ?1",
                params![id],
                |r| {
                    let failures: Option<String> = r.get(9)?;
                    Ok(IngestBatch {
                        id: r.get(0)?,
                        connection: r.get(1)?,
                        entity: r.get(2)?,
                        received_at: r.get(3)?,
                        state: r.get(4)?,
                        records: r.get(5)?,
                        applied: r.get(6)?,
                        unchanged: r.get(7)?,
                        failed: r.get(8)?,
                        failures: failures.and_then(|f| serde_json::from_str(&f).ok()).unwrap_or_default(),
                        applied_at: r.get(10)?,
                    })
                },
            )?)
        })
    }

    /// Batches waiting to be applied, all entities.
    pub fn ingest_queued_count(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT count(*) FROM ingest_batches WHERE state = 'queued'", params![], |r| r.get(0))?))
    }

    /// Forgets applied batches received before `cutoff_ms` (their records are in the replica;
    /// the failed ones are failed items). Queued batches are never pruned.
    pub fn prune_ingest_batches(&self, cutoff_ms: i64) -> Result<usize> {
        self.write(|c| Ok(c.execute("DELETE FROM ingest_batches WHERE state <> 'queued' AND received_at < ?1", params![cutoff_ms])?))
    }
}

fn failure_of(rej: &Rejected) -> IngestFailure {
    IngestFailure { record_id: rej.id.clone(), error_kind: rej.kind.to_string(), message: rej.message.clone() }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{rec, setup};
    use super::*;

    fn page<'a>(records: &'a [crate::record::Record], rejected: &'a [Rejected], id: &'a str) -> PageBatch<'a> {
        PageBatch {
            records,
            rejected,
            tracking_id: Some(id),
            http_status: None,
            max_version: None,
            resync_cursor: None,
            run_id: 0,
            rereads_checkpoint: false,
            now_ms: 5,
        }
    }

    #[test]
    fn a_batch_is_stored_once_per_webhook_id_and_applied_once() {
        let (_d, store, key) = setup();
        let (id, dup) = store.ingest_enqueue(&key, "msg_1", "[]", 1).unwrap();
        assert!(!dup && id.starts_with("ing_"));
        assert_eq!(store.ingest_enqueue(&key, "msg_1", "[]", 2).unwrap(), (id.clone(), true));
        assert_eq!(store.ingest_batch(&id).unwrap().unwrap().state, IngestState::Queued);
        let queued = store.ingest_next_queued(0).unwrap().unwrap();
        assert!(store.ingest_next_queued(queued.seq).unwrap().is_none());

        let records = [rec("a", "3"), rec("b", "4")];
        let rejected =
            [Rejected { id: Some("c".into()), version: None, payload: "{}".into(), kind: "missing_row_version", message: "no rowVersion".into(), rule: None }];
        let out = store.ingest_apply(&queued, &page(&records, &rejected, &id), 5).unwrap();
        assert_eq!(out, IngestApplied { state: IngestState::PartlyFailed, written: 2, failed: 1, failed_new: 1 });
        let b = store.ingest_batch(&id).unwrap().unwrap();
        assert_eq!((b.state, b.records, b.applied, b.unchanged, b.failed), (IngestState::PartlyFailed, Some(3), Some(2), Some(0), Some(1)));
        assert_eq!(b.failures[0].record_id.as_deref(), Some("c"));
        assert!(store.ingest_next_queued(0).unwrap().is_none());
        // The checkpoint of the polled feed does not move.
        assert_eq!(store.entity(&key).unwrap().checkpoint.to_string(), "0");
        assert!(store.ingest_batch("ing_nope").unwrap().is_none());
    }
}
