//! The demo setup shared by `syncmon demo` and `syncmon-desktop --demo`: the simulated source on
//! loopback, a generated config pointing at it, and a script of realistic faults, so that every
//! screen has something to show.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use syncmon_core::{AgentLock, Config, Syncmon};
use syncmon_mock::{Fault, FaultKind, MockConfig, MockServer};
use tokio_util::sync::CancellationToken;

/// The environment variable the generated config names for the demo's webhook secret. The secret
/// lives only in this process's environment, never on disk.
pub const DEMO_WEBHOOK_ENV: &str = "SYNCMON_DEMO_WEBHOOK_SECRET";
/// The demo's entities.
pub const ENTITIES: [&str; 3] = ["items", "customers", "salesorders"];

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the simulated source listens (loopback).
    pub mock_listen: SocketAddr,
    /// Where the agent's webhook receiver listens (loopback).
    pub webhook_listen: SocketAddr,
    /// Records per entity.
    pub records: usize,
    /// Seconds between scheduled polls.
    pub poll_seconds: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            mock_listen: "127.0.0.1:8380".parse().expect("address"),
            webhook_listen: "127.0.0.1:8385".parse().expect("address"),
            records: 2000,
            poll_seconds: 15,
        }
    }
}

/// Where the demo keeps its replica when no data dir is given: apart from the real one.
pub fn default_data_dir() -> PathBuf {
    syncmon_core::default_data_dir().join("demo")
}

/// A running simulated source and the config written for it.
pub struct Demo {
    pub mock: MockServer,
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    pub webhook_url: String,
    secret: String,
    /// The data directory's agent lock, taken before anything is written there.
    lock: Arc<AgentLock>,
}

impl Demo {
    /// Takes `data_dir`'s agent lock (refused, naming the holder, while another agent uses it),
    /// starts the simulated source and writes `demo.toml` into `data_dir` (created if needed).
    /// Sets [`DEMO_WEBHOOK_ENV`] in this process's environment: call it before spawning threads
    /// that read the environment.
    pub async fn start(opts: &DemoOptions, data_dir: &Path) -> Result<Demo, String> {
        std::fs::create_dir_all(data_dir).map_err(|e| format!("cannot create the data dir {}: {e}", data_dir.display()))?;
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let lock = Arc::new(AgentLock::acquire(data_dir, now_ms).map_err(|e| e.to_string())?);
        let mock = MockServer::start(MockConfig {
            listen: Some(opts.mock_listen),
            entities: ENTITIES.iter().map(|n| syncmon_mock::EntitySpec { name: n.to_string(), records: opts.records }).collect(),
            mutations_per_sec: 3.0,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("cannot start the simulated source on {}: {e}; pass --mock-listen with a free port", opts.mock_listen))?;
        // The two-way pair's two systems start with the store's stock; the ERP side fills from it.
        for i in 0..STOCK_RECORDS {
            mock.target_put(STORE_STOCK, &stock_id(i), stock_record(i, 100 + (i as u64 % 50), "store"));
        }
        let secret = format!("whsec_{}", base64_key());
        std::env::set_var(DEMO_WEBHOOK_ENV, &secret);
        let config_path = data_dir.join("demo.toml");
        std::fs::write(&config_path, demo_config(&mock.base_url(), &opts.webhook_listen.to_string(), opts.poll_seconds))
            .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
        Ok(Demo { mock, config_path, data_dir: data_dir.to_path_buf(), webhook_url: format!("http://{}/webhooks/demo", opts.webhook_listen), secret, lock })
    }

    /// Opens the engine on the generated config, as an agent holding the demo's lock.
    pub fn open(&self) -> Result<Syncmon, String> {
        let config = Config::load(&self.config_path).map_err(|e| e.to_string())?;
        Ok(Syncmon::open_agent_locked(config, &self.data_dir, self.agent_lock()).map_err(|e| e.to_string())?.with_config_path(&self.config_path))
    }

    /// The data directory's agent lock, for front ends that open the engine themselves.
    pub fn agent_lock(&self) -> Arc<AgentLock> {
        self.lock.clone()
    }

    /// The fault script: every 20 s something realistic goes wrong, and a change is announced by
    /// webhook; until `cancel`. Spawn it on the runtime.
    pub fn faults(&self, cancel: CancellationToken) -> impl std::future::Future<Output = ()> + Send + 'static {
        fault_loop(self.mock.clone(), self.webhook_url.clone(), self.secret.clone(), cancel)
    }
}

pub fn demo_config(base_url: &str, webhook_listen: &str, poll_seconds: u64) -> String {
    let mut s = format!(
        "# Generated by `syncmon demo`: the built-in simulated source.\n\
         [webhooks]\nlisten = \"{webhook_listen}\"\n\n\
         [[connection]]\nid = \"demo\"\nbase_url = \"{base_url}\"\nprofile = \"rowversion\"\nauth = \"none\"\n\
         webhook_secret_env = \"{DEMO_WEBHOOK_ENV}\"\napi_version = \"2024-01-01\"\nmax_retries = 3\nbackoff_base = \"200ms\"\n\
         backoff_max = \"2s\"\nrequests_per_second = 50\nlookback = \"2m\"\n"
    );
    for e in ENTITIES {
        s.push_str(&format!("\n[[connection.entity]]\nname = \"{e}\"\npoll_every = \"{poll_seconds}s\"\npage_size = 500\nfull_resync_every = \"1h\"\n"));
    }
    // The simulated source's two feeds without a rowVersion: `vendors` by last-modified time
    // (coarse: many records share a second), `prices` as a full snapshot every poll.
    s.push_str(&format!(
        "\n[[connection]]\nid = \"catalog\"\nbase_url = \"{base_url}\"\nprofile = \"timestamp\"\nauth = \"none\"\n\
         [connection.cursor]\nid_field = \"id\"\nversion_field = \"lastModified\"\nrecords_pointer = \"/items\"\n\
         filter_param = \"modifiedSince\"\nextra_query = \"orderBy=lastModified\"\npage_size_param = \"limit\"\nnext_url_pointer = \"/links/next\"\n\
         [[connection.entity]]\nname = \"vendors\"\npoll_every = \"{poll_seconds}s\"\npage_size = 100\n\
         \n[[connection]]\nid = \"pricelist\"\nbase_url = \"{base_url}\"\nprofile = \"snapshot\"\nauth = \"none\"\n\
         [connection.cursor]\nid_field = \"id\"\nrecords_pointer = \"/items\"\npage_size_param = \"limit\"\nnext_url_pointer = \"/links/next\"\n\
         [[connection.entity]]\nname = \"prices\"\npoll_every = \"{}s\"\npage_size = 100\n",
        poll_seconds.max(1) * 3
    ));
    // A two-way pair: the store's stock and the ERP's, each the other's target (the simulated
    // target keeps both and serves each as a rowVersion feed). Edits on either side reach the
    // other; a record edited on both between two syncs waits as a conflict to keep one side of.
    for (id, own, other) in [("store", STORE_STOCK, ERP_STOCK), ("erp", ERP_STOCK, STORE_STOCK)] {
        s.push_str(&format!(
            "\n[[connection]]\nid = \"{id}\"\nbase_url = \"{base_url}/target\"\nauth = \"none\"\nrequests_per_second = 50\n\
             [[connection.entity]]\nname = \"stock\"\npath = \"/{own}\"\npoll_every = \"{poll_seconds}s\"\nforward_to = \"{other_id}\"\nforward_path = \"/{other}\"\n\
             \n[[target]]\nid = \"{id}\"\nbase_url = \"{base_url}/target\"\nauth = \"none\"\nrequests_per_second = 50\n",
            other_id = if id == "store" { "erp" } else { "store" },
        ));
    }
    s
}

/// The simulated target's names for the two systems' stock.
pub const STORE_STOCK: &str = "store-stock";
pub const ERP_STOCK: &str = "erp-stock";
const STOCK_RECORDS: usize = 200;

fn stock_id(i: usize) -> String {
    format!("sku-{i:04}")
}

fn stock_record(i: usize, quantity: u64, by: &str) -> serde_json::Value {
    serde_json::json!({ "id": stock_id(i), "sku": stock_id(i), "quantity": quantity, "changedBy": by })
}

async fn fault_loop(mock: MockServer, webhook_url: String, secret: String, cancel: CancellationToken) {
    let script: Vec<(&str, FaultKind, u32)> = vec![
        ("items", FaultKind::Status(503), 2),
        ("customers", FaultKind::RateLimit { retry_after_secs: 1 }, 1),
        ("salesorders", FaultKind::MissingId { records: 1 }, 1),
        ("items", FaultKind::Slow { millis: 1500 }, 1),
        ("customers", FaultKind::MissingRowVersion { records: 2 }, 1),
        ("salesorders", FaultKind::Truncated, 1),
        ("items", FaultKind::DuplicateId, 1),
        ("customers", FaultKind::Status(502), 8),
    ];
    for step in 0u64.. {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(20)) => {}
            _ = cancel.cancelled() => return,
        }
        // The pair: one side's user changes a record, the sides taking turns.
        let (system, by) = if step % 2 == 0 { (STORE_STOCK, "store") } else { (ERP_STOCK, "erp") };
        let i = (step as usize * 7) % STOCK_RECORDS;
        mock.target_put(system, &stock_id(i), stock_record(i, step % 90, by));
        let (entity, kind, times) = script[(step as usize) % script.len()].clone();
        mock.inject(Fault { kind, entity: Some(entity.to_string()), times });
        mock.mutate(entity, 5);
        let _ = mock.send_standard_webhook(&webhook_url, &secret, entity).await;
    }
}

fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 24]>())
}
