//! The store on PostgreSQL (`[replica] url`): opening it (the schema made once, whoever comes
//! first), and the leases that let several agents share it (`leases.rs` holds the rules).
//! Everything else is the same code as on SQLite, through `db.rs`.

use super::db::{Db, DbError};
use super::leases::{self, LeaseRow};
use super::{pg_connect, schema_pg, EntityKey, Result, Store, StoreError};
use crate::config::ReplicaConfig;
use crate::secrets::Secret;
use crate::state::UnfinishedRun;
use rusqlite::params;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Mutex;

impl Store {
    /// Opens the PostgreSQL replica: creates the schema in an empty database (or checks its
    /// version); read-only opens neither create nor write anything.
    pub fn open_postgres(replica: &ReplicaConfig, password: Option<&Secret>, read_only: bool) -> Result<Store> {
        let shown = pg_connect::shown_url(replica);
        let path = PathBuf::from(&shown);
        let open_failed = |message: String| StoreError::Open { path: path.clone(), message };
        let connect = || pg_connect::connect(replica, password).map(|c| Db::Postgres(Box::new(RefCell::new(c)))).map_err(StoreError::Unreachable);
        let reader = connect()?;
        let writer = if read_only {
            let found: Option<i64> = reader
                .query_opt("SELECT max(version) FROM schema_version", &[], |r| r.get(0))
                .map_err(|_| StoreError::NoReplica { dir: path.clone() })?
                .flatten();
            let found = found.ok_or_else(|| StoreError::NoReplica { dir: path.clone() })? as usize;
            if found != super::SCHEMA_VERSION {
                return Err(if found < super::SCHEMA_VERSION {
                    StoreError::SchemaTooOld { path, found, expected: super::SCHEMA_VERSION }
                } else {
                    StoreError::SchemaTooNew { path, found, expected: super::SCHEMA_VERSION }
                });
            }
            None
        } else {
            let writer = connect()?;
            schema_pg::migrate(&writer).map_err(|e| open_failed(format!("creating the schema failed: {e}")))?;
            Store::close_orphaned_runs_pg(&writer).map_err(|e| open_failed(e.to_string()))?;
            Some(Mutex::new(writer))
        };
        let store = Store::from_parts(path, writer, reader);
        Ok(store)
    }

    /// Whether this store keeps its data in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.read(|db| Ok(matches!(db, Db::Postgres(_)))).unwrap_or(false)
    }

    /// Makes page writes conditional on `agent` holding the entity's lease (several agents).
    pub fn fence_with_lease(&self, agent: &str) {
        let _ = self.fence.set(agent.to_string());
    }

    /// Inside a page transaction: refuses the write when the entity's lease went to another agent.
    pub(super) fn check_fence(&self, tx: &Db, key: &EntityKey) -> Result<()> {
        match self.fence.get() {
            Some(agent) if !leases::hold_for_write(tx, agent, key)? => Err(StoreError::LeaseLost { entity: key.to_string(), agent: agent.clone() }),
            _ => Ok(()),
        }
    }

    /// One round of the agent's lease loop (`leasing.rs`): alive, renewed, balanced.
    pub fn lease_round(&self, agent: &str, host: &str, entities: &[EntityKey], lease: std::time::Duration) -> Result<Vec<EntityKey>> {
        self.write(|db| {
            leases::heartbeat(db, agent, host)?;
            Ok(leases::balance(db, agent, entities, lease.as_millis() as i64)?)
        })
    }

    /// A one-shot command's leases: the entities of `entities` no live agent holds.
    pub fn take_free_leases(&self, agent: &str, entities: &[EntityKey], lease: std::time::Duration) -> Result<Vec<EntityKey>> {
        self.write(|db| Ok(leases::take_free(db, agent, entities, lease.as_millis() as i64)?))
    }

    /// Renews the leases `agent` holds.
    pub fn renew_leases(&self, agent: &str, lease: std::time::Duration) -> Result<usize> {
        self.write(|db| Ok(leases::renew(db, agent, lease.as_millis() as i64)?))
    }

    /// Gives every lease of `agent` back (a clean shutdown).
    pub fn release_leases(&self, agent: &str) -> Result<()> {
        self.write(|db| Ok(leases::release_all(db, agent)?))
    }

    /// Every entity's lease holder; none on SQLite (one agent holds everything).
    pub fn lease_holders(&self) -> Result<Vec<LeaseRow>> {
        self.read(|db| match db {
            Db::Postgres(_) => Ok(leases::holders(db)?),
            Db::Sqlite(_) => Ok(Vec::new()),
        })
    }

    /// Runs an agent left open when it was killed are closed as interrupted — on PostgreSQL only
    /// those of entities no live agent holds (another agent's run is not interrupted).
    pub(super) fn close_orphaned_runs_pg(db: &Db) -> std::result::Result<(), DbError> {
        db.execute(
            "UPDATE runs SET outcome = ?1 WHERE outcome = ?2 AND NOT EXISTS (
                SELECT 1 FROM leases l WHERE l.connection = runs.connection AND l.entity = runs.entity
                  AND l.expires_at > (extract(epoch from clock_timestamp()) * 1000)::bigint)",
            params![UnfinishedRun::Interrupted, UnfinishedRun::Running],
        )?;
        Ok(())
    }
}
