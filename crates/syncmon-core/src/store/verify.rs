//! The last verify of each entity (`syncmon verify`, the app's Verify button): the report as the
//! façade made it (JSON), kept until the next verify of that entity replaces it (migration 12).

use super::{EntityKey, Result, Store};
use rusqlite::params;

impl Store {
    /// Keeps `report` (JSON) as the entity's last verify, finished at `at`.
    pub fn save_verify(&self, key: &EntityKey, at: i64, report: &str) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO verify_results (connection, entity, finished_at, report) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (connection, entity) DO UPDATE SET finished_at = excluded.finished_at, report = excluded.report",
                params![key.connection, key.entity, at, report],
            )?;
            Ok(())
        })
    }

    /// The entity's last verify: (finished at, report JSON).
    pub fn last_verify(&self, key: &EntityKey) -> Result<Option<(i64, String)>> {
        self.read(|c| {
            Ok(c.query_opt("SELECT finished_at, report FROM verify_results WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::setup;

    #[test]
    fn the_last_verify_replaces_the_one_before() {
        let (_d, store, key) = setup();
        assert_eq!(store.last_verify(&key).unwrap(), None);
        store.save_verify(&key, 1_000, "{\"missing\":1}").unwrap();
        store.save_verify(&key, 2_000, "{\"missing\":0}").unwrap();
        assert_eq!(store.last_verify(&key).unwrap(), Some((2_000, "{\"missing\":0}".to_string())));
    }
}
