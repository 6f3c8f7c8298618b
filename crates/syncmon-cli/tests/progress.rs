//! What the CLI prints beside its results: progress of a long sync or resync on stderr (a bar
//! redrawn in place on a terminal, one final line always, no control character without a
//! terminal), what a resync may delete before it starts (asked on a terminal), and times in local
//! 24-hour time with the offset, or in UTC saying so (`--utc`).

use std::io::Write;
use std::process::{Command, Output, Stdio};
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
    assert_no_control_characters(&stderr);
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

/// Not a terminal: lines only, no carriage return or escape code (a log file or CI reads them).
fn assert_no_control_characters(stderr: &str) {
    let bad: Vec<char> = stderr.chars().filter(|c| c.is_control() && *c != '\n').collect();
    assert!(bad.is_empty(), "control characters {bad:?} in: {stderr}");
}

/// Runs `args` on a terminal (`script` gives it a pty and copies what it writes), typing `input`.
async fn on_a_terminal(env: &Env, args: &str, input: &'static str) -> Output {
    let cmd = format!("{BIN} --config {} --data-dir {} {args}", env.config.display(), env.data().display());
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("timeout")
            .args(["60", "script", "-qec", &cmd, "/dev/null"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// What a terminal showed, as the redraws left it: each `\r` or newline starts a new piece.
fn pieces(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout).split(['\r', '\n']).map(|p| p.trim_end().to_string()).filter(|p| !p.is_empty()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_a_long_sync_draws_a_bar_in_place() {
    // 12 pages at 2 calls a second: about 5 s.
    let mock = mock(120).await;
    let env = Env::new(&config(&mock.base_url(), 2, 10));
    let out = on_a_terminal(&env, "sync", "").await;
    let all = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{all}{}", String::from_utf8_lossy(&out.stderr));
    let pieces = pieces(&out);
    let bars: Vec<&String> = pieces.iter().filter(|p| p.starts_with("sync [")).collect();
    assert!(bars.len() >= 5, "the bar is redrawn while it reads: {all:?}");
    assert!(bars.iter().any(|b| b.contains(" records · ") && b.contains(" pages · ") && b.contains("/s · ")), "records, pages and the rate: {bars:?}");
    assert!(bars.iter().any(|b| !b.contains("120 records")), "drawn while it was still reading: {bars:?}");
    assert!(all.contains("\r"), "redrawn in place: {all:?}");
    let finals: Vec<&String> = pieces.iter().filter(|p| p.starts_with("sync: ")).collect();
    assert_eq!(finals.len(), 1, "{all:?}");
    assert!(finals[0].starts_with("sync: 120 records in "), "{all:?}");
    assert!(pieces.last().is_some_and(|p| p.starts_with("src/items: caught up")), "the summary follows the wiped bar: {all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_says_first_how_many_rows_it_may_delete_and_asks_on_a_terminal() {
    let mock = mock(60).await;
    let env = Env::new(&config(&mock.base_url(), 1000, 10));
    env.run_ok(&["sync"]);
    let calls = |env: &Env| {
        serde_json::from_slice::<serde_json::Value>(&env.run_ok(&["requests", "--json", "--limit", "1000"]).stdout).unwrap().as_array().unwrap().len()
    };
    let before = calls(&env);

    // On a terminal without --yes it asks; "no" starts nothing.
    let out = on_a_terminal(&env, "resync items", "n\n").await;
    let all = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("Resync src/items: reads every record again; up to 60 of the 60 replica rows may be deleted (those not seen again; above the deletion guard's 50 % it stops and asks). Continue? [y/N]"),
        "{all}"
    );
    assert!(all.contains("resync not started"), "{all}");
    assert_eq!(calls(&env), before, "nothing was read: {all}");

    // "yes" runs it, with the bar of rows read out of the 60 expected. Slow pages, to see it.
    std::fs::write(&env.config, config(&mock.base_url(), 4, 10)).unwrap();
    let out = on_a_terminal(&env, "resync items", "y\n").await;
    let all = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{all}");
    let pieces = pieces(&out);
    assert!(pieces.iter().any(|p| p.starts_with("resync [") && p.contains("% ") && p.contains(" of 60")), "the bar of seen of expected: {pieces:?}");
    assert!(pieces.iter().any(|p| p.starts_with("resync: 60 records in ") && p.contains("; src/items 60 of 60 read, ")), "the final line: {pieces:?}");
    assert!(pieces.iter().any(|p| p.starts_with("src/items: caught up") && p.contains(", 0 deleted")), "{pieces:?}");

    // Without a terminal it does not ask (a script keeps today's behaviour: the guard decides),
    // but it says the same numbers, in plain lines.
    let out = env.run_ok(&["resync", "items"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().next().is_some_and(|l| l.starts_with("Resync src/items: reads every record again; up to 60 of the 60 replica rows")), "{stderr}");
    assert!(!stderr.contains("Continue?"), "{stderr}");
    assert_no_control_characters(&stderr);
    let out = env.run_ok(&["resync", "items", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("(those not seen again; --yes: even more than the deletion guard's 50 %)"), "{stderr}");
}

/// Long listings read by `head` end quietly when the pipe closes, as `cat` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_end_quietly_on_a_closed_pipe() {
    let mock = mock(3000).await;
    let env = Env::new(&config(&mock.base_url(), 1000, 500));
    // Two failed items, so that the failed listings have rows to write.
    mock.inject(syncmon_mock::Fault { kind: syncmon_mock::FaultKind::MissingRowVersion { records: 2 }, entity: None, times: 1 });
    env.run_ok(&["sync"]);
    let record = mock.dataset("items")[7].id.clone();
    for args in [
        vec!["export", "items"],
        vec!["requests", "--json", "--limit", "1000"],
        vec!["failed", "list", "--json"],
        vec!["failed", "export"],
        vec!["find", record.as_str(), "--json"],
        vec!["status"],
        vec!["targets", "--json"],
    ] {
        assert!(!env.run(&args).stdout.is_empty(), "syncmon {} writes a listing", args.join(" "));
        let mut child = env.cmd(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take()); // the reader goes away before the first line
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.trim().is_empty(), "syncmon {}: {stderr}", args.join(" "));
    }
}
