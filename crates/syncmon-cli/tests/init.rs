//! `syncmon init`: a commented starter config from flags or from answers on a terminal, or for
//! the simulated source (`--demo`); it never overwrites a file, and what it writes is what
//! `check`, `sync` and `run` load: a sync with it catches up against the simulated source.

use std::process::Command;
use syncmon_mock::{EntitySpec, MockConfig, MockServer};

mod common;
use common::{text, BIN};

fn syncmon(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).current_dir(dir).env_remove("RUST_LOG").env_remove("SYNCMON_CONFIG").env_remove("SYNCMON_DATA_DIR").output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_a_config_that_syncs_and_never_overwrites() {
    let mock = MockServer::start(MockConfig {
        entities: vec![EntitySpec { name: "items".into(), records: 30 }, EntitySpec { name: "customers".into(), records: 20 }],
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // No terminal to ask on and no flags: refused, saying what to give.
    let out = syncmon(d, &["init", "--output", "a.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--base-url") && !d.join("a.toml").exists(), "{}", text(&out));

    // From flags.
    let base = mock.base_url();
    let out = syncmon(d, &["init", "--output", "a.toml", "--base-url", &base, "--connection", "shop", "--entity", "items", "--auth", "none"]);
    assert!(out.status.success(), "{}", text(&out));
    let written = std::fs::read_to_string(d.join("a.toml")).unwrap();
    assert!(written.contains("# Secrets never go in this file") && written.contains("id = \"shop\""), "commented: {written}");
    let out = syncmon(d, &["--config", "a.toml", "--data-dir", "data", "check"]);
    assert!(text(&out).contains("the config a.toml loads"), "{}", text(&out));
    let out = syncmon(d, &["--config", "a.toml", "--data-dir", "data", "sync"]);
    assert!(out.status.success() && text(&out).contains("shop/items: caught up"), "{}", text(&out));
    let out = syncmon(d, &["--config", "a.toml", "--data-dir", "data", "check"]);
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).trim()), (Some(0), "ok"), "{}", text(&out));

    // Never over an existing file.
    let out = syncmon(d, &["init", "--output", "a.toml", "--demo"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("never overwrites"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(d.join("a.toml")).unwrap(), written, "the file is unchanged");

    // --demo: the simulated source's entities.
    let out = syncmon(d, &["init", "--output", "demo.toml", "--demo"]);
    assert!(out.status.success(), "{}", text(&out));
    let demo = std::fs::read_to_string(d.join("demo.toml")).unwrap();
    assert!(demo.contains("http://127.0.0.1:8380") && demo.contains("name = \"salesorders\""), "{demo}");
    let out = syncmon(d, &["--config", "demo.toml", "--data-dir", "demo-data", "check"]);
    assert!(text(&out).contains("the config demo.toml loads"), "{}", text(&out));

    // On a terminal (`script` gives it one) it asks; the answers make the config.
    let cmd = format!("cd {} && {BIN} init --output asked.toml", d.display());
    let answers = format!("{base}\nstore\nitems, customers\nnone\n");
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new("timeout")
            .args(["60", "script", "-qec", &cmd, "/dev/null"])
            .env_remove("SYNCMON_CONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(answers.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && shown.contains("The API's base URL") && shown.contains("wrote asked.toml"), "{shown}");
    let out = syncmon(d, &["--config", "asked.toml", "--data-dir", "asked-data", "sync"]);
    let t = text(&out);
    assert!(out.status.success() && t.contains("store/items: caught up") && t.contains("store/customers: caught up"), "{t}");
}
