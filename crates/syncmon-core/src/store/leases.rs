//! Leases: agents that share one PostgreSQL database and one config split the entities between
//! them. An entity is synced only by the agent holding its lease (one row per entity, so never
//! two holders); the holder renews it every few seconds, and when an agent dies its leases run
//! out and the others take them over. A page is written only while its writer still holds the
//! entity's lease ([`hold_for_write`], in the page's own transaction), so an agent that was
//! paused past its lease cannot write after another took over.
//!
//! Every time is the database server's clock (milliseconds), so the agents' clocks need not agree.

use super::db::{Db, DbResult};
use super::EntityKey;
use rusqlite::params;
use serde::Serialize;

/// How long a lease lasts without renewal: how long a dead agent's entities wait for another.
pub const DEFAULT_LEASE_MS: i64 = 30_000;

const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Who holds an entity (`status`, the UI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseRow {
    pub connection: String,
    pub entity: String,
    /// The agent's id (`host/pid/…`).
    pub holder: String,
    pub host: Option<String>,
    pub expires_at: i64,
    /// False once the lease ran out: the entity waits for an agent to take it over.
    pub live: bool,
}

/// Takes an entity's lease when it is free, expired, or already this agent's: a row back means held.
fn take_sql() -> String {
    format!(
        "INSERT INTO leases (connection, entity, holder, acquired_at, expires_at) VALUES (?1, ?2, ?3, {NOW_MS}, {NOW_MS} + ?4)
         ON CONFLICT (connection, entity) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
         WHERE leases.expires_at <= excluded.acquired_at OR leases.holder = excluded.holder
         RETURNING holder"
    )
}

/// This agent is alive: registers it, or renews its row.
pub fn heartbeat(db: &Db, agent: &str, host: &str) -> DbResult<()> {
    db.execute(
        &format!(
            "INSERT INTO agents (agent, host, pid, started_at, seen_at) VALUES (?1, ?2, ?3, {NOW_MS}, {NOW_MS})
             ON CONFLICT (agent) DO UPDATE SET seen_at = excluded.seen_at"
        ),
        params![agent, host, std::process::id()],
    )?;
    Ok(())
}

/// One round of an agent's lease loop, in one transaction: renews the leases it holds, gives
/// back those above its fair share (so that a new agent gets work), and takes free or expired
/// ones up to that share. The share is the entities divided by the agents seen within a lease
/// time, rounded up. Returns the entities it holds now.
pub fn balance(db: &Db, agent: &str, entities: &[EntityKey], lease_ms: i64) -> DbResult<Vec<EntityKey>> {
    let tx = db.transaction()?;
    let live: i64 =
        tx.query_row(&format!("SELECT count(*) FROM agents WHERE seen_at > {NOW_MS} - ?1 OR agent = ?2"), params![lease_ms, agent], |r| r.get(0))?;
    let share = entities.len().div_ceil(live.max(1) as usize);
    let renewed = tx.query_all(
        &format!("UPDATE leases SET expires_at = {NOW_MS} + ?2 WHERE holder = ?1 AND expires_at > {NOW_MS} RETURNING connection, entity"),
        params![agent, lease_ms],
        |r| Ok(EntityKey { connection: r.get(0)?, entity: r.get(1)? }),
    )?;
    let mut held: Vec<EntityKey> = entities.iter().filter(|e| renewed.contains(e)).cloned().collect();
    // Above the share, or no longer configured: give back.
    let give_back: Vec<EntityKey> = renewed.iter().filter(|e| !entities.contains(e)).cloned().chain(held.drain(share.min(held.len())..)).collect();
    for e in &give_back {
        tx.execute("DELETE FROM leases WHERE connection = ?1 AND entity = ?2 AND holder = ?3", params![e.connection, e.entity, agent])?;
    }
    let take = tx.prepare(&take_sql())?;
    for e in entities {
        if held.len() >= share {
            break;
        }
        if held.contains(e) || give_back.contains(e) {
            continue;
        }
        if take.query_opt(params![e.connection, e.entity, agent, lease_ms], |r| r.get::<_, String>(0))?.is_some() {
            held.push(e.clone());
        }
    }
    drop(take);
    tx.commit()?;
    Ok(held)
}

/// A one-shot command (`syncmon sync`, `resync`) beside the agents: takes the leases of `entities`
/// that no live agent holds, whatever the share; returns those it holds.
pub fn take_free(db: &Db, agent: &str, entities: &[EntityKey], lease_ms: i64) -> DbResult<Vec<EntityKey>> {
    let tx = db.transaction()?;
    let take = tx.prepare(&take_sql())?;
    let mut held = Vec::new();
    for e in entities {
        if take.query_opt(params![e.connection, e.entity, agent, lease_ms], |r| r.get::<_, String>(0))?.is_some() {
            held.push(e.clone());
        }
    }
    drop(take);
    tx.commit()?;
    Ok(held)
}

/// Renews every live lease of `agent` (a one-shot command's, while it runs).
pub fn renew(db: &Db, agent: &str, lease_ms: i64) -> DbResult<usize> {
    db.execute(&format!("UPDATE leases SET expires_at = {NOW_MS} + ?2 WHERE holder = ?1 AND expires_at > {NOW_MS}"), params![agent, lease_ms])
}

/// Inside a page's transaction: true when `agent` still holds the entity's lease, and the
/// lease row is locked until the transaction ends (a takeover waits for the page, then wins).
pub fn hold_for_write(tx: &Db, agent: &str, key: &EntityKey) -> DbResult<bool> {
    Ok(tx
        .query_opt(
            &format!("SELECT 1 FROM leases WHERE connection = ?1 AND entity = ?2 AND holder = ?3 AND expires_at > {NOW_MS} FOR UPDATE"),
            params![key.connection, key.entity, agent],
            |r| r.get::<_, i64>(0),
        )?
        .is_some())
}

/// A clean shutdown: the agent's leases are free at once, its row gone.
pub fn release_all(db: &Db, agent: &str) -> DbResult<()> {
    let tx = db.transaction()?;
    tx.execute("DELETE FROM leases WHERE holder = ?1", params![agent])?;
    tx.execute("DELETE FROM agents WHERE agent = ?1", params![agent])?;
    tx.commit()
}

/// Every entity's holder, with its host.
pub fn holders(db: &Db) -> DbResult<Vec<LeaseRow>> {
    db.query_all(
        &format!(
            "SELECT l.connection, l.entity, l.holder, a.host, l.expires_at, l.expires_at > {NOW_MS} AS live
             FROM leases l LEFT JOIN agents a ON a.agent = l.holder ORDER BY l.connection, l.entity"
        ),
        &[],
        |r| Ok(LeaseRow { connection: r.get(0)?, entity: r.get(1)?, holder: r.get(2)?, host: r.get(3)?, expires_at: r.get(4)?, live: r.get(5)? }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::PgConn;
    use std::cell::RefCell;
    use std::time::{Duration, Instant};

    fn connect(url: &str) -> Db {
        let db = Db::Postgres(Box::new(RefCell::new(PgConn::connect(&url.parse().unwrap(), &crate::store::db::PgTls::Plain).unwrap())));
        super::super::schema_pg::migrate(&db).unwrap();
        db
    }

    fn keys(n: usize) -> Vec<EntityKey> {
        (0..n).map(|i| EntityKey::new("src", &format!("e{i}"))).collect()
    }

    /// Two agents split four entities two and two, never holding one entity both; when one
    /// stops renewing (killed), the other holds all four within the lease time; a writer whose
    /// lease was taken over can no longer write.
    #[test]
    fn two_agents_split_the_entities_and_the_survivor_takes_over_within_the_lease() {
        let pg = syncmon_testpg::PgCluster::start();
        let url = pg.create_database("syncmon");
        let (a, b) = (connect(&url), connect(&url));
        let entities = keys(4);
        let lease_ms = 1_500;
        heartbeat(&a, "agent-a", "host-a").unwrap();
        heartbeat(&b, "agent-b", "host-b").unwrap();
        // A few rounds each, interleaved as two agents' loops would run.
        let (mut held_a, mut held_b) = (Vec::new(), Vec::new());
        let mut b_renewed_at = Instant::now();
        for _ in 0..3 {
            held_a = balance(&a, "agent-a", &entities, lease_ms).unwrap();
            b_renewed_at = Instant::now();
            held_b = balance(&b, "agent-b", &entities, lease_ms).unwrap();
        }
        assert_eq!((held_a.len(), held_b.len()), (2, 2), "a fair split: {held_a:?} / {held_b:?}");
        assert!(held_a.iter().all(|e| !held_b.contains(e)), "no entity held by both");
        let rows = holders(&a).unwrap();
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(|r| r.live && (r.holder == "agent-a" || r.holder == "agent-b")), "{rows:?}");
        assert_eq!(rows.iter().filter(|r| r.host.as_deref() == Some("host-b")).count(), 2, "the holder's host is shown");

        // B holds e.g. entity X; B is killed (stops renewing). A's loop takes X over once B's lease runs out.
        let taken_from_b = held_b[0].clone();
        let deadline = Instant::now() + Duration::from_millis(lease_ms as u64 * 4);
        loop {
            heartbeat(&a, "agent-a", "host-a").unwrap();
            held_a = balance(&a, "agent-a", &entities, lease_ms).unwrap();
            if held_a.len() == 4 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let took = b_renewed_at.elapsed();
        assert_eq!(held_a.len(), 4, "the survivor holds every entity {took:?} after B's last renewal");
        assert!(took >= Duration::from_millis(lease_ms as u64 - 50), "not before B's lease ran out: {took:?}");
        // B, waking up, may not write a page of the entity it lost.
        let tx = b.transaction().unwrap();
        assert!(!hold_for_write(&tx, "agent-b", &taken_from_b).unwrap(), "a lease taken over fences its old holder");
        drop(tx);
        let tx = a.transaction().unwrap();
        assert!(hold_for_write(&tx, "agent-a", &taken_from_b).unwrap());
        tx.commit().unwrap();
        // B comes back: the next rounds hand it its share again.
        for _ in 0..3 {
            heartbeat(&b, "agent-b", "host-b").unwrap();
            heartbeat(&a, "agent-a", "host-a").unwrap();
            held_a = balance(&a, "agent-a", &entities, lease_ms).unwrap();
            held_b = balance(&b, "agent-b", &entities, lease_ms).unwrap();
        }
        assert_eq!((held_a.len(), held_b.len()), (2, 2), "rebalanced: {held_a:?} / {held_b:?}");
        // A stops cleanly: B holds everything at once, without waiting for a lease to run out.
        release_all(&a, "agent-a").unwrap();
        assert_eq!(balance(&b, "agent-b", &entities, lease_ms).unwrap().len(), 4);
    }
}
