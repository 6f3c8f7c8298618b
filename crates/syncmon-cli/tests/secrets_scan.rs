//! The secrets scan (issue 8, Build 4): the real `syncmon` binary syncs with an API key and with
//! OAuth2 client credentials, each from the OS keyring (a real gnome-keyring on a private D-Bus)
//! and from an environment variable, and goes through the error paths (a wrong key → 401, a
//! wrong client secret, config files with secrets in the wrong places). Then every byte of every
//! file under the data and config directories — the database, its -wal/-shm, the captured logs
//! of every command — is searched for the secrets and for the access tokens the source issued.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use syncmon_mock::{EntitySpec, MockAuth, MockConfig, MockServer};

mod common;
use common::{text, BIN};

const KEYRING_KEY: &str = "k3y-from-the-keyring-7f1e2d";
const KEYRING_CLIENT_SECRET: &str = "s3cret-from-the-keyring-9a8b";
const ENV_KEY: &str = "k3y-from-the-env-4c5d6e";
const ENV_CLIENT_SECRET: &str = "s3cret-from-the-env-1b2c";
const WRONG_KEY: &str = "wr0ng-key-aa11bb";
const WRONG_CLIENT_SECRET: &str = "wr0ng-secret-cc22dd";
const ALL_SECRETS: &[&str] = &[KEYRING_KEY, KEYRING_CLIENT_SECRET, ENV_KEY, ENV_CLIENT_SECRET, WRONG_KEY, WRONG_CLIENT_SECRET];

async fn mock(auth: MockAuth) -> MockServer {
    MockServer::start(MockConfig { entities: vec![EntitySpec { name: "items".into(), records: 250 }], auth, ..Default::default() }).await.unwrap()
}

fn api_key(key: &str) -> MockAuth {
    MockAuth::ApiKey { header: "x-np-api-key".into(), key: key.into() }
}

fn oauth(secret: &str) -> MockAuth {
    MockAuth::OAuth { client_id: "syncmon-client".into(), client_secret: secret.into(), token_ttl_secs: 3600 }
}

/// Two connections, `<prefix>keyed` (API key) and `<prefix>oauth` (client credentials).
fn config(keyed: &MockServer, oauth: &MockServer, prefix: &str, extra_keyed: &str, extra_oauth: &str) -> String {
    format!(
        "[[connection]]\nid = \"{prefix}keyed\"\nbase_url = \"{}\"\nauth = \"api_key\"\nbackoff_base = \"20ms\"\nbackoff_max = \"100ms\"\n\
         max_retries = 1\nrequests_per_second = 1000\n{extra_keyed}\n[[connection.entity]]\nname = \"items\"\npage_size = 100\n\n\
         [[connection]]\nid = \"{prefix}oauth\"\nbase_url = \"{}\"\nauth = \"oauth2\"\ntoken_url = \"{}/oauth/token\"\n\
         client_id = \"syncmon-client\"\nbackoff_base = \"20ms\"\nbackoff_max = \"100ms\"\nmax_retries = 1\nrequests_per_second = 1000\n\
         {extra_oauth}\n[[connection.entity]]\nname = \"items\"\npage_size = 100\n",
        keyed.base_url(),
        oauth.base_url(),
        oauth.base_url(),
    )
}

/// Every regular file below `dir`, recursively.
fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            files_below(&path, out);
        } else if meta.is_file() {
            out.push(path);
        }
    }
}

/// `mock_` followed by 32 hex digits: an access token as the simulated source issues them.
fn find_access_token(bytes: &[u8]) -> Option<usize> {
    bytes.windows(37).position(|w| w.starts_with(b"mock_") && w[5..].iter().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_is_in_any_file_syncmon_wrote_and_its_files_are_owner_only() {
    // Scanned: the config directory (config files, `logs/` with every command's output) and the
    // data directory below it. Not scanned: the keyring's own files, where the secrets belong.
    let root = tempfile::tempdir().unwrap();
    let bad_configs = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let logs = root.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();

    // 1. Secrets from the keyring: a good sync, then a wrong key (401) and a wrong client secret.
    let keyed = mock(api_key(KEYRING_KEY)).await;
    let oauth_src = mock(oauth(KEYRING_CLIENT_SECRET)).await;
    let keyring_config = root.path().join("syncmon.toml");
    std::fs::write(&keyring_config, config(&keyed, &oauth_src, "", "", "")).unwrap();
    let script = format!(
        r#"set -u
S="{BIN} --config {cfg} --data-dir {data}"
LOG={logs}/keyring.log
store() {{
  printf '%s\n' "$2" | $S creds set "$1" >>"$LOG" 2>&1
}}
store keyed '{KEYRING_KEY}' || exit 11
store oauth '{KEYRING_CLIENT_SECRET}' || exit 12
$S -v sync >>"$LOG" 2>&1 || exit 13
$S status >>"$LOG" 2>&1 || exit 14
$S requests --limit 100 >>"$LOG" 2>&1 || exit 15
store keyed '{WRONG_KEY}' || exit 16
store oauth '{WRONG_CLIENT_SECRET}' || exit 17
if $S -v sync >>"$LOG" 2>&1; then exit 18; fi
$S status >>"$LOG" 2>&1; [ $? -eq 1 ] || exit 19   # exit 1: entities are failing
$S requests --failed --json >>"$LOG" 2>&1 || exit 20
$S creds delete keyed >>"$LOG" 2>&1 || exit 21
$S creds delete oauth >>"$LOG" 2>&1 || exit 22
"#,
        cfg = keyring_config.display(),
        data = data.display(),
        logs = logs.display(),
    );
    let dir = bad_configs.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || common::keyring_session(&dir, &script)).await.unwrap();
    let log = std::fs::read_to_string(logs.join("keyring.log")).unwrap_or_default();
    assert!(out.status.success(), "the keyring part failed ({:?}):\n{}\n{log}", out.status.code(), text(&out));
    assert!(log.contains("keyed/items: caught up") && log.contains("oauth/items: caught up"), "{log}");
    assert!(log.contains("authentication failed"), "the wrong key must fail with 401: {log}");
    assert!(log.contains("refused the client credentials"), "the wrong client secret must fail at the token endpoint: {log}");
    assert!(oauth_src.tokens_issued() >= 1);

    // 2. Secrets from environment variables, with the most verbose logging; then wrong values.
    let keyed_env = mock(api_key(ENV_KEY)).await;
    let oauth_env = mock(oauth(ENV_CLIENT_SECRET)).await;
    let env_config = root.path().join("syncmon-env.toml");
    std::fs::write(&env_config, config(&keyed_env, &oauth_env, "env-", "secret_env = \"SCAN_API_KEY\"", "secret_env = \"SCAN_CLIENT_SECRET\"")).unwrap();
    let run = |args: &[&str], key: &str, secret: &str, log_name: &str| -> Output {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&env_config)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("SCAN_API_KEY", key)
            .env("SCAN_CLIENT_SECRET", secret)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(logs.join(log_name)).unwrap();
        std::io::Write::write_all(&mut f, &[&out.stdout[..], &out.stderr[..]].concat()).unwrap();
        out
    };
    let out = run(&["-vv", "sync"], ENV_KEY, ENV_CLIENT_SECRET, "env.log");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(&["-vv", "sync"], WRONG_KEY, WRONG_CLIENT_SECRET, "env.log");
    assert_eq!(out.status.code(), Some(1), "wrong secrets from the environment must fail: {}", text(&out));
    for args in [&["status"][..], &["requests", "--json"], &["failed", "list"]] {
        run(args, ENV_KEY, ENV_CLIENT_SECRET, "env.log");
    }

    // The agent, running: its database, -wal and -shm files while they are open.
    let mut agent = Command::new(BIN)
        .arg("--config")
        .arg(&env_config)
        .arg("--data-dir")
        .arg(&data)
        .args(["-v", "run"])
        .env("SCAN_API_KEY", ENV_KEY)
        .env("SCAN_CLIENT_SECRET", ENV_CLIENT_SECRET)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("RUST_LOG")
        .stdout(std::fs::File::create(logs.join("agent.log")).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wal = data.join("syncmon.db-wal");
    let shm = data.join("syncmon.db-shm");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(wal.exists() && shm.exists()) {
        assert!(Instant::now() < deadline, "the running agent has no -wal/-shm file after 30 s");
        assert!(agent.try_wait().unwrap().is_none(), "the agent exited early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    #[cfg(unix)]
    {
        let modes: Vec<(String, u32)> =
            [data.join("syncmon.db"), wal.clone(), shm.clone()].iter().map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), mode(p))).collect();
        for (name, m) in &modes {
            assert_eq!(m & 0o077, 0, "{name} is readable by others (mode {m:o}): {modes:?}");
        }
        assert_eq!(mode(&data), 0o700, "the data directory (mode {:o})", mode(&data));
    }
    Command::new("kill").args(["-TERM", &agent.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            agent.kill().unwrap();
            panic!("the agent did not stop within 30 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut agent_err = Vec::new();
    std::io::Read::read_to_end(agent.stderr.as_mut().unwrap(), &mut agent_err).unwrap();
    std::fs::write(logs.join("agent.err.log"), &agent_err).unwrap();

    // 3. Config files with secrets in the wrong places: refused, and no error repeats the value.
    // (These files hold the secret on purpose; they are outside the scanned directories.)
    let good = config(&keyed, &oauth_src, "", "", "");
    let bad = [
        ("api_key in the file", good.replace("auth = \"api_key\"", &format!("auth = \"api_key\"\napi_key = \"{KEYRING_KEY}\""))),
        ("camelCase clientSecret", good.replace("client_id = ", &format!("clientSecret = \"{KEYRING_CLIENT_SECRET}\"\nclient_id = "))),
        ("a misspelt key", good.replace("client_id = ", &format!("client_secert = \"{KEYRING_CLIENT_SECRET}\"\nclient_id = "))),
        ("password in base_url", good.replacen("http://127.0.0.1", &format!("http://user:{KEYRING_KEY}@127.0.0.1"), 1)),
        ("key in the path", good.replacen("page_size = 100", &format!("page_size = 100\npath = \"/items?api_key={KEYRING_KEY}\""), 1)),
        ("secret in token_url", good.replace("/oauth/token\"", &format!("/oauth/token?client_secret={KEYRING_CLIENT_SECRET}\""))),
        ("secret pasted into secret_env", good.replacen("max_retries = 1", &format!("max_retries = 1\nsecret_env = \"{KEYRING_KEY}\""), 1)),
        ("secret as a number", good.replacen("max_retries = 1", &format!("max_retries = \"{KEYRING_KEY}\""), 1)),
        ("secret as an enum", good.replacen("auth = \"api_key\"", &format!("auth = \"{KEYRING_KEY}\""), 1)),
        ("unterminated string", good.replacen("client_id = \"syncmon-client\"", &format!("client_id = \"{KEYRING_CLIENT_SECRET}"), 1)),
    ];
    let mut config_errors = Vec::new();
    for (i, (what, text_)) in bad.iter().enumerate() {
        let path = bad_configs.path().join(format!("bad-{i}.toml"));
        std::fs::write(&path, text_).unwrap();
        for args in [&["status"][..], &["sync"]] {
            let out = Command::new(BIN).arg("--config").arg(&path).arg("--data-dir").arg(&data).args(args).env_remove("RUST_LOG").output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{what}: a config error exits 2: {}", text(&out));
            config_errors.extend_from_slice(&out.stdout);
            config_errors.extend_from_slice(&out.stderr);
        }
    }
    std::fs::write(logs.join("config-errors.log"), &config_errors).unwrap();

    // 4. The scan: every file, raw bytes.
    let mut files = Vec::new();
    files_below(root.path(), &mut files);
    let names: Vec<String> = files.iter().map(|f| f.strip_prefix(root.path()).unwrap().display().to_string()).collect();
    assert!(names.iter().any(|n| n == "data/syncmon.db"), "the database was scanned: {names:?}");
    assert!(files.len() >= 8, "the scan found too few files: {names:?}");
    eprintln!("scanned {} files: {names:?}", files.len());
    let mut found = Vec::new();
    for (file, name) in files.iter().zip(&names) {
        let bytes = std::fs::read(file).unwrap();
        for secret in ALL_SECRETS {
            if contains(&bytes, secret) {
                found.push(format!("{secret} in {name}"));
            }
        }
        if let Some(at) = find_access_token(&bytes) {
            found.push(format!("an access token ({}) in {name}", String::from_utf8_lossy(&bytes[at..at + 37])));
        }
    }
    assert!(found.is_empty(), "secrets found on disk:\n{}\nfiles scanned: {names:?}", found.join("\n"));
    // The logs are not empty: the scan would have seen what they said.
    let env_log = std::fs::read_to_string(logs.join("env.log")).unwrap();
    assert!(env_log.contains("env-keyed/items: caught up") && env_log.contains("authentication failed"), "{env_log}");
    assert!(String::from_utf8_lossy(&config_errors).matches("error:").count() >= bad.len() * 2);

    #[cfg(unix)]
    for (file, name) in files.iter().zip(&names) {
        if name.starts_with("data/") {
            let m = mode(file);
            assert_eq!(m & 0o077, 0, "{name} is readable by others (mode {m:o})");
        }
    }
}
