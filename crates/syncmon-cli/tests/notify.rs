//! `syncmon run --notify` on a real session bus: a private D-Bus (dbus-run-session) with a real
//! notification daemon (dunst, on Xvfb), watched by dbus-monitor. An entity that keeps failing
//! makes exactly one notification, naming it; a click on it (its default action) reaches the
//! agent, with the screen the desktop app would open.

use std::process::Command;
use syncmon_mock::{EntitySpec, Fault, FaultKind, MockConfig, MockServer};

const BIN: &str = env!("CARGO_BIN_EXE_syncmon");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_failing_over_and_over_makes_one_desktop_notification_naming_it() {
    for tool in ["xvfb-run", "dbus-run-session", "dbus-monitor", "dbus-send", "dunst"] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap().status.success();
        assert!(found, "{tool} is missing: run scripts/install-system-deps.sh");
    }
    let mock = MockServer::start(MockConfig { entities: vec![EntitySpec { name: "items".into(), records: 50 }], ..Default::default() }).await.unwrap();
    // Every call fails, until cleared: the cycle fails, again and again, and the circuit opens.
    mock.inject(Fault { kind: FaultKind::Status(503), entity: Some("items".into()), times: 0 });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("syncmon.toml");
    std::fs::write(
        &config,
        format!(
            "[[connection]]\nid = \"src\"\nbase_url = \"{}\"\nmax_retries = 1\nbackoff_base = \"20ms\"\nbackoff_max = \"100ms\"\n\
             breaker_cooldown = \"2s\"\n\n[[connection.entity]]\nname = \"items\"\npoll_every = \"1s\"\n",
            mock.base_url()
        ),
    )
    .unwrap();
    let script = format!(
        r#"
dunst -config /dev/null >dunst.log 2>&1 &
dunst=$!
dbus-monitor --session "interface='org.freedesktop.Notifications'" >monitor.txt 2>&1 &
monitor=$!
# Bounded waits only: the daemon owns its name within a few seconds, or the test fails below.
for i in $(seq 100); do
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner \
    string:org.freedesktop.Notifications 2>/dev/null | grep -q "boolean true" && break
  sleep 0.1
done
{BIN} --config {cfg} --data-dir data run --notify --notify-failing-after 2s >agent.log 2>&1 &
agent=$!
for i in $(seq 300); do
  grep -q "member=Notify$" monitor.txt && break
  sleep 0.1
done
# A click on it (dunst's default action, as clicking the bubble does): the agent hears it.
sleep 0.5
dunstctl action 0 >dunstctl.txt 2>&1
# Longer than the burst window (3 s) and several failed cycles more: a second notification
# from the same trouble would show up here.
sleep 10
kill $agent; wait $agent
kill $monitor $dunst
wait
"#,
        cfg = config.display(),
    );
    let workdir = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args(["120", "xvfb-run", "-a", "-s", "-screen 0 640x480x24", "dbus-run-session", "--", "sh", "-c", &script])
            .current_dir(&workdir)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("DISPLAY")
            .env("RUST_LOG", "syncmon_notify=debug,info")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
    let monitor = read("monitor.txt");
    let context = format!(
        "\n--- script\n{}{}\n--- agent\n{}\n--- dunst\n{}\n--- monitor\n{monitor}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        read("agent.log"),
        read("dunst.log")
    );
    // Each notification is one `Notify` method call, followed by its app name, summary and body.
    let calls: Vec<&str> = monitor.split("method call").filter(|c| c.lines().next().is_some_and(|l| l.ends_with("member=Notify"))).collect();
    assert_eq!(calls.len(), 1, "exactly one notification for the whole burst of failures:{context}");
    assert!(calls[0].contains("string \"Syncmon\""), "sent as Syncmon:{context}");
    assert!(calls[0].contains("src/items"), "the notification names the entity:{context}");
    assert!(calls[0].contains("string \"default\""), "it has a default action (a click):{context}");
    let agent = read("agent.log");
    assert!(
        agent.lines().any(|l| l.contains("notification clicked") && l.contains("#/")),
        "the click reaches the agent over D-Bus, with the screen it opens:{context}\n--- dunstctl\n{}",
        read("dunstctl.txt")
    );
    mock.shutdown().await;
}
