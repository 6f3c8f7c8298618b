//! A throwaway PostgreSQL cluster for tests and benchmarks: Debian's server binaries
//! (`postgresql`, installed by `scripts/install-system-deps.sh`), a data directory under a
//! temporary directory, listening on a free loopback port only, stopped and removed on drop.
//!
//! As root (CI, containers) the server runs as the `postgres` user, since `initdb` refuses root.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The newest server's binaries: `/usr/lib/postgresql/<major>/bin` (Debian's layout).
fn server_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").is_file())
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

impl PgCluster {
    /// initdb + start. Panics with what to do when PostgreSQL is not installed.
    pub fn start() -> PgCluster {
        let bin = server_bin_dir()
            .unwrap_or_else(|| panic!("PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/install-system-deps.sh"));
        let dir = tempfile::Builder::new().prefix("syncmon-pg-").tempdir().expect("a temporary directory");
        let as_postgres = is_root();
        let cluster = PgCluster { dir, bin, port: 0, as_postgres };
        if as_postgres {
            let ok = Command::new("chown").args(["postgres:postgres"]).arg(cluster.dir.path()).status().is_ok_and(|s| s.success());
            assert!(ok, "chown of {} to postgres failed", cluster.dir.path().display());
        }
        let data = cluster.data_dir();
        let out = cluster.run("initdb", &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        // Two agents' ports may race for the same free port: try a few.
        let mut cluster = cluster;
        for attempt in 0..5 {
            cluster.port = free_loopback_port();
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                cluster.port,
                cluster.dir.path().display()
            );
            let log = cluster.dir.path().join("server.log");
            let out = cluster.run("pg_ctl", &["-D", data.to_str().unwrap(), "-o", &opts, "-l", log.to_str().unwrap(), "-w", "-t", "60", "start"]);
            if out.status.success() {
                return cluster;
            }
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(attempt < 4 && log_text.contains("Address already in use"), "pg_ctl start failed: {}\n{log_text}", String::from_utf8_lossy(&out.stderr));
        }
        unreachable!()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).current_dir(self.dir.path()).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's URL for database `db` (created with [`PgCluster::create_database`]).
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn create_database(&self, name: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!("CREATE DATABASE \"{name}\""))
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "CREATE DATABASE {name}: {}", String::from_utf8_lossy(&out.stderr));
        self.url(name)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
    }
}
