//! What the CLI prints beside its results: progress of a long sync on stderr (a line every 2 s
//! on a terminal, one final line always) and times in local 24-hour time with the offset, or in
//! UTC saying so (`--utc`).

use std::process::Command;
use syncmon_mock::{EntitySpec, MockConfig, MockServer};

mod common;
use common::{text, Env, BIN};

fn config(base: &str, rps: u32, page_size: u32) -> String {
    format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{base}\"\nrequests_per_second = {rps}\nbackoff_base = \"20ms\"\n\
         [[connection.entity]]\nname = \"items\"\npage_size = {page_size}\n"
    )
}

async fn mock(records: usize) -> MockServer {
    MockServer::start(MockConfig { entities: vec![EntitySpec { name: "items".into(), records }], ..Default::default() }).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_ends_with_a_progress_line_and_times_carry_their_offset() {
    let mock = mock(250).await;
    let env = Env::new(&config(&mock.base_url(), 1000, 100));
    let out = env.run_ok(&["sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().filter(|l| l.starts_with("sync: ")).collect::<Vec<_>>();
    assert_eq!(last.len(), 1, "not a terminal: only the final line: {stderr}");
    assert!(last[0].starts_with("sync: 250 records in ") && last[0].ends_with(" s"), "{}", last[0]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("src/items: caught up"), "stdout keeps the summary: {}", text(&out));

    // The request log's times: local with the offset (a POSIX TZ needs no zone database) …
    let out = env.cmd(&["requests", "--limit", "1"]).env("TZ", "IST-05:30").output().unwrap();
    let table = text(&out);
    assert!(out.status.success(), "{table}");
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(row.contains(" +05:30"), "local time with its offset: {table}");
    let stamp = row.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    assert!(stamp.len() == "2026-12-03 19:35:09 +05:30".len() && stamp.as_bytes()[13] == b':', "24-hour, seconds, offset: {stamp}");
    // … or UTC, saying so.
    let out = env.cmd(&["requests", "--limit", "1", "--utc"]).env("TZ", "IST-05:30").output().unwrap();
    let table = text(&out);
    assert!(table.lines().nth(1).is_some_and(|r| r.contains(" UTC ") && !r.contains("+05:30")), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_a_long_sync_prints_progress_every_two_seconds() {
    // 12 pages at 2 calls a second: about 5 s.
    let mock = mock(120).await;
    let env = Env::new(&config(&mock.base_url(), 2, 10));
    let cmd = format!("{BIN} --config {} --data-dir {} sync", env.config.display(), env.data().display());
    // `script` gives the command a terminal (a pty) and copies what it writes.
    let out =
        tokio::task::spawn_blocking(move || Command::new("timeout").args(["60", "script", "-qec", &cmd, "/dev/null"]).env_remove("RUST_LOG").output().unwrap())
            .await
            .unwrap();
    let all = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{all}{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = all.lines().filter(|l| l.starts_with("sync: ")).collect();
    assert!(lines.len() >= 2, "a line after 2 s and the final one: {all}");
    assert!(lines.last().unwrap().starts_with("sync: 120 records in "), "{all}");
    assert!(!lines[0].starts_with("sync: 120 records"), "the first came while it was still reading: {all}");
}
