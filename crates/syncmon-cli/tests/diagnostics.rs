//! `syncmon diagnostics`: one zip whose SUMMARY.md names what is wrong (the failing entity, its
//! HTTP status and Trackingid, failed items by kind), with the evidence beside it — and never a
//! secret: one connection's key is in a real keyring (gnome-keyring on a private D-Bus), another's
//! in an environment variable, and every byte of every file in the bundle is searched for both.

use std::io::Read;
use syncmon_mock::{EntitySpec, Fault, FaultKind, MockAuth, MockConfig, MockServer};

mod common;
use common::{text, Env, BIN};

const KEYRING_KEY: &str = "k3y-in-the-keyring-diag-51ab";
const ENV_KEY: &str = "k3y-in-the-env-diag-77cd";

async fn mock(key: &str) -> MockServer {
    MockServer::start(MockConfig {
        entities: vec![EntitySpec { name: "items".into(), records: 200 }],
        auth: MockAuth::ApiKey { header: "x-np-api-key".into(), key: key.into() },
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bundle_says_what_is_wrong_and_holds_no_secret() {
    let good = mock(KEYRING_KEY).await;
    // The source of `bad` expects another key than the environment gives: every call is a 401.
    let bad = mock("the-key-the-source-wants").await;
    let env = Env::new(&format!(
        "[[connection]]\nid = \"good\"\nbase_url = \"{}\"\nauth = \"api_key\"\nbackoff_base = \"20ms\"\nbackoff_max = \"100ms\"\nmax_retries = 1\n\
         requests_per_second = 1000\n[[connection.entity]]\nname = \"items\"\npage_size = 100\n\n\
         [[connection]]\nid = \"bad\"\nbase_url = \"{}\"\nauth = \"api_key\"\nsecret_env = \"DIAG_BAD_KEY\"\nbackoff_base = \"20ms\"\n\
         backoff_max = \"100ms\"\nmax_retries = 1\nrequests_per_second = 1000\n[[connection.entity]]\nname = \"items\"\npage_size = 100\n",
        good.base_url(),
        bad.base_url()
    ));
    good.inject(Fault { kind: FaultKind::MissingRowVersion { records: 2 }, entity: None, times: 1 });
    let zip_path = env.dir.path().join("bundle.zip");
    let script = format!(
        r#"set -e
export DIAG_BAD_KEY='{ENV_KEY}'
S="{BIN} --config {cfg} --data-dir {data}"
printf '{KEYRING_KEY}\n' | $S creds set good
$S sync >sync.txt 2>&1 || true
$S status --json >status.json || true
$S diagnostics --output {zip}
"#,
        cfg = env.config.display(),
        data = env.data().display(),
        zip = zip_path.display(),
    );
    let dir = env.dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || common::keyring_session(&dir, &script)).await.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 entity needs attention"), "{}", text(&out));

    let status: serde_json::Value = serde_json::from_slice(&std::fs::read(env.dir.path().join("status.json")).unwrap()).unwrap();
    let bad_row = status.as_array().unwrap().iter().find(|e| e["connection"] == "bad").expect("bad in status").clone();
    assert_eq!(bad_row["health"], "failing", "{bad_row}");
    let tracking = bad_row["last_tracking_id"].as_str().expect("the 401's Trackingid").to_string();

    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut files = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        files.insert(f.name().unwrap().to_string(), String::from_utf8(bytes).unwrap());
    }
    for name in ["SUMMARY.md", "version.json", "config.toml", "status.json", "runs.json", "requests.json", "failed_items.jsonl", "activity.json"] {
        assert!(files.contains_key(name), "{name} in the bundle: {:?}", files.keys());
    }
    let summary = &files["SUMMARY.md"];
    assert!(summary.contains("**bad/items** is failing"), "{summary}");
    assert!(summary.contains("HTTP status: 401") && summary.contains(&tracking), "{summary}");
    assert!(summary.contains("missing_row_version: 2"), "failed items by kind: {summary}");
    assert!(summary.contains(env!("CARGO_PKG_VERSION")), "the version: {summary}");
    assert!(files["requests.json"].contains(&tracking), "the request log holds the call");
    assert_eq!(files["failed_items.jsonl"].lines().count(), 2);
    assert!(files["failed_items.jsonl"].contains("left out"), "payloads only when asked");
    assert!(files["config.toml"].contains("secret_env"), "the config is there, redacted where needed");
    // The activity of the `sync` process, read back by another process from the stored log.
    let activity: Vec<serde_json::Value> = serde_json::from_str(&files["activity.json"]).unwrap();
    assert!(
        activity.iter().any(|e| e["type"] == "cycle_finished" && e["connection"] == "bad" && e["tracking_id"] == tracking.as_str()),
        "the failed cycle of the earlier sync is in activity.json: {activity:?}"
    );
    assert!(activity.iter().any(|e| e["type"] == "cycle_finished" && e["connection"] == "good"), "{activity:?}");

    // Never a secret, in any file.
    for (name, body) in &files {
        for secret in [KEYRING_KEY, ENV_KEY] {
            assert!(!body.contains(secret), "{secret} leaked into {name}");
        }
    }
    let raw = std::fs::read(&zip_path).unwrap();
    for secret in [KEYRING_KEY, ENV_KEY] {
        assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} in the zip's bytes");
    }

    // With payloads asked for, the records' data is in.
    let with = env.dir.path().join("with.zip");
    let out = env.run(&["diagnostics", "--include-payloads", "--output", with.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&with).unwrap()).unwrap();
    let mut failed = String::new();
    archive.by_name("failed_items.jsonl").unwrap().read_to_string(&mut failed).unwrap();
    assert!(failed.contains("displayName") && !failed.contains("left out"), "{failed}");
}
