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

    /// Merges the top-level fields of `patch` into the record (a new version); None when there is
    /// no such record.
    pub fn patch(&mut self, entity: &str, id: &str, patch: &serde_json::Map<String, serde_json::Value>) -> Option<serde_json::Value> {
        let mut body = self.get(entity, id)?.clone();
        if let serde_json::Value::Object(obj) = &mut body {
            for (k, v) in patch {
                obj.insert(k.clone(), v.clone());
            }
        }
        self.put(entity, id, body.clone());
        Some(body)
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
    /// `filters` keeps only the records whose top-level field equals the value (`synced=false`
    /// matches `"synced": false`, and a record without the field).
    pub fn feed_page(&self, entity: &str, after: Option<u64>, limit: usize, filters: &[(String, String)]) -> (Vec<(u64, serde_json::Value)>, bool) {
        let Some(e) = self.entities.get(entity) else { return (Vec::new(), false) };
        let from = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let matches = |body: &serde_json::Value| {
            filters.iter().all(|(k, want)| match body.get(k) {
                None | Some(serde_json::Value::Null) => want == "false" || want.is_empty(),
                Some(serde_json::Value::String(s)) => s == want,
                Some(v) => *v == serde_json::from_str::<serde_json::Value>(want).unwrap_or(serde_json::Value::Null),
            })
        };
        let mut range = e.by_version.range((from, std::ops::Bound::Unbounded)).filter(|(_, id)| matches(&e.records[*id].1));
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
        let (page, more) = t.feed_page("items", None, 10, &[]);
        assert!(!more);
        assert_eq!(page, vec![(2, json!({"id": "b", "rowVersion": "2"})), (3, json!({"id": "a", "n": 2, "rowVersion": "3"}))]);
        let (page, more) = t.feed_page("items", None, 1, &[]);
        assert_eq!((page.len(), more), (1, true));
        assert_eq!(t.feed_page("items", Some(2), 10, &[]).0.len(), 1);
        t.patch("items", "b", serde_json::json!({"synced": true}).as_object().unwrap());
        let unsynced = [("synced".to_string(), "false".to_string())];
        assert_eq!(t.feed_page("items", None, 10, &unsynced).0.iter().map(|(_, b)| b["id"].clone()).collect::<Vec<_>>(), vec![json!("a")]);
        assert!(t.delete("items", "a"));
        assert_eq!(t.feed_page("items", None, 10, &[]).0.len(), 1);
        assert_eq!(t.dataset("items"), vec![("b".to_string(), json!({"id": "b", "synced": true}))]);
    }
}
