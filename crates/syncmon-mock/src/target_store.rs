//! What the simulated target holds: per entity the last body PUT for each id, and the target's
//! own version of it. Every write takes the next version of one counter, as a database's
//! rowversion does, so the target can serve what it stored as a rowVersion feed
//! (`GET /target/{entity}?lastRowVersion=…`): another Syncmon connection can read it back, which
//! is how a two-way pair is tested with no other program.

use std::collections::{BTreeMap, HashMap};

#[derive(Default)]
pub struct TargetStore {
    entities: HashMap<String, TargetEntity>,
    /// The last version given out (versions start at 1).
    version: u64,
}

#[derive(Default)]
struct TargetEntity {
    /// id → (the target's version, the body as received).
    records: BTreeMap<String, (u64, serde_json::Value)>,
    /// The target's version → id, for the feed.
    by_version: BTreeMap<u64, String>,
}

impl TargetStore {
    /// Stores `body` under `id`; true when the id was there before.
    pub fn put(&mut self, entity: &str, id: &str, body: serde_json::Value) -> bool {
        self.version += 1;
        let v = self.version;
        let e = self.entities.entry(entity.to_string()).or_default();
        let previous = e.records.insert(id.to_string(), (v, body));
        if let Some((old, _)) = &previous {
            e.by_version.remove(old);
        }
        e.by_version.insert(v, id.to_string());
        previous.is_some()
    }

    /// Removes `id`; true when it was there.
    pub fn delete(&mut self, entity: &str, id: &str) -> bool {
        let Some(e) = self.entities.get_mut(entity) else { return false };
        match e.records.remove(id) {
            Some((v, _)) => {
                e.by_version.remove(&v);
                true
            }
            None => false,
        }
    }

    pub fn get(&self, entity: &str, id: &str) -> Option<&serde_json::Value> {
        self.entities.get(entity)?.records.get(id).map(|(_, body)| body)
    }

    /// Every record of the entity, sorted by id, as received.
    pub fn dataset(&self, entity: &str) -> Vec<(String, serde_json::Value)> {
        self.entities.get(entity).map(|e| e.records.iter().map(|(id, (_, body))| (id.clone(), body.clone())).collect()).unwrap_or_default()
    }

    /// Up to `limit` records with a version above `after`, in version order, each as the feed
    /// serves it (the body with `rowVersion` set to the target's version); and whether more follow.
    pub fn feed_page(&self, entity: &str, after: Option<u64>, limit: usize) -> (Vec<(u64, serde_json::Value)>, bool) {
        let Some(e) = self.entities.get(entity) else { return (Vec::new(), false) };
        let from = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let mut range = e.by_version.range((from, std::ops::Bound::Unbounded));
        let mut out = Vec::new();
        for (v, id) in range.by_ref().take(limit) {
            let mut body = e.records[id].1.clone();
            if let serde_json::Value::Object(obj) = &mut body {
                obj.insert("rowVersion".into(), serde_json::Value::String(v.to_string()));
            }
            out.push((*v, body));
        }
        (out, range.next().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_feed_serves_each_record_once_at_its_latest_version_in_version_order() {
        let mut t = TargetStore::default();
        assert!(!t.put("items", "a", json!({"id": "a", "n": 1, "rowVersion": "77"})));
        t.put("items", "b", json!({"id": "b"}));
        assert!(t.put("items", "a", json!({"id": "a", "n": 2})));
        let (page, more) = t.feed_page("items", None, 10);
        assert!(!more);
        assert_eq!(page, vec![(2, json!({"id": "b", "rowVersion": "2"})), (3, json!({"id": "a", "n": 2, "rowVersion": "3"}))]);
        let (page, more) = t.feed_page("items", None, 1);
        assert_eq!((page.len(), more), (1, true));
        assert_eq!(t.feed_page("items", Some(2), 10).0.len(), 1);
        assert!(t.delete("items", "a"));
        assert_eq!(t.feed_page("items", None, 10).0.len(), 1);
        assert_eq!(t.dataset("items"), vec![("b".to_string(), json!({"id": "b"}))]);
    }
}
