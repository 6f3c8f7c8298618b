//! The agent's log file: `syncmon run` writes `<data dir>/logs/agent.log` (no colour codes),
//! `--log-file` puts any command's log elsewhere, and the diagnostics bundle holds the recent
//! lines.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};
use syncmon_mock::{EntitySpec, MockConfig, MockServer};

mod common;
use common::{text, Env};

fn config(base: &str) -> String {
    format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{base}\"\nrequests_per_second = 1000\nbackoff_base = \"20ms\"\n\
         [[connection.entity]]\nname = \"items\"\npage_size = 100\npoll_every = \"1h\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_writes_a_log_file_that_the_bundle_holds() {
    let mock = MockServer::start(MockConfig { entities: vec![EntitySpec { name: "items".into(), records: 150 }], ..Default::default() }).await.unwrap();
    let env = Env::new(&config(&mock.base_url()));
    let log = env.data().join("logs").join("agent.log");

    let mut agent = env.cmd(&["run"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    // The first poll's cycle ends with a summary line naming the entity.
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("agent started") && t.contains("src/items")) {
        assert!(Instant::now() < deadline, "no agent.log with the first cycle after 30 s: {:?}", std::fs::read_to_string(&log));
        if agent.try_wait().unwrap().is_some() {
            let mut err = String::new();
            agent.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("the agent exited early: {err}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::process::Command::new("kill").args(["-TERM", &agent.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the agent did not stop within 30 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut stderr = String::new();
    agent.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let file = std::fs::read_to_string(&log).unwrap();
    assert!(!file.contains('\u{1b}'), "no colour codes in the file: {file}");
    assert!(file.contains("stopping"), "the file has what stderr had, the shutdown too: {file}");
    assert!(stderr.contains("agent started"), "stderr keeps the log as well: {stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o077, 0, "the log file is private");
    }

    // Another command's log goes where --log-file says.
    let other = env.dir.path().join("sync.log");
    let out = env.run(&["sync", "--log-file", other.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::metadata(&other).is_ok(), "--log-file makes the file");

    // The bundle has the agent's recent lines.
    let zip_path = env.dir.path().join("bundle.zip");
    let out = env.run(&["diagnostics", "--output", zip_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut lines = String::new();
    archive.by_name("log.txt").expect("log.txt in the bundle").read_to_string(&mut lines).unwrap();
    assert!(lines.contains("==> agent.log <==") && lines.contains("agent started"), "{lines}");
}
