//! The `syncmon` binary as users run it: exit codes, listings, the crash test (SIGKILL at random
//! moments, then convergence), and credentials in a real keyring on a private D-Bus.

use rand::Rng;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use syncmon_mock::{EntitySpec, MockAuth, MockConfig, MockServer};

mod common;
use common::{checkpoint_of, text, Env, BIN};

fn conn(base_url: &str, extra: &str, entity_extra: &str) -> String {
    format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{base_url}\"\nbackoff_base = \"20ms\"\nbackoff_max = \"200ms\"\nrequests_per_second = 1000\n{extra}\n\
         [[connection.entity]]\nname = \"items\"\npage_size = 500\n{entity_extra}\n"
    )
}

async fn mock(records: usize, auth: MockAuth) -> MockServer {
    MockServer::start(MockConfig { entities: vec![EntitySpec { name: "items".into(), records }], auth, ..Default::default() }).await.unwrap()
}

/// Exports the replica with the binary and compares it with the source, id by id.
fn assert_replica_equals_source(env: &Env, mock: &MockServer) {
    let out = env.run(&["export", "items"]);
    assert!(out.status.success(), "{}", text(&out));
    let mut replica = std::collections::BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        assert!(replica.insert(id.clone(), v["rowVersion"].as_str().unwrap().to_string()).is_none(), "{id} exported twice");
    }
    let source: std::collections::BTreeMap<_, _> = mock.dataset("items").into_iter().map(|r| (r.id, r.row_version)).collect();
    let lost = source.iter().filter(|(id, v)| replica.get(*id) != Some(v)).count();
    let extra = replica.keys().filter(|id| !source.contains_key(*id)).count();
    assert_eq!((lost, extra), (0, 0), "replica vs source: {lost} lost or stale, {extra} extra (of {})", source.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_config_exits_2_naming_the_line() {
    let env = Env::new("[[connection]]\nid = \"a\"\nbase_url = \"http://127.0.0.1:1\"\npoll_evry = \"5m\"\n");
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(t.contains("syncmon.toml") && t.contains("line 4") && t.contains("poll_evry"), "{t}");

    let env = Env::new("[[connection]]\nid = \"a\"\nbase_url = \"http://127.0.0.1:1\"\napi_key = \"hunter2\"\n");
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out).contains("hunter2"), "the error never echoes the secret");

    let missing = Env::new("");
    let out = Command::new(BIN).arg("--config").arg(missing.dir.path().join("nope.toml")).arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("nope.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_status_export_and_failed_items_from_the_command_line() {
    let mock = mock(1200, MockAuth::None).await;
    let env = Env::new(&conn(&mock.base_url(), "", ""));
    mock.inject(syncmon_mock::Fault { kind: syncmon_mock::FaultKind::MissingRowVersion { records: 2 }, entity: None, times: 1 });
    let out = env.run_ok(&["sync"]);
    assert!(text(&out).contains("src/items: caught up"), "{}", text(&out));

    let out = env.run(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status[0]["health"], "healthy");
    assert_eq!(status[0]["replica_rows"], 1198);
    assert_eq!(status[0]["pending_failed"], 2);

    let out = env.run(&["failed", "list", "--json"]);
    let items: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 2);
    assert!(items[0]["tracking_id"].is_string());
    let id = items[0]["id"].to_string();
    let out = env.run(&["failed", "show", &id]);
    assert!(text(&out).contains("Trackingid") && text(&out).contains("missing_row_version"), "{}", text(&out));

    env.run_ok(&["failed", "replay", "--all"]);
    let out = env.run(&["failed", "list"]);
    assert!(text(&out).contains("Everything is in sync"), "{}", text(&out));
    assert_replica_equals_source(&env, &mock);

    let out = env.run(&["requests", "--json", "--limit", "3"]);
    let reqs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(reqs[0]["tracking_id"].is_string());

    // A failing source: exit 1 and the reason on the status row.
    mock.inject(syncmon_mock::Fault { kind: syncmon_mock::FaultKind::Status(403), entity: None, times: 0 });
    let out = env.run(&["sync", "--entity", "src/items"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = env.run(&["status"]);
    let t = text(&out);
    assert!(t.contains("failing") && t.contains("HTTP 403") && t.contains("Trackingid"), "{t}");
    assert_eq!(out.status.code(), Some(1), "status exits 1 while an entity is failing: {t}");
    let out = env.run(&["sync", "--entity", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_retry_after_shows_in_status_as_waiting_until_a_local_time() {
    let mock = mock(10, MockAuth::None).await;
    let env = Env::new(&conn(&mock.base_url(), "", ""));
    mock.inject(syncmon_mock::Fault { kind: syncmon_mock::FaultKind::RateLimit { retry_after_secs: 2 * 3600 }, entity: None, times: 1 });
    let out = env.run(&["sync"]);
    assert_eq!(out.status.code(), Some(1), "not caught up: {}", text(&out));
    assert!(text(&out).contains("src/items: waiting for the source") && text(&out).contains("Retry-After"), "{}", text(&out));
    assert_eq!(mock.requests().len(), 1, "one call, not a retry loop");

    let out = env.run(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status[0]["health"], "waiting");
    let until = status[0]["next_attempt_at"].as_i64().expect("until when");
    // The machine's zone, here a fixed UTC+05:30 (a POSIX TZ needs no zone database).
    let local = |ms: i64| {
        let t = std::time::UNIX_EPOCH + Duration::from_secs((ms / 1000 + 5 * 3600 + 1800) as u64);
        humantime::format_rfc3339_seconds(t).to_string()
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let (at, today) = (local(until), local(now));
    let expected = if at[..10] == today[..10] { at[11..16].to_string() } else { format!("{} {}", &at[..10], &at[11..16]) };
    let out = env.cmd(&["status"]).env("TZ", "IST-05:30").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "waiting needs attention, nothing is broken: {}", text(&out));
    let table = text(&out);
    assert!(table.contains(&format!("waiting for the source until {expected}: rate limited by the source")), "{expected} in:\n{table}");
    assert!(!table.contains("next attempt"), "said once: {table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_exits_0_in_sync_3_while_retrying_and_1_past_the_retry_budget_with_the_banner_words() {
    let mock = mock(10, MockAuth::None).await;
    let env = Env::new(&conn(&mock.base_url(), "max_retries = 0\nbreaker_threshold = 2\nbreaker_cooldown = \"1h\"", ""));
    env.run_ok(&["sync"]);
    let out = env.run(&["status"]);
    let last = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or_default().to_string();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(last(&out), "Everything is in sync — 1 entity up to date");

    // One failed cycle on a transient 503: inside the budget of two, it retries by itself.
    mock.inject(syncmon_mock::Fault { kind: syncmon_mock::FaultKind::Status(503), entity: None, times: 0 });
    assert_eq!(env.run(&["sync"]).status.code(), Some(1));
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(3), "retrying needs attention, nothing is broken yet: {}", text(&out));
    let line = last(&out);
    assert!(line.starts_with("Retrying: 1 entity — src/items · a call failed and is tried again by itself: next attempt "), "{line}");
    assert!(line.ends_with(" min)") || line.ends_with(" s)"), "when, relative: {line}");
    assert!(!text(&out).contains("failing"), "not called failing: {}", text(&out));
    // `--json` keeps stdout the list of entities; the exit code is the same.
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status[0]["health"], "retrying");

    // The second failure spends the budget: failing, and that is exit 1.
    assert_eq!(env.run(&["sync"]).status.code(), Some(1));
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(1), "past the budget: {}", text(&out));
    assert!(text(&out).contains("failing") && text(&out).contains("HTTP 503"), "{}", text(&out));
    assert_eq!(last(&out), "1 entity needs attention — src/items");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_agent_at_random_moments_never_loses_or_duplicates_a_change() {
    let mock = mock(60_000, MockAuth::None).await;
    let env = Env::new(&conn(&mock.base_url(), "", ""));
    let mut rng = rand::thread_rng();
    let mut killed = 0;
    for round in 0..12 {
        let args: &[&str] = if round % 4 == 3 { &["resync", "items"] } else { &["sync"] };
        let mut child = env.cmd(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(30..700))).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
        // The source moves on between runs: updates and inserts.
        mock.mutate("items", 200);
        mock.insert("items", 50);
    }
    assert!(killed >= 6, "most runs must be killed mid-sync to test anything ({killed} of 12)");
    env.run_ok(&["sync"]);
    env.run_ok(&["sync"]);
    assert_replica_equals_source(&env, &mock);
    let db = rusqlite_check(&env.data().join("syncmon.db"));
    assert_eq!(db, "ok");
}

/// Forwarding under the same abuse: the agent killed at random moments while it syncs and
/// delivers to a target; in the end the target holds every record at the source's version. The
/// target's rate limit (1,000 calls/s) keeps the first runs busy delivering on any machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_agent_while_it_forwards_never_loses_a_change_for_the_target() {
    let mock = mock(4_000, MockAuth::None).await;
    let target = format!(
        "\n[[target]]\nid = \"dst\"\nbase_url = \"{}/target\"\nbackoff_base = \"20ms\"\nbackoff_max = \"200ms\"\n\
         max_concurrency = 2\nrequests_per_second = 1000\n",
        mock.base_url()
    );
    let env = Env::new(&(conn(&mock.base_url(), "", "forward_to = \"dst\"") + &target));
    let mut rng = rand::thread_rng();
    let mut killed_mid_delivery = 0;
    for _ in 0..10 {
        let before = mock.target_dataset("items").len();
        let mut child = env.cmd(&["sync"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..900))).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            if mock.target_dataset("items").len() > before {
                killed_mid_delivery += 1;
            }
        }
        child.wait().unwrap();
        mock.mutate("items", 100);
        mock.insert("items", 20);
    }
    eprintln!("killed while delivering: {killed_mid_delivery} of 10 runs");
    assert!(killed_mid_delivery >= 3, "runs must be killed while delivering to test anything ({killed_mid_delivery} of 10)");
    // Bounded: the outbox drains within a few more runs.
    for _ in 0..5 {
        env.run_ok(&["sync"]);
        let status: serde_json::Value = serde_json::from_slice(&env.run(&["status", "--json"]).stdout).unwrap();
        if status[0]["forward_pending"] == 0 {
            break;
        }
    }
    let at_target: std::collections::BTreeMap<_, _> = mock.target_dataset("items").into_iter().map(|r| (r.id, r.row_version)).collect();
    let source: std::collections::BTreeMap<_, _> = mock.dataset("items").into_iter().map(|r| (r.id, r.row_version)).collect();
    let stale = source.iter().filter(|(id, v)| at_target.get(*id) != Some(v)).count();
    let extra = at_target.keys().filter(|id| !source.contains_key(*id)).count();
    assert_eq!((stale, extra), (0, 0), "target vs source: {stale} missing or stale, {extra} extra (of {})", source.len());
    assert_replica_equals_source(&env, &mock);
}

fn rusqlite_check(path: &Path) -> String {
    let db = rusqlite::Connection::open(path).unwrap();
    db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

/// The keyring path against a real Secret Service (gnome-keyring on a private D-Bus session).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creds_set_keeps_the_secret_in_the_os_keyring_and_sync_uses_it() {
    let secret = "k3y-in-the-keyring";
    let mock = mock(300, MockAuth::ApiKey { header: "x-np-api-key".into(), key: secret.into() }).await;
    let env = Env::new(&conn(&mock.base_url(), "auth = \"api_key\"", ""));
    let script = format!(
        r#"set -e
S="{BIN} --config {cfg} --data-dir {data}"
printf '{secret}\n' | $S creds set src
$S sync
$S creds delete src
if $S sync 2>err.txt; then echo "sync without the secret must fail"; exit 1; fi
grep -q "syncmon creds set src" err.txt || grep -q "creds set src" err.txt || {{ $S status; exit 1; }}
"#,
        cfg = env.config.display(),
        data = env.data().display(),
    );
    let dir = env.dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || common::keyring_session(&dir, &script)).await.unwrap();
    assert!(out.status.success(), "keyring round trip failed:\n{}", text(&out));
    assert_replica_equals_source(&env, &mock);
    // The secret is in no file Syncmon wrote.
    let out = Command::new("grep").args(["-rl", secret]).arg(env.config.parent().unwrap().join("data")).arg(&env.config).output().unwrap();
    assert!(out.stdout.is_empty(), "secret found on disk: {}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_environment_variable_path_needs_no_keyring() {
    let mock = mock(100, MockAuth::ApiKey { header: "x-np-api-key".into(), key: "env-secret".into() }).await;
    let env = Env::new(&conn(&mock.base_url(), "auth = \"api_key\"\nsecret_env = \"SRC_KEY\"", ""));
    let mut c = env.cmd(&["sync"]);
    c.env("SRC_KEY", "env-secret").env_remove("DBUS_SESSION_BUS_ADDRESS");
    let out = tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut c = env.cmd(&["sync"]);
    c.env_remove("SRC_KEY");
    let out = tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("SRC_KEY"), "{}", text(&out));
}

/// SIGTERM (and SIGINT) stop the agent cleanly mid-sync: it exits 0 promptly, and the replica
/// holds exactly the source's records up to the checkpoint — whole pages, never half of one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_mid_sync_stops_cleanly_on_a_page_boundary() {
    let mock = mock(150_000, MockAuth::None).await;
    let last = mock.dataset("items").iter().map(|r| r.row_version.parse::<u128>().unwrap()).max().unwrap();
    let env = Env::new(&conn(&mock.base_url(), "", "poll_every = \"1h\""));
    let db = env.data().join("syncmon.db");
    for signal in ["TERM", "INT"] {
        // The second round starts from where the first one stopped: wait for new pages.
        let before = checkpoint_of(&db).unwrap_or(0);
        let child = env.cmd(&["run"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        // Wait until some pages are in, bounded.
        let mut waited = 0;
        while waited < 200 {
            tokio::time::sleep(Duration::from_millis(25)).await;
            waited += 1;
            if checkpoint_of(&db).is_some_and(|c| c > before) {
                break;
            }
        }
        let status = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap();
        assert!(status.success());
        let started = std::time::Instant::now();
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(10), "SIG{signal} must stop the agent promptly");
        assert_eq!(out.status.code(), Some(0), "SIG{signal}: {}", String::from_utf8_lossy(&out.stderr));
        let checkpoint = checkpoint_of(&db).unwrap();
        if signal == "TERM" {
            assert!(checkpoint < last, "the first signal must land mid-sync to test anything");
        }
        let out = env.run(&["export", "items"]);
        let replica: std::collections::BTreeSet<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
            .collect();
        let expected: std::collections::BTreeSet<String> =
            mock.dataset("items").into_iter().filter(|r| r.row_version.parse::<u128>().unwrap() <= checkpoint).map(|r| r.id).collect();
        assert_eq!(replica.len(), expected.len(), "SIG{signal}: rows up to checkpoint {checkpoint}");
        assert!(replica == expected, "SIG{signal}: the replica must be exactly the source up to the checkpoint");
    }
}

/// A support engineer's ticket quotes a Trackingid: `requests --tracking-id` and `find` bring up
/// the call (with the source's own error code and message), the run and the failed items; a
/// record id finds its replica row; an unknown id exits 1 saying where it looked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn find_brings_up_everything_a_trackingid_or_record_id_carries() {
    let mock = mock(300, MockAuth::None).await;
    let env = Env::new(&conn(&mock.base_url(), "", ""));
    env.run_ok(&["sync"]);
    mock.inject(syncmon_mock::Fault { kind: syncmon_mock::FaultKind::Status(403), entity: None, times: 0 });
    let out = env.run(&["sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let out = env.run_ok(&["requests", "--failed", "--json"]);
    let failed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let call = &failed[0];
    assert_eq!(call["status"], 403, "{call}");
    let error = call["error"].as_str().unwrap_or_default();
    assert!(error.contains("forbidden") && error.contains("may not read this resource"), "the source's own code and message: {call}");
    let tid = call["tracking_id"].as_str().expect("the refusal's Trackingid").to_string();

    let out = env.run_ok(&["requests", "--tracking-id", &tid, "--json"]);
    let only: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(only.as_array().unwrap().len(), 1, "one call carried {tid}: {only}");
    assert_eq!(only[0]["id"], call["id"]);

    let out = env.run_ok(&["find", &tid, "--json"]);
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["requests"][0]["tracking_id"], tid.as_str(), "{found}");
    assert_eq!(found["runs"][0]["outcome"], "failed", "the run that failed with it: {found}");
    assert_eq!(found["runs"][0]["tracking_id"], tid.as_str());
    let out = env.run_ok(&["find", &tid]);
    let t = text(&out);
    assert!(t.contains("1 call with Trackingid") && t.contains("1 run") && t.contains("forbidden"), "{t}");

    let record = mock.dataset("items")[7].id.clone();
    let out = env.run_ok(&["find", &record, "--json"]);
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["replica"][0]["entity"], "src/items", "{found}");
    assert_eq!(found["replica"][0]["id"], record.as_str());

    let out = env.run(&["find", "no-such-thing"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("nothing carries `no-such-thing`"), "{}", text(&out));

    // A listing read by `head` ends quietly when the pipe closes.
    let mut child = env.cmd(&["requests", "--json", "--limit", "1000"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take()); // the reader goes away before the first line
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Broken pipe") && !stderr.contains("panicked"), "{stderr}");
}

/// `failed list` says when it cut the list and `--all` reads every item; `failed discard --all`
/// asks first, and where there is no terminal to ask on it refuses unless `--yes`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_list_says_when_it_cuts_and_bulk_discard_asks_first() {
    let mock = mock(300, MockAuth::None).await;
    let env = Env::new(&conn(&mock.base_url(), "", ""));
    mock.inject(syncmon_mock::Fault { kind: syncmon_mock::FaultKind::MissingRowVersion { records: 5 }, entity: None, times: 1 });
    env.run_ok(&["sync"]);

    let out = env.run_ok(&["failed", "list", "--limit", "2"]);
    assert!(text(&out).contains("showing the newest 2 of 5 items") && text(&out).contains("--all"), "{}", text(&out));
    let out = env.run_ok(&["failed", "list", "--limit", "2", "--json"]);
    let two: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout stays one JSON array");
    assert_eq!(two.as_array().unwrap().len(), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("showing the newest 2 of 5"), "the note goes to stderr with --json");
    let out = env.run_ok(&["failed", "list", "--limit", "5"]);
    assert!(!text(&out).contains("showing the newest"), "nothing cut: {}", text(&out));
    let out = env.run_ok(&["failed", "list", "--all", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 5, "{all}");
    assert!(env.run_ok(&["failed", "list", "--all"]).stdout.ends_with(b"(5 items)\n"));

    let out = env.cmd(&["failed", "discard", "--all"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("discard 5 pending failed items") && text(&out).contains("--yes"), "{}", text(&out));
    let still: serde_json::Value = serde_json::from_slice(&env.run_ok(&["failed", "list", "--json"]).stdout).unwrap();
    assert_eq!(still.as_array().unwrap().len(), 5, "nothing discarded without confirmation");
    let out = env.run_ok(&["failed", "discard", "--all", "--yes"]);
    assert!(text(&out).contains("discarded 5 items"), "{}", text(&out));
}

/// `syncmon verify` reads the whole entity from the source without writing and names what the
/// replica lacks, holds at another version, or holds that the source no longer has.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_names_missing_stale_and_extra_ids_and_writes_nothing() {
    let mock = mock(700, MockAuth::None).await;
    let env = Env::new(&conn(&mock.base_url(), "", ""));
    env.run_ok(&["sync"]);
    let out = env.run_ok(&["verify", "items"]);
    assert!(text(&out).contains("equal: the replica holds exactly what the source serves"), "{}", text(&out));

    // Behind Syncmon's back: 4 records change, 3 are added, 2 are deleted at the source.
    let changed = mock.mutate("items", 4);
    let added = mock.insert("items", 3);
    let deleted = mock.delete("items", 2);
    let out = env.run(&["verify", "items", "--json"]);
    assert_eq!(out.status.code(), Some(1), "different: exit 1: {}", text(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = |k: &str| -> std::collections::BTreeSet<String> { r[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect() };
    let set = |v: &[String]| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
    let stale_expected: std::collections::BTreeSet<String> = set(&changed).difference(&set(&deleted)).cloned().collect();
    assert_eq!(ids("missing_ids"), set(&added), "{r}");
    assert_eq!(ids("stale_ids"), stale_expected, "{r}");
    assert_eq!(ids("extra_ids"), set(&deleted), "{r}");
    assert_eq!(r["source_records"], 701, "{r}");
    assert!(r["last_tracking_id"].is_string(), "{r}");
    let out = env.run(&["verify", "items"]);
    assert!(text(&out).contains("3 missing from the replica") && text(&out).contains("resync src/items --yes"), "{}", text(&out));

    // Nothing was written: the replica still holds the 700 rows of before, and only a resync
    // (which also tombstones) makes it equal again.
    let export = env.run_ok(&["export", "items"]);
    assert_eq!(String::from_utf8_lossy(&export.stdout).lines().count(), 700, "verify wrote nothing");
    env.run_ok(&["resync", "items", "--yes"]);
    let out = env.run_ok(&["verify", "items"]);
    assert!(text(&out).contains("equal"), "{}", text(&out));
}

/// `syncmon activity` searches the stored Activity log beside the replica: a refusal's Trackingid
/// finds the failed cycle, `--entity`/`--kind` narrow it, times print as `--utc` says, `--limit`
/// says when older events match, and a bad `--since` is bad usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn activity_searches_the_stored_log_from_the_command_line() {
    let mock = mock(1200, MockAuth::None).await;
    let env = Env::new(&conn(&mock.base_url(), "", ""));
    env.run_ok(&["sync"]);
    mock.inject(syncmon_mock::Fault { kind: syncmon_mock::FaultKind::Status(403), entity: None, times: 0 });
    assert_eq!(env.run(&["sync"]).status.code(), Some(1));
    let out = env.run_ok(&["requests", "--failed", "--json"]);
    let tid = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()[0]["tracking_id"].as_str().unwrap().to_string();

    let out = env.run_ok(&["activity", "--search", &tid.to_uppercase(), "--json"]);
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = found["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["type"] == "cycle_finished" && e["outcome"] == "failed" && e["tracking_id"] == tid.as_str()), "{found}");
    assert_eq!(found["more"], false);

    let out = env.run_ok(&["activity", "--entity", "src/items", "--kind", "cycle_finished", "--since", "1h", "--utc"]);
    let t = text(&out);
    let lines: Vec<&str> = t.lines().filter(|l| l.contains("cycle_finished")).collect();
    assert_eq!(lines.len(), 2, "the caught-up and the failed cycle: {t}");
    assert!(lines[0].contains("outcome=failed") && lines[0].contains(&tid), "newest first, with its Trackingid: {t}");
    assert!(lines[1].contains("outcome=caught_up") && lines[1].contains("records=1200"), "{t}");
    assert!(lines.iter().all(|l| l.contains(" UTC ") && l.contains("src/items")), "{t}");

    let out = env.run_ok(&["activity", "--kind", "page-applied", "--limit", "2"]);
    let t = text(&out);
    assert_eq!(t.lines().filter(|l| l.contains("page_applied")).count(), 2, "{t}");
    assert!(t.contains("older events match too"), "three pages of 500, two shown: {t}");

    let out = env.run(&["activity", "--since", "2026-13-01"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("write a duration"), "{}", text(&out));
}
