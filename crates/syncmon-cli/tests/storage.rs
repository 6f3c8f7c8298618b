//! The data directory as users share it: one agent per directory (a second one exits 2 naming the
//! holder; a SIGKILLed agent's lock is freed by the OS), read commands that open the database
//! read-only (beside a busy sync, on a read-only copy, while an agent creates the database, and
//! without changing a byte of it), and `syncmon check` against a really damaged file.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use syncmon_mock::{EntitySpec, Fault, FaultKind, MockConfig, MockServer};

mod common;
use common::{checkpoint_of, text, Env};

/// What only these tests do with an `Env`: agents in the background, commands that must not hang.
impl Env {
    fn spawn(&self, args: &[&str]) -> Running {
        Running(Some(self.cmd(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()))
    }

    /// Runs a command that must exit by itself within 20 s (it is killed otherwise, and `None`
    /// returned): a command that should have been refused must not hang the test.
    async fn run_bounded(&self, mut c: Command) -> Option<Output> {
        let mut child = Running(Some(c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()));
        let exited = wait_until(Duration::from_secs(20), || child.exited()).await;
        exited.then(|| child.stop())
    }
}

/// A child process that is killed if the test ends early (a failed assertion), so that no agent
/// outlives its test.
struct Running(Option<Child>);

impl Running {
    fn id(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    fn exited(&mut self) -> bool {
        self.0.as_mut().unwrap().try_wait().unwrap().is_some()
    }

    fn kill(&mut self) {
        let mut child = self.0.take().unwrap();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }

    /// SIGTERM, then the output (SIGKILL after 15 s).
    fn stop(&mut self) -> Output {
        let mut child = self.0.take().unwrap();
        if child.try_wait().unwrap().is_none() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn config(base_url: &str, entity_extra: &str) -> String {
    format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{base_url}\"\nbackoff_base = \"20ms\"\nbackoff_max = \"200ms\"\nrequests_per_second = 1000\n\n\
         [[connection.entity]]\nname = \"items\"\npage_size = 500\npoll_every = \"1h\"\n{entity_extra}\n"
    )
}

async fn mock(records: usize) -> MockServer {
    MockServer::start(MockConfig { entities: vec![EntitySpec { name: "items".into(), records }], ..Default::default() }).await.unwrap()
}

/// Polls `done` every 20 ms for at most `limit`; true when it held.
async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

fn recorded_pid(data: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(data.join("agent.lock")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("pid="))?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_agent_exits_2_naming_the_holder_and_a_killed_agents_lock_is_freed() {
    let mock = mock(300).await;
    let env = Env::new(&config(&mock.base_url(), ""));
    let db = env.data().join("syncmon.db");
    let mut first = env.spawn(&["run"]);
    assert!(wait_until(Duration::from_secs(20), || checkpoint_of(&db).is_some_and(|c| c > 0)).await, "the first agent must sync");
    let data = env.data().display().to_string();
    let expected = format!("another Syncmon agent (PID {} on host {}, since ", first.id(), host_name());
    let token = "a-token-of-at-least-16-chars";
    for args in [
        vec!["run"],
        vec!["serve", "--listen", "127.0.0.1:0", "--token-env", "STORAGE_TEST_TOKEN"],
        vec!["demo", "--mock-listen", "127.0.0.1:0", "--webhook-listen", "127.0.0.1:0", "--duration", "5"],
        vec!["sync"],
        vec!["resync", "items"],
    ] {
        let mut c = env.cmd(&args);
        c.env("STORAGE_TEST_TOKEN", token);
        let out = env.run_bounded(c).await.unwrap_or_else(|| panic!("`{}` beside a running agent did not exit", args[0]));
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "`{}` beside a running agent: {t}", args[0]);
        assert!(t.contains(&expected) && t.contains(&format!("is using {data}; stop it first, or use --data-dir")), "`{}`: {t}", args[0]);
    }
    assert!(!first.exited(), "the refused agents must not disturb the running one");

    // SIGKILL: no cleanup runs, the OS frees the lock; a new agent starts and holds it.
    first.kill();
    let mut second = env.spawn(&["run"]);
    let pid = second.id();
    assert!(wait_until(Duration::from_secs(20), || recorded_pid(&env.data()) == Some(pid)).await, "a new agent must start after the kill");
    let out = env.run_bounded(env.cmd(&["run"])).await.expect("a third agent must be refused");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&format!("PID {pid} on host")), "{}", text(&out));
    let out = second.stop();
    assert_eq!(out.status.code(), Some(0), "the second agent ran until stopped: {}", String::from_utf8_lossy(&out.stderr));
}

/// A busy sync: many small pages committed back to back. Read commands run beside it, every one
/// answers with data, and none marks the sync's run as interrupted (a writing open did).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_commands_answer_during_a_busy_sync() {
    let mock = mock(60_000).await;
    let env = Env::new(&config(&mock.base_url(), "").replace("page_size = 500", "page_size = 100"));
    // Slow-ish pages keep the sync going while the commands below run, on any machine.
    mock.inject(Fault { kind: FaultKind::Slow { millis: 15 }, entity: None, times: 0 });
    let db = env.data().join("syncmon.db");
    let mut sync = env.spawn(&["sync"]);
    assert!(wait_until(Duration::from_secs(20), || checkpoint_of(&db).is_some_and(|c| c > 0)).await, "the sync must start");
    let mut answered = 0;
    for round in 0..10 {
        if sync.exited() {
            break;
        }
        let out = env.run(&["status", "--json"]);
        assert_eq!(out.status.code(), Some(0), "status #{round} during the sync: {}", text(&out));
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(status[0]["replica_rows"].as_i64().unwrap() > 0, "{status}");
        let out = env.run(&["requests", "--json", "--limit", "2"]);
        assert_eq!(out.status.code(), Some(0), "requests #{round}: {}", text(&out));
        let out = env.run(&["export", "items"]);
        assert_eq!(out.status.code(), Some(0), "export #{round}: {}", text(&out));
        assert!(!out.stdout.is_empty());
        let out = env.run(&["failed", "list", "--json"]);
        assert_eq!(out.status.code(), Some(0), "failed list #{round}: {}", text(&out));
        answered += 1;
    }
    assert!(answered >= 3, "the sync must still run while the commands do ({answered} rounds)");
    let c = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let interrupted: i64 = c.query_row("SELECT count(*) FROM runs WHERE outcome = 'interrupted'", [], |r| r.get(0)).unwrap();
    drop(c);
    mock.clear_faults();
    let out = sync.stop();
    assert!(out.status.code().is_some(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(interrupted, 0, "a read command marked the running sync's run as interrupted");
}

/// Whether this test runs as root (containers): chmod then stops nobody, so the child runs as
/// `nobody` to meet a directory it really cannot write.
fn running_as_root(dir: &Path) -> bool {
    let probe = dir.join("uid-probe");
    std::fs::write(&probe, b"").unwrap();
    let root = std::fs::metadata(&probe).unwrap().uid() == 0;
    std::fs::remove_file(probe).unwrap();
    root
}

fn chmod_tree(dir: &Path, dir_mode: u32, file_mode: u32) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(file_mode)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_commands_work_on_a_read_only_copy() {
    let mock = mock(1500).await;
    let env = Env::new(&config(&mock.base_url(), ""));
    env.run_ok(&["sync"]);
    let copy = env.dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(env.data()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    let as_root = running_as_root(env.dir.path());
    chmod_tree(&copy, 0o555, 0o444);
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = |args: &[&str]| {
        let mut c = env.cmd_in(&copy, args);
        if as_root {
            c.uid(65534).gid(65534);
        }
        c.output().unwrap()
    };
    let out = run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "status on a read-only copy: {}", text(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status[0]["replica_rows"], 1500, "{status}");
    let out = run(&["export", "items"]);
    assert_eq!(out.status.code(), Some(0), "export of a read-only copy: {}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1500);
    let out = run(&["check"]);
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).trim().to_string()), (Some(0), "ok".to_string()), "{}", text(&out));
    // It really is read-only for that user: a writer is refused.
    let out = run(&["sync"]);
    assert_ne!(out.status.code(), Some(0), "the copy must not be writable for the test to mean anything: {}", text(&out));
    chmod_tree(&copy, 0o755, 0o644);
}

/// `status` hammered while a fresh agent creates its database: the agent is never disturbed and
/// every answer is data or "no replica yet".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_while_a_fresh_agent_creates_its_database_never_kills_it() {
    let mock = mock(200).await;
    let env = Env::new(&config(&mock.base_url(), ""));
    let mut no_replica = 0;
    for round in 0..3 {
        let data = env.dir.path().join(format!("data{round}"));
        let mut agent = Running(Some(env.cmd_in(&data, &["run"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()));
        let statuses: Vec<Child> = (0..10).map(|_| env.cmd_in(&data, &["status"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()).collect();
        for s in statuses {
            let out = s.wait_with_output().unwrap();
            let t = text(&out);
            if t.contains("no replica yet in") {
                no_replica += 1;
                assert_eq!(out.status.code(), Some(2), "{t}");
            } else {
                assert_eq!(out.status.code(), Some(0), "status beside a starting agent: {t}");
            }
        }
        let db = data.join("syncmon.db");
        assert!(wait_until(Duration::from_secs(20), || checkpoint_of(&db).is_some_and(|c| c > 0)).await, "round {round}: the agent must sync");
        let out = agent.stop();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "round {round}: the agent must run until stopped: {log}");
        assert!(!log.contains("migration failed") && !log.contains("ERROR"), "round {round}: {log}");
    }
    eprintln!("{no_replica} of 30 status calls came before the database existed");
}

fn schema_of(db: &Path) -> (i64, Vec<String>) {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    let mut st = c.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").unwrap();
    let sql = st.query_map([], |r| r.get(0)).unwrap().collect::<Result<Vec<String>, _>>().unwrap();
    (v, sql)
}

/// Read commands change nothing: the database file keeps its bytes and mtime, no migration runs
/// (a database one schema version behind is refused with what to do, not upgraded), and any WAL
/// file they leave holds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_commands_leave_the_database_untouched() {
    let mock = mock(700).await;
    let env = Env::new(&config(&mock.base_url(), ""));
    mock.inject(Fault { kind: FaultKind::MissingRowVersion { records: 2 }, entity: None, times: 1 });
    env.run_ok(&["sync"]);
    let db = env.data().join("syncmon.db");
    let wal = env.data().join("syncmon.db-wal");
    assert!(!wal.exists(), "the writer removes its WAL when it exits");
    let (bytes, mtime, schema) = (std::fs::read(&db).unwrap(), std::fs::metadata(&db).unwrap().modified().unwrap(), schema_of(&db));
    let out = env.run_ok(&["failed", "list", "--json"]);
    let id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()[0]["id"].to_string();
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["export", "items"],
        vec!["failed", "show", &id],
        vec!["requests"],
        vec!["activity", "--search", "items", "--since", "1h"],
        vec!["check"],
    ] {
        let out = env.run(&args);
        // `status` exits 3 here: the two failed items need reviewing, nothing is broken.
        let expected = if args[0] == "status" { 3 } else { 0 };
        assert_eq!(out.status.code(), Some(expected), "{args:?}: {}", text(&out));
    }
    assert!(std::fs::read(&db).unwrap() == bytes, "a read command changed the database's bytes");
    assert_eq!(std::fs::metadata(&db).unwrap().modified().unwrap(), mtime, "a read command touched the database");
    assert_eq!(schema_of(&db), schema);
    assert!(std::fs::metadata(&wal).map_or(0, |m| m.len()) == 0, "a read command wrote to the WAL");

    // One schema version behind: refused with what to do, and left as it was.
    let c = rusqlite::Connection::open(&db).unwrap();
    c.pragma_update(None, "user_version", schema.0 - 1).unwrap();
    drop(c);
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("run the agent once to upgrade the database"), "{}", text(&out));
    assert_eq!(schema_of(&db).0, schema.0 - 1, "status must not migrate");

    let empty = env.dir.path().join("empty");
    let out = env.cmd_in(&empty, &["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains(&format!("no replica yet in {}: run `syncmon sync` or `syncmon run` first", empty.display())), "{}", text(&out));
    assert!(!empty.exists(), "status must not create the data dir");
}

/// Overwrites three whole pages in the middle of the file with garbage: what a bad disk does.
fn damage(db: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let len = std::fs::metadata(db).unwrap().len();
    let page = 8192u64;
    let pages = len / page;
    assert!(pages > 20, "the database must have pages to damage ({pages})");
    let mut f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    for n in [pages / 3, pages / 2, 2 * pages / 3] {
        f.seek(SeekFrom::Start(n * page)).unwrap();
        f.write_all(&vec![0xA5; page as usize]).unwrap();
    }
    f.sync_all().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn check_finds_a_damaged_replica_and_the_agent_refuses_to_start_on_it() {
    let mock = mock(5000).await;
    let env = Env::new(&config(&mock.base_url(), ""));
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "no replica yet: {}", text(&out));
    env.run_ok(&["sync"]);
    let out = env.run(&["check"]);
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).trim().to_string()), (Some(0), "ok".to_string()), "{}", text(&out));

    let db = env.data().join("syncmon.db");
    assert_eq!(std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len()), 0, "the agent is stopped, its WAL written back");
    damage(&db);
    let out = env.run(&["check"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "check on a damaged replica: {t}");
    let dir = env.data().display().to_string();
    assert!(t.contains("is damaged") && t.contains(&format!("move {dir} aside and run `syncmon sync`")) && t.contains("restore a backup"), "{t}");
    let out = env.run(&["check", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert!(!report["problems"].as_array().unwrap().is_empty());

    for args in [vec!["run"], vec!["serve", "--listen", "127.0.0.1:0", "--token-env", "STORAGE_TEST_TOKEN"]] {
        let mut c = env.cmd(&args);
        c.env("STORAGE_TEST_TOKEN", "a-token-of-at-least-16-chars");
        let out = env.run_bounded(c).await;
        let out = out.unwrap_or_else(|| panic!("`{}` must refuse a damaged replica, not start", args[0]));
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "`{}`: {t}", args[0]);
        assert!(t.contains("is damaged") && t.contains("aside"), "`{}`: {t}", args[0]);
    }
}
