//! The soak: the real `syncmon run` against the simulated source on loopback with every fault at
//! once (429, 5xx, resets, truncated and slow bodies, invalid JSON, records without id or
//! rowVersion, duplicate ids, outages that open the circuit), steady mutations, inserts,
//! deletions, late commits, poison records, signed webhooks and periodic full resyncs, while the
//! agent is SIGKILLed at random moments and restarted. At the end: no change lost (before the final
//! full resync too), the replica equal to the source with deletions tombstoned, every poison record
//! a failed item, memory and open files flat, the request log within its retention.
//!
//! `SYNCMON_SOAK_SECS` (default 120) is how long the driver runs; catching up afterwards is
//! bounded separately. `SYNCMON_SOAK_RECORDS` overrides the data set size, `SYNCMON_SOAK_SEED` the
//! random seed; `SYNCMON_SOAK_KEEP=1` keeps its directory (database, agent log) and prints where.
//! `scripts/soak.sh 30m` runs it in release mode and prints the figures.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use syncmon_mock::{EntitySpec, Fault, FaultKind, MockConfig, MockServer};

const BIN: &str = env!("CARGO_BIN_EXE_syncmon");
const ENTITIES: [&str; 3] = ["items", "customers", "salesorders"];
/// Faults that damage records in transit (no id, no rowVersion) go to this entity only: in the
/// others a record missing from the replica before the final full resync can only be a lost change.
const DAMAGED: &str = "customers";
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Lookback sweeps catch commits up to a lookback late; the driver makes late commits at most
/// half a lookback late (measured from when the version above them was first served), and each
/// must be in the replica within `LATE_COMMIT_DUE`, long before a full resync would bring it.
const LOOKBACK: Duration = Duration::from_secs(5);
const LATE_COMMIT_DUE: Duration = Duration::from_secs(30);

struct Settings {
    drive: Duration,
    records: usize,
    resync_every: Duration,
    kill_every_secs: (u64, u64),
    retention: Duration,
    seed: u64,
}

fn settings() -> Settings {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let secs: u64 = var("SYNCMON_SOAK_SECS").map(|v| v.parse().expect("SYNCMON_SOAK_SECS is whole seconds")).unwrap_or(120);
    assert!(secs >= 30, "SYNCMON_SOAK_SECS must be at least 30");
    let short = secs <= 300;
    Settings {
        drive: Duration::from_secs(secs),
        records: var("SYNCMON_SOAK_RECORDS").map(|v| v.parse().expect("SYNCMON_SOAK_RECORDS is a number")).unwrap_or(if short { 6_000 } else { 60_000 }),
        resync_every: Duration::from_secs((secs / 4).clamp(30, 300)),
        kill_every_secs: if short { (8, 25) } else { (10, 40) },
        retention: Duration::from_secs(30),
        seed: var("SYNCMON_SOAK_SEED").map(|v| v.parse().expect("SYNCMON_SOAK_SEED is a number")).unwrap_or_else(|| rand::thread_rng().gen()),
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    webhook_url: String,
}

impl Env {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn db(&self) -> PathBuf {
        self.data().join("syncmon.db")
    }

    /// `syncmon run`, its output appended to the agent log.
    fn spawn_agent(&self, incarnation: usize) -> Agent {
        let mut log = File::options().create(true).append(true).open(&self.log).unwrap();
        writeln!(log, "=== soak: agent start #{incarnation}").unwrap();
        let err = log.try_clone().unwrap();
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.data())
            .arg("run")
            .env_remove("RUST_LOG")
            .env("SOAK_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap();
        Agent(child)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// The agent's process, SIGKILLed and reaped when dropped: a failing assertion leaves no agent behind.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Agent {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Agent {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn config_text(s: &Settings, base_url: &str, webhook_port: u16) -> String {
    let mut t = format!(
        "[webhooks]\nlisten = \"127.0.0.1:{webhook_port}\"\n\n[storage]\nrequest_log_retention = \"{}s\"\nruns_kept = 1000000\n\n\
         [[connection]]\nid = \"src\"\nbase_url = \"{base_url}\"\nwebhook_secret_env = \"SOAK_WEBHOOK_SECRET\"\n\
         requests_per_second = 500\ntimeout = \"2s\"\nbackoff_base = \"20ms\"\nbackoff_max = \"500ms\"\n\
         breaker_cooldown = \"2s\"\nlookback = \"{}s\"\n",
        s.retention.as_secs(),
        LOOKBACK.as_secs()
    );
    for e in ENTITIES {
        t.push_str(&format!(
            "\n[[connection.entity]]\nname = \"{e}\"\npage_size = 200\npoll_every = \"1s\"\nfull_resync_every = \"{}s\"\n",
            s.resync_every.as_secs()
        ));
    }
    t
}

/// (VmRSS in KiB, open file descriptors) of a live process.
fn sample(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

fn open_db(db: &Path) -> Option<rusqlite::Connection> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.busy_timeout(Duration::from_secs(5)).ok()?;
    Some(c)
}

/// id → (rowVersion, tombstoned) of an entity's replica rows; None while the table does not exist.
fn replica(db: &Path, entity: &str) -> Option<BTreeMap<String, (String, bool)>> {
    let c = open_db(db)?;
    let mut st = c.prepare(&format!("SELECT id, row_version, deleted_at IS NOT NULL FROM \"replica_src_{entity}\"")).ok()?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get::<_, String>(1)?, r.get::<_, bool>(2)?)))).ok()?;
    rows.collect::<rusqlite::Result<_>>().ok()
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Diff {
    /// At the source (live, not poison), absent or tombstoned in the replica.
    lost: usize,
    /// Live in both, at another version.
    stale: usize,
    /// Live in the replica, not at the source (a deletion not applied, or a poison record).
    extra: usize,
    source: usize,
    tombstones: usize,
}

fn diff(mock: &MockServer, db: &Path, entity: &str) -> Diff {
    let poison: HashSet<String> = mock.poisoned(entity).into_iter().collect();
    let source: HashMap<String, String> = mock.dataset(entity).into_iter().filter(|r| !poison.contains(&r.id)).map(|r| (r.id, r.row_version)).collect();
    let replica = replica(db, entity).unwrap_or_default();
    let mut d = Diff { source: source.len(), ..Default::default() };
    for (id, v) in &source {
        match replica.get(id) {
            Some((rv, false)) if rv == v => {}
            Some((_, false)) => d.stale += 1,
            _ => d.lost += 1,
        }
    }
    for (id, (_, deleted)) in &replica {
        if *deleted {
            d.tombstones += 1;
        } else if !source.contains_key(id) {
            d.extra += 1;
        }
    }
    d
}

fn random_fault(rng: &mut StdRng) -> Fault {
    let any_entity = |rng: &mut StdRng| if rng.gen_bool(0.5) { None } else { Some(ENTITIES[rng.gen_range(0..3)].to_string()) };
    let (kind, entity) = match rng.gen_range(0..10) {
        0 => (FaultKind::RateLimit { retry_after_secs: 1 }, any_entity(rng)),
        1 => (FaultKind::Status([500, 502, 503, 504][rng.gen_range(0..4)]), any_entity(rng)),
        2 => (FaultKind::Reset, any_entity(rng)),
        3 => (FaultKind::Truncated, any_entity(rng)),
        // Past the 2 s timeout now and then.
        4 => (FaultKind::Slow { millis: rng.gen_range(200..2600) }, any_entity(rng)),
        5 => (FaultKind::InvalidJson, any_entity(rng)),
        6 => (FaultKind::MissingId { records: rng.gen_range(1..3) }, Some(DAMAGED.to_string())),
        7 => (FaultKind::MissingRowVersion { records: rng.gen_range(1..4) }, Some(DAMAGED.to_string())),
        _ => (FaultKind::DuplicateId, any_entity(rng)),
    };
    Fault { kind, entity, times: 1 }
}

#[derive(Default)]
struct Counts {
    mutated: usize,
    inserted: usize,
    deleted: usize,
    late: usize,
    poison: usize,
    faults: usize,
    outages: usize,
    restarts: usize,
    late_overdue: usize,
    late_skipped: usize,
    late_confirmed: usize,
    late_max_latency: Duration,
}

struct LateCommit {
    entity: &'static str,
    id: String,
    version: u128,
    at: Instant,
    overdue: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_every_fault_at_once_with_sigkill_restarts() {
    let s = settings();
    let started = Instant::now();
    let per = s.records / 4;
    let mock = MockServer::start(MockConfig {
        seed: s.seed,
        entities: vec![
            EntitySpec { name: "items".into(), records: s.records - 2 * per },
            EntitySpec { name: "customers".into(), records: per },
            EntitySpec { name: "salesorders".into(), records: per },
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut dir = tempfile::tempdir().unwrap();
    // SYNCMON_SOAK_KEEP=1 keeps the directory (database, agent log) for a look afterwards.
    dir.disable_cleanup(std::env::var_os("SYNCMON_SOAK_KEEP").is_some());
    let port = free_port();
    let env =
        Env { config: dir.path().join("syncmon.toml"), log: dir.path().join("agent.log"), webhook_url: format!("http://127.0.0.1:{port}/webhooks/src"), dir };
    std::fs::write(&env.config, config_text(&s, &mock.base_url(), port)).unwrap();
    eprintln!(
        "soak: {} s of driving, {} records, full resync every {} s, SIGKILL every {}-{} s, seed {} (SYNCMON_SOAK_SEED to repeat)",
        s.drive.as_secs(),
        s.records,
        s.resync_every.as_secs(),
        s.kill_every_secs.0,
        s.kill_every_secs.1,
        s.seed
    );

    let mut rng = StdRng::seed_from_u64(s.seed);
    let mut c = Counts::default();
    for e in ENTITIES {
        c.poison += mock.insert_poisoned(e, 1).len();
    }
    let mut incarnation = 0;
    let mut agent = env.spawn_agent(incarnation);
    let mut next_kill = Instant::now() + Duration::from_secs(rng.gen_range(s.kill_every_secs.0..=s.kill_every_secs.1));
    let mut next_outage = Instant::now() + Duration::from_secs(rng.gen_range(20..40));
    // (seconds since start, incarnation, RSS KiB, fds)
    let mut samples: Vec<(f64, usize, u64, usize)> = Vec::new();
    let mut next_sample = Instant::now();
    let mut next_late_check = Instant::now() + Duration::from_secs(5);
    let mut late: Vec<LateCommit> = Vec::new();
    // When each entity's highest served version last moved: how late a late commit would be.
    let mut top_served: HashMap<&str, (u64, Instant)> = HashMap::new();
    let (hooks_ok, hooks_refused, hooks_in_flight) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));

    let exited_by_itself = |agent: &mut Agent, env: &Env| {
        if let Some(status) = agent.try_wait().unwrap() {
            panic!("the agent exited by itself ({status}); its log ends:\n{}", env.log_tail());
        }
    };

    // The driver: bounded by the duration.
    while started.elapsed() < s.drive {
        tokio::time::sleep(Duration::from_millis(250)).await;
        exited_by_itself(&mut agent, &env);
        let now = Instant::now();

        // Faults: a few queued at any time, and now and then an outage long enough to fail a
        // cycle and open the circuit.
        if mock.pending_faults() < 4 {
            mock.inject(random_fault(&mut rng));
            c.faults += 1;
        }
        if now >= next_outage {
            mock.inject(Fault { kind: FaultKind::Status(503), entity: None, times: 15 });
            c.outages += 1;
            next_outage = now + Duration::from_secs(rng.gen_range(20..40));
        }

        // Changes at the source.
        let e = ENTITIES[rng.gen_range(0..3)];
        c.mutated += mock.mutate(e, rng.gen_range(0..=10)).len();
        if rng.gen_bool(0.5) {
            c.inserted += mock.insert(e, rng.gen_range(1..=3)).len();
        }
        if rng.gen_bool(0.2) {
            c.deleted += mock.delete(e, 1).len();
        }
        for e in ["items", "salesorders"] {
            let top = mock.max_served(e);
            if top_served.get(e).is_none_or(|(v, _)| *v != top) {
                top_served.insert(e, (top, now));
            }
        }
        if rng.gen_bool(0.25) {
            let e = if rng.gen_bool(0.5) { "items" } else { "salesorders" };
            // Only as late as the sweeps promise to catch (a commit later than the lookback is
            // the full resync's job).
            if top_served.get(e).is_some_and(|(v, since)| *v > 0 && now - *since <= LOOKBACK / 2) {
                let r = mock.late_commit(e);
                late.push(LateCommit { entity: e, id: r.id, version: r.row_version.parse().unwrap(), at: now, overdue: false });
                c.late += 1;
            } else {
                c.late_skipped += 1;
            }
        }
        if rng.gen_bool(0.02) {
            c.poison += mock.insert_poisoned(ENTITIES[rng.gen_range(0..3)], 1).len();
        }

        // Webhooks, sent without waiting (the agent may be down or dying).
        if rng.gen_bool(0.3) && hooks_in_flight.load(Ordering::SeqCst) < 4 {
            let (m, url, ok, refused, in_flight) = (mock.clone(), env.webhook_url.clone(), hooks_ok.clone(), hooks_refused.clone(), hooks_in_flight.clone());
            let entity = ENTITIES[rng.gen_range(0..3)];
            in_flight.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                match m.send_standard_webhook(&url, WEBHOOK_SECRET, entity).await {
                    Ok(st) if st.is_success() => ok.fetch_add(1, Ordering::SeqCst),
                    _ => refused.fetch_add(1, Ordering::SeqCst),
                };
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        }

        if now >= next_sample {
            if let Some((rss, fds)) = sample(agent.id()) {
                samples.push((started.elapsed().as_secs_f64(), incarnation, rss, fds));
            }
            next_sample = now + Duration::from_secs(1);
        }

        // Late commits must arrive by the lookback sweeps, long before a full resync.
        if now >= next_late_check {
            next_late_check = now + Duration::from_secs(5);
            let replicas: HashMap<&str, _> = ["items", "salesorders"].into_iter().filter_map(|e| replica(&env.db(), e).map(|r| (e, r))).collect();
            let mut newly_overdue: Vec<String> = Vec::new();
            late.retain_mut(|l| {
                let have = replicas.get(l.entity).and_then(|r| r.get(&l.id)).and_then(|(v, _)| v.parse::<u128>().ok());
                if have.is_some_and(|v| v >= l.version) {
                    c.late_confirmed += 1;
                    c.late_max_latency = c.late_max_latency.max(l.at.elapsed());
                    return false;
                }
                if !l.overdue && l.at.elapsed() > LATE_COMMIT_DUE {
                    l.overdue = true;
                    newly_overdue.push(l.id.clone());
                }
                true
            });
            if !newly_overdue.is_empty() {
                // A late commit deleted since is not owed to the replica.
                let live: HashSet<String> = ["items", "salesorders"].into_iter().flat_map(|e| mock.dataset(e).into_iter().map(|r| r.id)).collect();
                late.retain(|l| live.contains(&l.id));
                c.late_overdue += newly_overdue.iter().filter(|id| live.contains(*id)).count();
            }
        }

        // SIGKILL at a random moment; the process is reaped (its lock released) before the restart.
        if now >= next_kill {
            agent.kill().unwrap();
            agent.wait().unwrap();
            c.restarts += 1;
            incarnation += 1;
            agent = env.spawn_agent(incarnation);
            next_kill = Instant::now() + Duration::from_secs(rng.gen_range(s.kill_every_secs.0..=s.kill_every_secs.1));
        }
    }

    // The source calms down: no more faults or changes. The changes stopped at `calm`.
    mock.clear_faults();
    let calm = Instant::now();
    let db = env.db();
    let passes_at_calm: HashMap<&str, i64> = {
        let conn = open_db(&db).expect("the database exists after the run");
        ENTITIES.iter().map(|e| (*e, conn.query_row("SELECT resync_pass FROM entity_state WHERE entity = ?1", [e], |r| r.get(0)).unwrap())).collect()
    };
    let sample_now = |agent: &Agent, incarnation: usize, samples: &mut Vec<(f64, usize, u64, usize)>| {
        if let Some((rss, fds)) = sample(agent.id()) {
            samples.push((started.elapsed().as_secs_f64(), incarnation, rss, fds));
        }
    };

    // Phase A, incremental polls only: every change of the entities without damaged records
    // arrives (late commits included). Deletions wait for the full resync. Bounded: 60 s.
    let mut phase_a = (Diff::default(), Diff::default());
    let mut phase_a_secs = None;
    for _ in 0..60 {
        exited_by_itself(&mut agent, &env);
        sample_now(&agent, incarnation, &mut samples);
        phase_a = (diff(&mock, &db, "items"), diff(&mock, &db, "salesorders"));
        if phase_a.0.lost + phase_a.0.stale + phase_a.1.lost + phase_a.1.stale == 0 {
            phase_a_secs = Some(calm.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let late_missing_at_calm: Vec<String> = {
        let replicas: HashMap<&str, _> = ["items", "salesorders"].into_iter().filter_map(|e| replica(&db, e).map(|r| (e, r))).collect();
        let live: HashSet<String> = ["items", "salesorders"].into_iter().flat_map(|e| mock.dataset(e).into_iter().map(|r| r.id)).collect();
        late.iter()
            .filter(|l| live.contains(&l.id))
            .filter(|l| replicas.get(l.entity).and_then(|r| r.get(&l.id)).and_then(|(v, _)| v.parse::<u128>().ok()).is_none_or(|v| v < l.version))
            .map(|l| format!("{}/{}@{}", l.entity, l.id, l.version))
            .collect()
    };

    // Phase B: a full resync of each entity that started after the changes stopped (scheduled by
    // `full_resync_every`), so deletions apply. Bounded: the interval plus two minutes.
    let mut resynced = false;
    let deadline = Instant::now() + s.resync_every + Duration::from_secs(120);
    while Instant::now() < deadline {
        exited_by_itself(&mut agent, &env);
        sample_now(&agent, incarnation, &mut samples);
        let conn = open_db(&db).unwrap();
        let done = ENTITIES.iter().all(|e| {
            let (pass, state): (i64, Option<String>) =
                conn.query_row("SELECT resync_pass, resync_state FROM entity_state WHERE entity = ?1", [e], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            assert_ne!(state.as_deref(), Some("guard_tripped"), "{e}: the deletion guard tripped; log:\n{}", env.log_tail());
            pass > passes_at_calm[e] && state.is_none()
        });
        if done {
            resynced = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let final_diff: Vec<(&str, Diff)> = ENTITIES.iter().map(|e| (*e, diff(&mock, &db, e))).collect();

    // The request log, read while the agent runs (housekeeping prunes it every retention / 2).
    let (log_rows, oldest_age_s) = {
        let conn = open_db(&db).unwrap();
        let (n, oldest): (i64, Option<i64>) = conn.query_row("SELECT count(*), min(at) FROM request_log", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        (n, oldest.map(|t| (now_ms() - t) as f64 / 1000.0).unwrap_or(0.0))
    };

    // SIGTERM: a clean stop, bounded.
    let term = Command::new("kill").arg("-TERM").arg(agent.id().to_string()).status().unwrap();
    assert!(term.success());
    let mut exit = None;
    for _ in 0..200 {
        if let Some(st) = agent.try_wait().unwrap() {
            exit = Some(st);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if exit.is_none() {
        agent.kill().unwrap();
        agent.wait().unwrap();
    }

    // Figures.
    let conn = open_db(&db).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    let pending: HashSet<(String, String)> = {
        let mut st = conn.prepare("SELECT entity, record_id FROM failed_items WHERE state = 'pending' AND record_id IS NOT NULL").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    };
    let failed_by_kind: Vec<(String, String, i64)> = {
        let mut st = conn.prepare("SELECT state, error_kind, count(*) FROM failed_items GROUP BY state, error_kind ORDER BY 1, 2").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    };
    let runs: Vec<(String, i64, i64)> = {
        let mut st = conn.prepare("SELECT kind, count(*), coalesce(sum(records), 0) FROM runs GROUP BY kind ORDER BY kind").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    };
    // Each entity's first lookback sweep that caught up: it reads from the beginning (no anchor
    // yet), re-reading the initial load once by design (DESIGN §2.5), a one-off cost.
    let first_sweep: Vec<i64> = ENTITIES
        .iter()
        .map(|e| {
            conn.query_row(
                "SELECT coalesce((SELECT records FROM runs WHERE entity = ?1 AND kind = 'lookback' AND outcome = 'caught_up' ORDER BY id LIMIT 1), 0)",
                [e],
                |r| r.get(0),
            )
            .unwrap()
        })
        .collect();
    let poison_live: Vec<(&str, String)> = ENTITIES.iter().flat_map(|e| mock.poisoned(e).into_iter().map(move |id| (*e, id))).collect();
    let poison_missing: Vec<&(&str, String)> = poison_live.iter().filter(|(e, id)| !pending.contains(&(e.to_string(), id.clone()))).collect();
    let panics = std::fs::read_to_string(&env.log).unwrap_or_default().lines().filter(|l| l.contains("panicked")).count();

    let third = s.drive.as_secs_f64() / 3.0;
    let window = |f: &dyn Fn(f64) -> bool| {
        samples.iter().filter(|x| f(x.0)).fold((u64::MAX, 0u64, usize::MAX, 0usize), |a, x| (a.0.min(x.2), a.1.max(x.2), a.2.min(x.3), a.3.max(x.3)))
    };
    let early = window(&|t| t < third);
    let late_w = window(&|t| t >= 2.0 * third);
    let all = window(&|_| true);
    let changes = c.mutated + c.inserted + c.deleted + c.late + c.poison;
    let served = mock.records_served();
    let read_by = |kind: &str| runs.iter().find(|r| r.0 == kind).map(|r| r.2).unwrap_or(0);
    let (polls, sweeps) = (read_by("incremental"), read_by("lookback"));
    // The one-off reads, not what the steady changes cost: the initial load (by polls), and the
    // first sweeps' re-read of it (the records of the load, not what changed since).
    let initial = [s.records - 2 * per, per, per].map(|n| n as i64);
    let load_reread: i64 = first_sweep.iter().zip(initial).map(|(swept, n)| (*swept).min(n)).sum();
    let steady_polls = (polls - s.records as i64).max(0);
    let steady_sweeps = (sweeps - load_reread).max(0);
    let per_change = |n: i64| n as f64 / changes.max(1) as f64;

    println!("---- soak figures ----");
    println!("duration: {:.0} s driving + {:.0} s catching up (seed {})", s.drive.as_secs_f64(), calm.elapsed().as_secs_f64(), s.seed);
    println!("records: {} at start; now {} live at the source", s.records, final_diff.iter().map(|d| d.1.source).sum::<usize>() + poison_live.len());
    println!(
        "changes made: {changes} ({} updates, {} inserts, {} deletes, {} late commits, {} poison records)",
        c.mutated, c.inserted, c.deleted, c.late, c.poison
    );
    println!(
        "faults injected: {} single + {} outages (15 × 503); webhooks accepted {} / not delivered {}",
        c.faults,
        c.outages,
        hooks_ok.load(Ordering::SeqCst),
        hooks_refused.load(Ordering::SeqCst)
    );
    println!("restarts (SIGKILL): {}", c.restarts);
    println!("records served by the source: {served} ({:.1} per change)", served as f64 / changes.max(1) as f64);
    for (kind, n, records) in &runs {
        println!("runs {kind}: {n}, {records} records read");
    }
    println!(
        "records read by polls and sweeps per record changed: {:.2} (polls {:.2} + sweeps {:.2}), past the one-off reads of the {} records of the initial load and the first sweeps' re-read of them ({load_reread}); {:.2} with that re-read; records of runs killed mid-page not counted",
        per_change(steady_polls + steady_sweeps),
        per_change(steady_polls),
        per_change(steady_sweeps),
        s.records,
        per_change(steady_polls + sweeps)
    );
    println!(
        "late commits: {} confirmed while driving (slowest {:.1} s), {} overdue (> {} s), {} missing after phase A; {} not made (the top had not moved for half a lookback)",
        c.late_confirmed,
        c.late_max_latency.as_secs_f64(),
        c.late_overdue,
        LATE_COMMIT_DUE.as_secs(),
        late_missing_at_calm.len(),
        c.late_skipped
    );
    println!("phase A (incremental only): items {:?}, salesorders {:?}, converged after {:?} s", phase_a.0, phase_a.1, phase_a_secs);
    for (e, d) in &final_diff {
        println!("final {e}: {d:?}");
    }
    println!("failed items: {failed_by_kind:?}; live poison records {} (without a pending failed item: {})", poison_live.len(), poison_missing.len());
    println!("RSS KiB: min {} max {} (first third max {}, last third max {})", all.0, all.1, early.1, late_w.1);
    println!("open fds: min {} max {} (first third max {}, last third max {})", all.2, all.3, early.3, late_w.3);
    println!("request log: {log_rows} rows, oldest {oldest_age_s:.1} s old (retention {} s)", s.retention.as_secs());
    println!("integrity: {integrity}; agent exit on SIGTERM: {exit:?}; panics in the agent log: {panics}");
    println!("----------------------");
    if std::env::var_os("SYNCMON_SOAK_KEEP").is_some() {
        println!("kept the soak's directory (SYNCMON_SOAK_KEEP): {}", env.dir.path().display());
    }

    assert_eq!(panics, 0, "the agent panicked; log:\n{}", env.log_tail());
    let kills_expected = (s.drive.as_secs() / s.kill_every_secs.1).max(1) as usize;
    assert!(c.restarts >= kills_expected, "the agent must be killed at least {kills_expected} times to test anything ({})", c.restarts);
    assert!(hooks_ok.load(Ordering::SeqCst) > 0, "webhooks reached the agent");
    assert_eq!(c.late_overdue, 0, "late commits not in the replica {} s after they were made (lookback {} s)", LATE_COMMIT_DUE.as_secs(), LOOKBACK.as_secs());
    assert!(late_missing_at_calm.is_empty(), "late commits lost by the incremental polls (before the final full resync): {late_missing_at_calm:?}");
    assert!(phase_a_secs.is_some(), "incremental polls lost changes: items {:?}, salesorders {:?}", phase_a.0, phase_a.1);
    assert!(resynced, "no full resync completed after the changes stopped; log:\n{}", env.log_tail());
    for (e, d) in &final_diff {
        assert_eq!((d.lost, d.stale, d.extra), (0, 0, 0), "{e}: replica vs source after the final full resync: {d:?}");
    }
    assert!(c.deleted == 0 || final_diff.iter().map(|d| d.1.tombstones).sum::<usize>() > 0, "deletions are tombstoned");
    assert!(poison_missing.is_empty(), "poison records without a pending failed item: {poison_missing:?}");
    assert!(!poison_live.is_empty(), "the soak made poison records");
    assert!(early.1 > 0 && late_w.1 > 0, "memory was sampled early and late");
    assert!(late_w.1 <= 2 * early.1 + 32 * 1024, "memory grows: {} KiB late vs {} KiB early", late_w.1, early.1);
    assert!(late_w.3 <= early.3 + 32, "open files grow: {} late vs {} early", late_w.3, early.3);
    let bound = s.retention.as_secs_f64() * 1.5 + 10.0;
    assert!(oldest_age_s <= bound, "the request log holds entries {oldest_age_s:.0} s old (retention {} s, bound {bound:.0} s)", s.retention.as_secs());
    assert_eq!(integrity, "ok");
    assert!(exit.is_some_and(|st| st.success()), "SIGTERM must stop the agent cleanly within 20 s: {exit:?}; log:\n{}", env.log_tail());
}
