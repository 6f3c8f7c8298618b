//! Config rules as a user meets them with the real `syncmon` binary: risky settings are warned
//! about by `status` (before its table) and in the agent's log at start; names that differ only
//! in case are refused with exit 2 naming both lines; so is a schema file that cannot be read.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use syncmon_mock::{EntitySpec, MockConfig, MockServer};

const BIN: &str = env!("CARGO_BIN_EXE_syncmon");

/// A loopback source (no warning) and a plain-HTTP target on another host that no entity forwards
/// to, so nothing ever calls it.
fn config(base_url: &str) -> String {
    format!(
        "[[target]]\nid = \"erp\"\nbase_url = \"http://erp.example.com/api\"\n\n\
         [[connection]]\nid = \"src\"\nbase_url = \"{base_url}\"\nrequests_per_second = 1000\n\
         [[connection.entity]]\nname = \"items\"\npoll_every = \"1h\"\n"
    )
}

/// A fresh folder holding `syncmon.toml` with `text` (the data folder is its `data`).
fn with_config(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("syncmon.toml"), text).unwrap();
    dir
}

/// `syncmon --config <dir>/syncmon.toml --data-dir <dir>/data <args>`, run to its end.
fn syncmon(dir: &tempfile::TempDir, args: &[&str]) -> std::process::Output {
    let (cfg, data) = (dir.path().join("syncmon.toml"), dir.path().join("data"));
    Command::new(BIN).arg("--config").arg(cfg).arg("--data-dir").arg(data).args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_the_agent_warn_about_plain_http_to_another_machine() {
    let mock = MockServer::start(MockConfig { entities: vec![EntitySpec { name: "items".into(), records: 20 }], ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("syncmon.toml");
    std::fs::write(&cfg, config(&mock.base_url())).unwrap();
    let data = dir.path().join("data");
    let cmd = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("--config").arg(&cfg).arg("--data-dir").arg(&data).args(args).env_remove("RUST_LOG");
        c
    };

    // Read commands never create the replica: one sync first.
    let out = cmd(&["sync"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cmd(&["status"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let first = stdout.lines().next().unwrap_or("");
    assert!(first.starts_with("warning: targets[0].base_url uses plain http:// to erp.example.com"), "the warning comes first:\n{stdout}");
    assert!(first.ends_with("(line 3)"), "the warning names the line of its key:\n{stdout}");
    assert!(stdout.contains("src/items"), "then the table:\n{stdout}");
    assert_eq!(stdout.matches("warning:").count(), 1, "the loopback source is no warning:\n{stdout}");

    // `--json` keeps stdout the entity list; the warning goes to stderr.
    let out = cmd(&["status", "--json"]).output().unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parsed[0]["entity"], "items");
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: targets[0].base_url"));

    // The agent logs it when it starts.
    let mut agent = cmd(&["run"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = agent.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains("plain http:// to erp.example.com") => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let _ = Command::new("kill").args(["-TERM", &agent.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            agent.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(found, "the agent's log never warned; it said:\n{}", seen.join("\n"));
}

#[test]
fn names_that_differ_only_in_case_exit_2_naming_both_lines() {
    let dir = with_config(
        "[[connection]]\nid = \"src\"\nbase_url = \"http://127.0.0.1:9\"\n[[connection.entity]]\nname = \"Items\"\n\
         [[connection.entity]]\nname = \"items\"\n",
    );
    let out = syncmon(&dir, &["status"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("entity \"items\" (line 7) differs from \"Items\" (line 5) only in case"), "{err}");
    assert!(!dir.path().join("data").join("syncmon.db").exists(), "nothing is created for a refused config");
}

/// `check` loads the config the way `run` does: a schema file that is missing, not JSON or not a
/// JSON Schema is refused with exit 2, naming the key and its line; a good one passes the config.
#[test]
fn check_refuses_a_bad_schema_file_naming_the_key_and_line() {
    let dir =
        with_config("[[connection]]\nid = \"src\"\nbase_url = \"http://127.0.0.1:9\"\n[[connection.entity]]\nname = \"items\"\nschema = \"items.json\"\n");
    let check = || syncmon(&dir, &["check", "--json"]);
    let schema = dir.path().join("items.json");
    for (content, says) in [(None, "cannot read the schema file"), (Some("{ not json"), "not JSON"), (Some(r#"{"type": "no-such-type"}"#), "JSON Schema")] {
        match content {
            Some(c) => std::fs::write(&schema, c).unwrap(),
            None => {
                let _ = std::fs::remove_file(&schema);
            }
        }
        let out = check();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{content:?}: {err}");
        assert!(err.contains("connections[0].entities[0].schema (line 6)"), "{content:?}: {err}");
        assert!(err.contains(says), "{content:?} must say `{says}`: {err}");
    }
    // A valid schema: the config passes, and the replica (none yet) is what check reports on.
    std::fs::write(&schema, r#"{"type": "object", "required": ["id"]}"#).unwrap();
    let out = check();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("schema"), "a valid schema is not a problem: {err}");
    assert!(err.contains("no replica"), "{err}");
}

#[test]
fn a_schema_file_that_cannot_be_read_exits_2_naming_the_key_and_the_path() {
    let dir = with_config(
        "[[connection]]\nid = \"src\"\nbase_url = \"http://127.0.0.1:9\"\n[[connection.entity]]\nname = \"items\"\nschema = \"schemas/items.json\"\n",
    );
    let schema = dir.path().join("schemas").join("items.json");
    // `status` loads the config as `run` does (`run` is not started here: had it accepted the
    // config, it would not end by itself).
    let out = syncmon(&dir, &["status"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connections[0].entities[0].schema (line 6)"), "{err}");
    assert!(err.contains(&format!("cannot read the schema file {}", schema.display())), "the path, relative to the config file: {err}");
    assert!(!dir.path().join("data").join("syncmon.db").exists(), "nothing is created for a refused config");
}
