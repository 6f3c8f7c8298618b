//! Shared test harness: a simulated source on loopback, a Syncmon on a temporary SQLite file,
//! and the one comparison that matters: the replica equals the source, id by id and version by
//! version.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use syncmon_core::config::Config;
use syncmon_core::engine::{CycleReport, Outcome};
use syncmon_core::Syncmon;
use syncmon_mock::{EntitySpec, MockConfig, MockServer};
use tokio_util::sync::CancellationToken;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub mock: MockServer,
    pub sm: Arc<Syncmon>,
    pub config_text: String,
}

pub fn entities(specs: &[(&str, usize)]) -> Vec<EntitySpec> {
    specs.iter().map(|(n, r)| EntitySpec { name: n.to_string(), records: *r }).collect()
}

/// A connection to the mock with fast retries; `conn_extra` and `entity_extra` are TOML lines.
pub fn config_text(base_url: &str, names: &[&str], conn_extra: &str, entity_extra: &str) -> String {
    let mut s = format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{base_url}\"\nbackoff_base = \"20ms\"\nbackoff_max = \"200ms\"\n\
         requests_per_second = 1000\ntimeout = \"2s\"\n{conn_extra}\n"
    );
    for n in names {
        s.push_str(&format!("[[connection.entity]]\nname = \"{n}\"\npage_size = 100\n{entity_extra}\n"));
    }
    s
}

impl Harness {
    pub async fn start(mock_cfg: MockConfig, conn_extra: &str, entity_extra: &str) -> Harness {
        let names: Vec<String> = mock_cfg.entities.iter().map(|e| e.name.clone()).collect();
        let mock = MockServer::start(mock_cfg).await.expect("the simulated source starts on loopback");
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let text = config_text(&mock.base_url(), &names, conn_extra, entity_extra);
        Self::with_config(mock, text).await
    }

    pub async fn with_config(mock: MockServer, text: String) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(&text).unwrap_or_else(|e| panic!("test config must parse: {e}\n{text}"));
        let sm = Arc::new(Syncmon::open(config, dir.path()).unwrap());
        Harness { dir, mock, sm, config_text: text }
    }

    /// Re-opens the engine on the same data directory (a restart).
    pub fn reopen(&mut self) {
        let config = Config::parse(&self.config_text).unwrap();
        self.sm = Arc::new(Syncmon::open(config, self.dir.path()).unwrap());
    }

    pub async fn sync(&self, entity: &str) -> CycleReport {
        let sel = self.sm.select(None, &[entity.to_string()]).unwrap();
        self.sm.sync_once(&sel, &CancellationToken::new()).await.remove(0)
    }

    pub async fn sync_ok(&self, entity: &str) -> CycleReport {
        let r = self.sync(entity).await;
        assert_eq!(r.outcome, Outcome::CaughtUp, "sync of {entity} should catch up: {}", r.summary());
        r
    }

    /// id → (rowVersion, data) of the live replica rows.
    pub fn replica(&self, entity: &str) -> BTreeMap<String, (String, serde_json::Value)> {
        self.export(entity, false)
            .into_iter()
            .map(|v| (v["id"].as_str().unwrap().to_string(), (v["rowVersion"].as_str().unwrap().to_string(), v["data"].clone())))
            .collect()
    }

    pub fn export(&self, entity: &str, include_deleted: bool) -> Vec<serde_json::Value> {
        let mut buf = Vec::new();
        self.sm.export(entity, include_deleted, &mut buf).unwrap();
        String::from_utf8(buf).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    pub fn source(&self, entity: &str) -> BTreeMap<String, (String, serde_json::Value)> {
        self.mock.dataset(entity).into_iter().map(|r| (r.id, (r.row_version, r.data))).collect()
    }

    /// The replica equals the source: same ids, same versions, same data.
    pub fn assert_converged(&self, entity: &str) {
        let replica = self.replica(entity);
        let source = self.source(entity);
        let missing: Vec<_> = source.keys().filter(|k| !replica.contains_key(*k)).take(5).collect();
        let extra: Vec<_> = replica.keys().filter(|k| !source.contains_key(*k)).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{entity}: replica lacks {missing:?}, has extra {extra:?} ({} vs {} rows)",
            replica.len(),
            source.len()
        );
        for (id, (v, data)) in &source {
            let (rv, rdata) = &replica[id];
            assert_eq!(rv, v, "{entity}/{id}: the replica must hold the source's version");
            assert_eq!(rdata, data, "{entity}/{id}: the replica must hold the source's data");
        }
        let status = self.sm.status().unwrap().into_iter().find(|s| s.entity == entity).unwrap();
        assert_eq!(status.replica_rows as usize, replica.len(), "{entity}: the live-row counter must match the replica");
    }

    pub fn checkpoint(&self, entity: &str) -> String {
        self.sm.status().unwrap().into_iter().find(|s| s.entity == entity).unwrap().checkpoint
    }
}

/// The highest version in the source's dataset, as an integer.
pub fn max_version(h: &Harness, entity: &str) -> u128 {
    h.mock.dataset(entity).iter().map(|r| r.row_version.parse::<u128>().unwrap()).max().unwrap_or(0)
}
