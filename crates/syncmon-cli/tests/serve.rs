//! `syncmon serve` as users start it: the loopback-only rule, the token from the environment, the
//! API answering, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use syncmon_mock::{EntitySpec, MockConfig, MockServer};

mod common;
use common::BIN;

#[test]
fn a_non_loopback_listen_address_needs_allow_remote() {
    let out = Command::new(BIN).args(["serve", "--listen", "0.0.0.0:0", "--token-env", "NOPE_UNSET"]).env_remove("RUST_LOG").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "bad usage exits 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address") && err.contains("--allow-remote"), "{err}");
}

#[test]
fn an_unset_token_variable_is_a_clear_error() {
    let out = Command::new(BIN).args(["serve", "--token-env", "SYNCMON_TEST_UNSET_TOKEN"]).env_remove("SYNCMON_TEST_UNSET_TOKEN").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SYNCMON_TEST_UNSET_TOKEN is not set"), "{err}");
}

#[test]
fn without_a_keyring_the_error_says_to_pass_token_env() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--show-token"])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY")
        .env("HOME", dir.path())
        .env("XDG_RUNTIME_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the OS keyring is not available") && err.contains("--token-env"), "{err}");
}

/// The token is created in a real Secret Service (gnome-keyring on a private D-Bus) on the first
/// start, printed once inside the URL, and `--show-token` prints the same one again.
#[test]
fn the_token_lives_in_the_keyring_and_show_token_prints_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        r#"set -e
{BIN} serve --show-token >first.txt
{BIN} serve --show-token >second.txt
cat first.txt second.txt
"#
    );
    let out = common::keyring_session(dir.path(), &script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // gnome-keyring-daemon may print its own variables on the same stdout.
    let urls: Vec<&str> = stdout.lines().filter(|l| l.starts_with("http")).collect();
    assert_eq!(urls.len(), 2, "{stdout}");
    assert!(urls[0].starts_with("http://127.0.0.1:8384/#token="), "{stdout}");
    assert!(urls[0].len() > "http://127.0.0.1:8384/#token=".len() + 40, "32 random bytes, base64url: {stdout}");
    assert_eq!(urls[0], urls[1], "the same token on the next start");
}

/// GET with a bearer token over a plain socket; returns the raw response.
fn get(port: u16, path: &str, token: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_the_api_with_the_token_from_the_environment_and_stops_on_sigterm() {
    let mock = MockServer::start(MockConfig { entities: vec![EntitySpec { name: "items".into(), records: 50 }], ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("syncmon.toml");
    std::fs::write(&config, format!("[[connection]]\nid = \"src\"\nbase_url = \"{}\"\n[[connection.entity]]\nname = \"items\"\n", mock.base_url())).unwrap();
    let token = "cli-test-token-0123456789";
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0", "--token-env", "SYNCMON_TEST_TOKEN", "--ui-dir"])
        .arg(dir.path().join("no-ui"))
        .env("SYNCMON_TEST_TOKEN", token)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = lines.next().expect("a banner line").unwrap();
    assert!(banner.contains("#token=<the token in $SYNCMON_TEST_TOKEN>") && !banner.contains(token), "the token is not printed: {banner}");
    let port: u16 =
        banner.split("http://127.0.0.1:").nth(1).and_then(|r| r.split('/').next()).and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{banner}"));
    let note = lines.next().unwrap().unwrap();
    assert!(note.contains("npm --prefix ui ci"), "says how to build the missing UI: {note}");

    let (p, t) = (port, token.to_string());
    let status = tokio::task::spawn_blocking(move || get(p, "/api/status", &t)).await.unwrap();
    assert!(status.starts_with("HTTP/1.1 200") && status.contains("\"items\""), "{status}");
    let denied = tokio::task::spawn_blocking(move || get(port, "/api/status", "wrong-token-0123456789")).await.unwrap();
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");

    assert!(Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success());
    let started = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "syncmon serve must stop promptly on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
    mock.shutdown().await;
}
