//! What the `syncmon` binary's test suites share: the binary, a config and data directory to run
//! it in, and a private keyring session. Each suite compiles this module on its own and uses a
//! part of it, hence `dead_code` allowed here.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_syncmon");

/// A temporary directory holding `syncmon.toml` and the data directory `data/`.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Env {
    pub fn new(config_text: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("syncmon.toml");
        std::fs::write(&config, config_text).unwrap();
        Env { dir, config }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The binary with this config and another data directory.
    pub fn cmd_in(&self, data: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config").arg(&self.config).arg("--data-dir").arg(data).args(args);
        c.env_remove("RUST_LOG");
        c
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_in(&self.data(), args)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs a command that must exit 0; its output is shown otherwise.
    pub fn run_ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "syncmon {}: {}", args.join(" "), text(&out));
        out
    }
}

/// stdout then stderr, as one text for assertions and failure messages.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The entity's checkpoint, read from the database beside the agent (`None` before its first page).
pub fn checkpoint_of(db: &Path) -> Option<u128> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let v: String = c.query_row("SELECT checkpoint FROM entity_state", [], |r| r.get(0)).ok()?;
    v.parse().ok()
}

/// Runs the shell `script` in `dir` inside a private D-Bus session with a real Secret Service: a
/// fresh gnome-keyring whose login collection is created, unlocked and ready before the script
/// starts.
///
/// Every session gets its own HOME and XDG directories, so no keyring file or control socket of
/// another test (or of the machine's user) is read. The wait asks the bus whether the daemon owns
/// `org.freedesktop.secrets` before asking the name anything: a call to an unowned name would have
/// D-Bus start a second daemon on the same keyring files, which then reads the login keyring
/// half-written ("invalid or unrecognized format") and serves no collection ("no result found").
pub fn keyring_session(dir: &Path, script: &str) -> Output {
    for tool in ["dbus-run-session", "dbus-send", "gnome-keyring-daemon"] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap().status.success();
        assert!(found, "{tool} is missing: run scripts/install-system-deps.sh");
    }
    let home = tempfile::tempdir().unwrap();
    let runtime = home.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let script = format!("{KEYRING_READY}\n{script}");
    Command::new("dbus-run-session")
        .args(["--", "sh", "-c", &script])
        .current_dir(dir)
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("GNOME_KEYRING_CONTROL")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Starts gnome-keyring with the login collection unlocked, then waits (at most 10 s) until the
/// daemon owns the Secret Service name and its default collection answers unlocked.
const KEYRING_READY: &str = r#"eval "$(printf pw | gnome-keyring-daemon --unlock --components=secrets)"
keyring_ready=""
for try in $(seq 1 100); do
  if dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null \
       | grep -q "boolean true" \
     && dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets/aliases/default \
       org.freedesktop.DBus.Properties.Get string:org.freedesktop.Secret.Collection string:Locked 2>/dev/null | grep -q "boolean false"; then
    keyring_ready=1
    break
  fi
  sleep 0.1
done
[ -n "$keyring_ready" ] || { echo "gnome-keyring: no unlocked default collection after 10 s" >&2; exit 97; }"#;
