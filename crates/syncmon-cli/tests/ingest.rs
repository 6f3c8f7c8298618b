//! Pushed records and `syncmon run` as users run it: a batch answered 202 survives a SIGKILL
//! before it is applied, and `syncmon ingest show` reports it.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_syncmon");
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
}

impl Env {
    /// A push-only entity `pushed` on connection `src` (never polled, so no source is needed).
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.path().join("syncmon.toml");
        let text = format!(
            "[webhooks]\nlisten = \"127.0.0.1:{port}\"\n\n[[connection]]\nid = \"src\"\nbase_url = \"http://127.0.0.1:9\"\n\
             webhook_secret_env = \"SYNCMON_TEST_INGEST_SECRET\"\n\n[[connection.entity]]\nname = \"pushed\"\npoll_every = \"never\"\n"
        );
        std::fs::write(&config, text).unwrap();
        Env { dir, config, port }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config").arg(&self.config).arg("--data-dir").arg(self.data()).args(args);
        c.env_remove("RUST_LOG").env("SYNCMON_TEST_INGEST_SECRET", SECRET);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `syncmon run`, once its receiver accepts connections (bounded wait).
    fn start_agent(&self) -> Child {
        let mut child = self.cmd(&["run"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "the agent exited at start");
            assert!(started.elapsed() < Duration::from_secs(20), "the agent's receiver did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    /// A signed `POST /ingest/src/pushed` over plain HTTP/1.1: (status, body).
    fn push(&self, msg_id: &str, body: &str) -> (u16, serde_json::Value) {
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let sig = syncmon_core::webhook::sign_standard(SECRET, msg_id, ts, body.as_bytes());
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let request = format!(
            "POST /ingest/src/pushed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nwebhook-id: {msg_id}\r\n\
             webhook-timestamp: {ts}\r\nwebhook-signature: {sig}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let json = answer.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok()).unwrap_or_default();
        (status, json)
    }

    fn show(&self, id: &str) -> serde_json::Value {
        let out = self.run(&["ingest", "show", id, "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn set_paused(&self, paused: bool) {
        let config = syncmon_core::Config::load(&self.config).unwrap();
        syncmon_core::Syncmon::open(config, &self.data()).unwrap().set_paused("pushed", paused).unwrap();
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn a_sigkill_between_the_202_and_the_apply_loses_nothing() {
    let env = Env::new();
    // Paused: the agent takes the batch but holds it queued, so the kill lands between the 202
    // and the apply every time.
    env.set_paused(true);
    let mut agent = env.start_agent();
    let body = r#"[{"id":"a","rowVersion":"1","name":"one"},{"id":"b","rowVersion":"2","name":"two"},{"id":"c","rowVersion":"3","name":"three"}]"#;
    let (status, answer) = env.push("msg_kill", body);
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().expect("the 202 names the batch").to_string();
    assert_eq!(env.show(&id)["state"], "queued");
    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();

    env.set_paused(false);
    let mut agent = env.start_agent();
    let started = Instant::now();
    let batch = loop {
        let b = env.show(&id);
        if b["state"] != "queued" {
            break b;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the restarted agent did not apply the queued batch: {b}");
        std::thread::sleep(Duration::from_millis(50));
    };
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert_eq!(batch["state"], "applied", "{batch}");
    assert_eq!((batch["records"].as_i64(), batch["applied"].as_i64(), batch["failed"].as_i64()), (Some(3), Some(3), Some(0)), "{batch}");
    let out = env.run(&["export", "pushed"]);
    assert!(out.status.success(), "{}", text(&out));
    let ids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");

    // The human form, and an id nobody was given.
    let out = env.run(&["ingest", "show", &id]);
    assert!(out.status.success() && text(&out).contains("applied") && text(&out).contains("3 written"), "{}", text(&out));
    let out = env.run(&["ingest", "show", "ing_nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no pushed batch with id `ing_nope`"), "{}", text(&out));
}
