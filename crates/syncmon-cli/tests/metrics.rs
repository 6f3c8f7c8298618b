//! `syncmon run|serve --metrics ADDR`: the agent against the simulated source, scraped as
//! Prometheus scrapes it; the values are checked against what the source holds. The token rules:
//! loopback without one (Host checked), a non-loopback address refused without one, a token
//! from the environment required as a bearer.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use syncmon_mock::{EntitySpec, Fault, FaultKind, MockConfig, MockServer};

mod common;
use common::{Env, BIN};

/// The raw answer to a GET of `path` with `host` as the Host header and an optional bearer token.
fn get(port: u16, path: &str, host: &str, token: Option<&str>) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn scrape(port: u16) -> String {
    get(port, "/metrics", &format!("127.0.0.1:{port}"), None)
}

/// The value of the sample `name{labels}` in an exposition, if it is there.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map(|v| v.trim().parse().unwrap())
}

/// Reads the agent's stdout until the metrics line and returns its port; the rest of stdout is
/// drained in the background so the agent never blocks on a full pipe.
fn metrics_port(child: &mut Child) -> (u16, String) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for _ in 0..10 {
        let Some(Ok(line)) = lines.next() else { break };
        seen.push_str(&line);
        seen.push('\n');
        if let Some(rest) = line.split("Prometheus metrics at http://127.0.0.1:").nth(1) {
            let port = rest.split('/').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{line}"));
            std::thread::spawn(move || for _ in lines {});
            return (port, line);
        }
    }
    panic!("no metrics line on stdout: {seen}");
}

fn stop(mut child: Child) {
    assert!(Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success());
    let started = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the agent must stop promptly on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
}

/// `items` with two poison records and one 503 before its first page; `customers` forwarded to a
/// target that refuses every write.
#[tokio::test(flavor = "multi_thread")]
async fn the_scraped_metrics_name_every_entity_with_the_values_the_source_has() {
    let mock = MockServer::start(MockConfig {
        entities: vec![EntitySpec { name: "items".into(), records: 120 }, EntitySpec { name: "customers".into(), records: 30 }],
        ..Default::default()
    })
    .await
    .unwrap();
    mock.insert_poisoned("items", 2);
    mock.inject(Fault { kind: FaultKind::Status(503), entity: Some("items".into()), times: 1 });
    mock.inject(Fault { kind: FaultKind::Status(503), entity: Some("target:*".into()), times: 0 });
    let env = Env::new(&format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{base}\"\nbackoff_base = \"20ms\"\nbackoff_max = \"100ms\"\n\
         [[connection.entity]]\nname = \"items\"\npoll_every = \"1s\"\n\
         [[connection.entity]]\nname = \"customers\"\npoll_every = \"1s\"\nforward_to = \"dst\"\n\
         [[target]]\nid = \"dst\"\nbase_url = \"{base}/target\"\nbackoff_base = \"20ms\"\nbackoff_max = \"100ms\"\n",
        base = mock.base_url()
    ));
    let mut child =
        env.cmd(&["run", "--metrics", "127.0.0.1:0"]).env_remove("SYNCMON_METRICS_TOKEN").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let (port, line) = metrics_port(&mut child);
    assert!(!line.contains("token"), "no token on loopback unless one is set: {line}");

    let live_items = (mock.dataset("items").len() - mock.poisoned("items").len()) as f64;
    let items = r#"connection="src",entity="items""#;
    let customers = r#"connection="src",entity="customers""#;
    let started = Instant::now();
    let text = loop {
        let answer = scrape(port);
        let text = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        let loaded = sample(&text, "syncmon_entity_replica_rows", items) == Some(live_items)
            && sample(&text, "syncmon_entity_replica_rows", customers) == Some(30.0)
            && sample(&text, "syncmon_outbox_pending", &format!("{customers},target=\"dst\"")) == Some(30.0);
        if loaded {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{answer}");
            break text;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the replica rows never reached the source's counts:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(live_items >= 120.0);
    assert!(text.trim_end().ends_with("# EOF"), "OpenMetrics text ends with # EOF");
    assert!(sample(&text, "syncmon_cycles_total", &format!("{items},outcome=\"caught_up\"")).is_some_and(|n| n >= 1.0), "{text}");
    assert!(sample(&text, "syncmon_records_total", items).is_some_and(|n| n >= live_items + 2.0), "read records count the rejected ones: {text}");
    assert_eq!(sample(&text, "syncmon_failed_items", &format!("{items},stage=\"validate\",state=\"pending\"")), Some(2.0), "{text}");
    assert_eq!(sample(&text, "syncmon_failed_items", &format!("{customers},stage=\"validate\",state=\"pending\"")), Some(0.0), "{text}");
    assert!(sample(&text, "syncmon_entity_lag_seconds", items).is_some_and(|s| s < 30.0), "{text}");
    assert_eq!(sample(&text, "syncmon_entity_health", &format!("{items},health=\"healthy\"")), Some(1.0), "{text}");
    assert_eq!(sample(&text, "syncmon_circuit_open", r#"connection="src""#), Some(0.0), "{text}");
    assert!(sample(&text, "syncmon_target_circuit_open", r#"target="dst""#).is_some(), "{text}");
    assert!(sample(&text, "syncmon_outbox_oldest_age_seconds", &format!("{customers},target=\"dst\"")).is_some(), "{text}");
    // The 503 before the first page and the target's refusals, next to the successful calls.
    let calls =
        |who: &str, class: &str| sample(&text, "syncmon_http_request_duration_seconds_count", &format!("connection=\"{who}\",status_class=\"{class}\""));
    assert!(calls("src", "2xx").is_some_and(|n| n >= 2.0), "{text}");
    assert!(calls("src", "5xx").is_some_and(|n| n >= 1.0), "{text}");
    assert!(calls("dst", "5xx").is_some_and(|n| n >= 1.0), "{text}");
    assert!(text.contains("# TYPE syncmon_http_request_duration_seconds histogram"), "{text}");

    // Only /metrics, and only for a Host naming this endpoint (DNS rebinding).
    let foreign = get(port, "/metrics", &format!("evil.example:{port}"), None);
    assert!(foreign.starts_with("HTTP/1.1 403"), "{foreign}");
    assert!(get(port, "/", &format!("127.0.0.1:{port}"), None).starts_with("HTTP/1.1 404"));
    stop(child);
    mock.shutdown().await;
}

#[test]
fn a_metrics_address_other_machines_can_reach_is_refused_without_a_token() {
    let env = Env::new("[[connection]]\nid = \"src\"\nbase_url = \"http://127.0.0.1:9\"\n[[connection.entity]]\nname = \"items\"\n");
    let home = tempfile::tempdir().unwrap();
    let out = env
        .cmd(&["run", "--metrics", "0.0.0.0:0"])
        .env_remove("SYNCMON_METRICS_TOKEN")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "bad usage exits 2: {}", common::text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SYNCMON_METRICS_TOKEN"), "says where a token goes: {err}");
}

#[test]
fn a_bad_metrics_address_in_the_config_is_refused_with_its_key_and_line() {
    let env =
        Env::new("[metrics]\nlisten = \"9464\"\n[[connection]]\nid = \"src\"\nbase_url = \"http://127.0.0.1:9\"\n[[connection.entity]]\nname = \"items\"\n");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[metrics] listen = \"9464\" is not an address") && err.contains("line 2"), "{err}");
}

/// `serve --metrics` with `$SYNCMON_METRICS_TOKEN`: a scrape without the bearer token is refused,
/// with it answered.
#[tokio::test(flavor = "multi_thread")]
async fn serve_requires_the_metrics_token_from_the_environment_as_a_bearer() {
    let mock = MockServer::start(MockConfig { entities: vec![EntitySpec { name: "items".into(), records: 40 }], ..Default::default() }).await.unwrap();
    let env = Env::new(&format!("[[connection]]\nid = \"src\"\nbase_url = \"{}\"\n[[connection.entity]]\nname = \"items\"\n", mock.base_url()));
    let token = "metrics-test-token-0123456789";
    let mut child = env
        .cmd(&["serve", "--listen", "127.0.0.1:0", "--token-env", "SYNCMON_TEST_TOKEN", "--metrics", "127.0.0.1:0", "--ui-dir"])
        .arg(env.dir.path().join("no-ui"))
        .env("SYNCMON_TEST_TOKEN", "serve-test-token-0123456789")
        .env("SYNCMON_METRICS_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (port, line) = metrics_port(&mut child);
    assert!(line.contains("bearer token required") && !line.contains(token), "the token is not printed: {line}");
    let host = format!("127.0.0.1:{port}");
    let denied = get(port, "/metrics", &host, None);
    assert!(denied.starts_with("HTTP/1.1 401") && denied.to_ascii_lowercase().contains("www-authenticate: bearer"), "{denied}");
    assert!(get(port, "/metrics", &host, Some("wrong-token-0123456789")).starts_with("HTTP/1.1 401"));
    let started = Instant::now();
    loop {
        let answer = get(port, "/metrics", &host, Some(token));
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        if answer.contains(r#"syncmon_entity_replica_rows{connection="src",entity="items"} 40"#) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never synced: {answer}");
        std::thread::sleep(Duration::from_millis(200));
    }
    stop(child);
    mock.shutdown().await;
}

/// `syncmon creds metrics-token` stores the token in a real Secret Service (gnome-keyring on a
/// private D-Bus), refusing one too short to be a secret; the agent on an address other machines
/// could reach then requires that token (scraped over loopback only).
#[test]
fn the_metrics_token_from_the_keyring_guards_a_non_loopback_address() {
    let env = Env::new("[[connection]]\nid = \"src\"\nbase_url = \"http://127.0.0.1:9\"\n[[connection.entity]]\nname = \"items\"\npoll_every = \"1h\"\n");
    let token = "metrics-keyring-token-0123456789";
    let (config, data) = (env.config.display().to_string(), env.data().display().to_string());
    let script = format!(
        r#"printf 'short\n' | {BIN} creds metrics-token; echo "short exit $?"
printf '{token}\n' | {BIN} creds metrics-token; echo "stored exit $?"
env -u SYNCMON_METRICS_TOKEN {BIN} --config {config} --data-dir {data} run --metrics 0.0.0.0:0 >agent.out 2>agent.err &
agent=$!
for i in $(seq 1 100); do grep -q "metrics at" agent.out && break; sleep 0.1; done
cat agent.out
port=$(grep -o '127.0.0.1:[0-9]*' agent.out | head -1 | cut -d: -f2)
echo "without: $(curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:$port/metrics)"
echo "with: $(curl -s -o /dev/null -w '%{{http_code}}' -H 'Authorization: Bearer {token}' http://127.0.0.1:$port/metrics)"
kill -TERM $agent; wait $agent; echo "agent exit $?"
"#
    );
    let out = common::keyring_session(env.dir.path(), &script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("short exit 2") && stderr.contains("shorter than 16 characters"), "{stdout}{stderr}");
    assert!(
        stdout.contains("stored exit 0") && stdout.contains("stored the metrics token in the OS keyring (service `syncmon`, account `metrics`)"),
        "{stdout}{stderr}"
    );
    assert!(stdout.contains("(bearer token required)") && !stdout.contains(token), "the token is not printed: {stdout}");
    assert!(stdout.contains("without: 401"), "{stdout}{stderr}");
    assert!(stdout.contains("with: 200"), "{stdout}{stderr}");
    assert!(stdout.contains("agent exit 0"), "{stdout}{stderr}");
}
