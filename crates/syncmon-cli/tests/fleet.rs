//! Several agents on one PostgreSQL replica: two `syncmon run` processes with one config (each
//! with its own data directory, as on two machines) share a throwaway PostgreSQL on loopback.
//! They split the entities through leases, the replica stays exact through mutations, inserts
//! and deletions, `status` names each entity's agent, and when one agent is SIGKILLed the other
//! takes its entities over within the lease time and brings the replica level again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use syncmon_mock::{EntitySpec, MockConfig, MockServer};

const BIN: &str = env!("CARGO_BIN_EXE_syncmon");
const ENTITIES: [&str; 4] = ["items", "customers", "vendors", "salesorders"];
const LEASE: Duration = Duration::from_secs(3);

struct Agent {
    child: Child,
    data: PathBuf,
    log: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(config: &Path, dir: &Path, name: &str, extra: &[&str]) -> Agent {
    let data = dir.join(format!("data-{name}"));
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(&data)
        .arg("run")
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    Agent { child, data, log }
}

/// A throwaway PostgreSQL with an empty database `syncmon` (its URL), and a simulated source of one
/// entity, `items`.
async fn postgres_and_source(seed: u64, records: usize) -> (syncmon_testpg::PgCluster, String, MockServer) {
    let cluster = syncmon_testpg::PgCluster::start();
    let url = cluster.create_database("syncmon");
    let mock = MockServer::start(MockConfig { seed, entities: vec![EntitySpec { name: "items".into(), records }], ..Default::default() }).await.unwrap();
    (cluster, url, mock)
}

/// GET over a plain socket (with a bearer token when given): the raw response.
fn http_get(port: u16, path: &str, token: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// entity → agent holding it, from `syncmon status --json` (run from `data`).
fn holders(config: &Path, data: &Path) -> BTreeMap<String, Option<String>> {
    let out = Command::new(BIN).arg("--config").arg(config).arg("--data-dir").arg(data).args(["status", "--json"]).output().unwrap();
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else { return BTreeMap::new() };
    let list = v.get("entities").unwrap_or(&v).as_array().cloned().unwrap_or_default();
    list.iter().map(|e| (e["entity"].as_str().unwrap_or_default().to_string(), e["holder"].as_str().map(str::to_string))).collect()
}

/// id → rowVersion of the live rows, read with plain SQL as any other program would.
fn replica(pg: &mut postgres::Client, entity: &str) -> BTreeMap<String, String> {
    match pg.query(&format!("SELECT id, row_version FROM replica_src_{entity} WHERE deleted_at IS NULL"), &[]) {
        Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        Err(_) => BTreeMap::new(),
    }
}

fn source(mock: &MockServer, entity: &str) -> BTreeMap<String, String> {
    mock.dataset(entity).into_iter().map(|r| (r.id, r.row_version)).collect()
}

/// Waits (bounded) until every entity's replica equals the source; the differences if not.
fn wait_exact(pg: &mut postgres::Client, mock: &MockServer, entities: &[&str], within: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let diff: Vec<String> = entities
            .iter()
            .filter_map(|e| {
                let (r, s) = (replica(pg, e), source(mock, e));
                (r != s).then(|| format!("{e}: replica {} rows, source {}", r.len(), s.len()))
            })
            .collect();
        if diff.is_empty() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > within {
            return Err(diff.join("; "));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_share_the_entities_and_the_survivor_takes_over_after_a_sigkill() {
    let cluster = syncmon_testpg::PgCluster::start();
    let url = cluster.create_database("syncmon");
    let mock = MockServer::start(MockConfig {
        seed: 14,
        entities: ENTITIES.iter().map(|e| EntitySpec { name: e.to_string(), records: 600 }).collect(),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("syncmon.toml");
    let mut text = format!(
        "[replica]\nurl = \"{url}\"\nlease = \"{}s\"\n\n[[connection]]\nid = \"src\"\nbase_url = \"{}\"\nrequests_per_second = 500\n",
        LEASE.as_secs(),
        mock.base_url()
    );
    for e in ENTITIES {
        // Deletions reach the replica through full resyncs.
        text.push_str(&format!("\n[[connection.entity]]\nname = \"{e}\"\npage_size = 100\npoll_every = \"1s\"\nfull_resync_every = \"4s\"\n"));
    }
    std::fs::write(&config, text).unwrap();
    // The rest blocks (processes, polls, the blocking PostgreSQL client): off the runtime's worker.
    tokio::task::block_in_place(|| drive(&config, dir.path(), &url, &mock));
    mock.shutdown().await;
}

fn drive(config: &Path, dir: &Path, url: &str, mock: &MockServer) {
    let (config, mock) = (config.to_path_buf(), mock);
    let mut pg = postgres::Client::connect(url, postgres::NoTls).unwrap();

    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let a = spawn(&config, dir, "a", &["--metrics", &format!("127.0.0.1:{metrics_port}")]);
    let b = spawn(&config, dir, "b", &[]);
    let (pid_a, pid_b) = (a.child.id().to_string(), b.child.id().to_string());
    let log_tail = |agent: &Agent| std::fs::read_to_string(&agent.log).unwrap_or_default().lines().rev().take(30).collect::<Vec<_>>().join("\n");

    // Both agents get a share; no entity has two holders (one lease row each), every entity one.
    let deadline = Instant::now() + Duration::from_secs(60);
    let split = loop {
        let h = holders(&config, &a.data);
        let by_a = h.values().filter(|v| v.as_deref().is_some_and(|n| n.ends_with(&format!("/{pid_a}")))).count();
        let by_b = h.values().filter(|v| v.as_deref().is_some_and(|n| n.ends_with(&format!("/{pid_b}")))).count();
        if by_a == 2 && by_b == 2 {
            break h;
        }
        assert!(Instant::now() < deadline, "no 2/2 split within 60 s: {h:?}\n--- a:\n{}\n--- b:\n{}", log_tail(&a), log_tail(&b));
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!("split: {split:?}");
    // Prometheus sees the split too: one holder series per entity, naming its agent.
    let metrics = http_get(metrics_port, "/metrics", None);
    let held: Vec<&str> = metrics.lines().filter(|l| l.starts_with("syncmon_entity_lease_held{")).collect();
    assert_eq!(held.len(), ENTITIES.len(), "{metrics}");
    assert_eq!(held.iter().filter(|l| l.contains(&format!("/{pid_b}\"")) && l.ends_with(" 1")).count(), 2, "{held:?}");
    // The diagnostics bundle names each entity's agent.
    let zip_path = dir.join("bundle.zip");
    let diag = Command::new(BIN).arg("--config").arg(&config).arg("--data-dir").arg(&a.data).args(["diagnostics", "--output"]).arg(&zip_path).output().unwrap();
    assert!(diag.status.success(), "{}", String::from_utf8_lossy(&diag.stderr));
    let mut summary = String::new();
    std::io::Read::read_to_string(&mut zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap().by_name("SUMMARY.md").unwrap(), &mut summary)
        .unwrap();
    assert!(summary.contains(&format!("/{pid_a} |")) && summary.contains(&format!("/{pid_b} |")), "{summary}");
    let exact = wait_exact(&mut pg, mock, &ENTITIES, Duration::from_secs(90));
    assert!(exact.is_ok(), "initial load: {:?}\n--- a:\n{}\n--- b:\n{}", exact, log_tail(&a), log_tail(&b));

    // Changes while both run: every entity catches up, deletions included.
    for e in ENTITIES {
        mock.mutate(e, 40);
        mock.insert(e, 15);
        mock.delete(e, 10);
    }
    let exact = wait_exact(&mut pg, mock, &ENTITIES, Duration::from_secs(90));
    assert!(exact.is_ok(), "with two agents: {:?}\n--- a:\n{}\n--- b:\n{}", exact, log_tail(&a), log_tail(&b));

    // B dies without giving its leases back; A takes them within the lease time (and a poll).
    let mut b = b;
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let killed = Instant::now();
    for e in ENTITIES {
        mock.mutate(e, 30);
        mock.insert(e, 10);
        mock.delete(e, 5);
    }
    let took_over = loop {
        let h = holders(&config, &a.data);
        if h.len() == ENTITIES.len() && h.values().all(|v| v.as_deref().is_some_and(|n| n.ends_with(&format!("/{pid_a}")))) {
            break killed.elapsed();
        }
        assert!(killed.elapsed() < LEASE * 10, "A did not take over within {:?}: {h:?}\n--- a:\n{}", LEASE * 10, log_tail(&a));
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("takeover: A held every entity {took_over:?} after B's SIGKILL (lease {LEASE:?})");
    let exact = wait_exact(&mut pg, mock, &ENTITIES, Duration::from_secs(90));
    assert!(exact.is_ok(), "after the takeover: {:?}\n--- a:\n{}", exact, log_tail(&a));
    drop(b);
    drop(a);
}

fn syncmon(config: &Path, data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN).arg("--config").arg(config).arg("--data-dir").arg(data).args(args).env_remove("RUST_LOG").output().unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The commands a user runs, against a PostgreSQL replica: sync, status, export, failed items,
/// the request log, find, check, diagnostics, and the served UI's API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_works_against_a_postgresql_replica() {
    let (_cluster, url, mock) = postgres_and_source(9, 300).await;
    let poisoned = mock.insert_poisoned("items", 2);
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = (dir.path().join("syncmon.toml"), dir.path().join("data"));
    std::fs::write(
        &config,
        format!(
            "[replica]\nurl = \"{url}\"\n\n[[connection]]\nid = \"src\"\nbase_url = \"{}\"\n\n[[connection.entity]]\nname = \"items\"\npage_size = 100\n",
            mock.base_url()
        ),
    )
    .unwrap();
    let want = mock.dataset("items").len();
    tokio::task::block_in_place(|| {
        let sync = syncmon(&config, &data, &["sync", "--json"]);
        assert!(sync.status.success(), "sync: {}{}", stdout(&sync), String::from_utf8_lossy(&sync.stderr));
        assert!(!data.join("syncmon.db").exists(), "no SQLite replica beside PostgreSQL");

        let status: serde_json::Value = serde_json::from_slice(&syncmon(&config, &data, &["status", "--json"]).stdout).unwrap();
        let items = &status.as_array().unwrap()[0];
        assert_eq!(items["replica_rows"].as_u64(), Some(want as u64 - poisoned.len() as u64), "{items}");
        assert_eq!(items["pending_failed"].as_u64(), Some(poisoned.len() as u64), "{items}");
        assert_eq!(items["health"], "healthy", "{items}");

        let export = syncmon(&config, &data, &["export", "items"]);
        assert!(export.status.success());
        let lines: Vec<serde_json::Value> = stdout(&export).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), want - poisoned.len(), "every live row, one JSON object per line");
        let id = lines[0]["id"].as_str().unwrap().to_string();

        let failed: serde_json::Value = serde_json::from_slice(&syncmon(&config, &data, &["failed", "list", "--json"]).stdout).unwrap();
        let listed = failed.get("items").unwrap_or(&failed).as_array().map_or(0, Vec::len);
        assert_eq!(listed, poisoned.len(), "{failed}");

        let requests = stdout(&syncmon(&config, &data, &["requests", "--json"]));
        assert!(requests.contains("sync=true"), "the calls are logged in PostgreSQL: {requests}");

        let found = syncmon(&config, &data, &["find", &id]);
        assert!(found.status.success() && stdout(&found).contains(&id), "find: {}", stdout(&found));

        let check = syncmon(&config, &data, &["check"]);
        assert!(check.status.success() && stdout(&check).contains("the PostgreSQL replica postgresql://postgres@127.0.0.1:"), "check: {}", stdout(&check));

        let zip = dir.path().join("bundle.zip");
        let diag = syncmon(&config, &data, &["diagnostics", "--output", zip.to_str().unwrap()]);
        assert!(diag.status.success() && zip.is_file(), "diagnostics: {}", String::from_utf8_lossy(&diag.stderr));

        // The served UI's API reads the same replica.
        let token = "fleet-test-token-0123456789";
        let mut serve = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data-serve"))
            .args(["serve", "--listen", "127.0.0.1:0", "--token-env", "FLEET_TOKEN", "--ui-dir"])
            .arg(dir.path().join("no-ui"))
            .env("FLEET_TOKEN", token)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(serve.stdout.take().unwrap()));
        let banner = lines.next().unwrap().unwrap();
        let port: u16 = banner.split("http://127.0.0.1:").nth(1).and_then(|r| r.split('/').next()).and_then(|p| p.parse().ok()).unwrap();
        let answer = http_get(port, "/api/status", Some(token));
        let _ = serve.kill();
        let _ = serve.wait();
        assert!(answer.starts_with("HTTP/1.1 200") && answer.contains(&format!("\"replica_rows\":{}", want - poisoned.len())), "{answer}");
    });
    mock.shutdown().await;
}

/// The crash test on PostgreSQL: `syncmon sync` (and now and then `resync`) SIGKILLed at random
/// moments while the source moves on; in the end the replica equals the source, no id twice, and
/// no run is refused for the lease a killed one left (it runs out within seconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_sync_at_random_moments_on_postgresql_never_loses_or_duplicates_a_change() {
    use rand::Rng;
    let (_cluster, url, mock) = postgres_and_source(3, 30_000).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = (dir.path().join("syncmon.toml"), dir.path().join("data"));
    std::fs::write(
        &config,
        format!(
            "[replica]\nurl = \"{url}\"\n\n[[connection]]\nid = \"src\"\nbase_url = \"{}\"\n\n[[connection.entity]]\nname = \"items\"\npage_size = 200\n",
            mock.base_url()
        ),
    )
    .unwrap();
    tokio::task::block_in_place(|| {
        let mut rng = rand::thread_rng();
        let mut killed = 0;
        for round in 0..10 {
            let args: &[&str] = if round % 4 == 3 { &["resync", "items", "--yes"] } else { &["sync"] };
            let mut child = Command::new(BIN)
                .arg("--config")
                .arg(&config)
                .arg("--data-dir")
                .arg(&data)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(rng.gen_range(100..1200)));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                killed += 1;
            } else {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                assert!(!err.contains("held by"), "a killed run's lease must not refuse the next: {err}");
            }
            child.wait().unwrap();
            mock.mutate("items", 200);
            mock.insert("items", 50);
        }
        assert!(killed >= 5, "most runs must be killed mid-sync to test anything ({killed} of 10)");
        for _ in 0..2 {
            let out = syncmon(&config, &data, &["sync"]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let mut pg = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        assert_eq!(replica(&mut pg, "items"), source(&mock, "items"), "the replica equals the source");
        let twice: i64 = pg.query_one("SELECT count(*) FROM (SELECT id FROM replica_src_items GROUP BY id HAVING count(*) > 1) d", &[]).unwrap().get(0);
        assert_eq!(twice, 0, "no id written twice");
    });
    mock.shutdown().await;
}

/// The PostgreSQL server restarts under a running agent (maintenance): the agent reconnects by
/// itself and the replica catches up with what changed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_carries_on_after_the_postgresql_server_restarts() {
    let (cluster, url, mock) = postgres_and_source(5, 500).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("syncmon.toml");
    std::fs::write(
        &config,
        format!(
            "[replica]\nurl = \"{url}\"\nlease = \"3s\"\n\n[[connection]]\nid = \"src\"\nbase_url = \"{}\"\n\n[[connection.entity]]\nname = \"items\"\npoll_every = \"1s\"\n",
            mock.base_url()
        ),
    )
    .unwrap();
    tokio::task::block_in_place(|| {
        let agent = spawn(&config, dir.path(), "a", &[]);
        let mut pg = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        assert!(wait_exact(&mut pg, &mock, &["items"], Duration::from_secs(60)).is_ok(), "initial load");
        cluster.restart();
        mock.mutate("items", 30);
        mock.insert("items", 10);
        let mut pg = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let caught_up = wait_exact(&mut pg, &mock, &["items"], Duration::from_secs(60));
        let log = std::fs::read_to_string(&agent.log).unwrap_or_default();
        assert!(caught_up.is_ok(), "after the restart: {caught_up:?}\n{log}");
        eprintln!("caught up {:?} after the server restart", caught_up.unwrap());
        assert!(log.contains("reconnected to the PostgreSQL replica"), "{log}");
    });
    mock.shutdown().await;
}
