//! A throwaway PostgreSQL cluster for tests and benchmarks: Debian's server binaries
//! (`postgresql`, installed by `scripts/install-system-deps.sh`), a data directory under a
//! temporary directory, listening on a free loopback port only, stopped and removed on drop.
//!
//! As root (CI, containers) the server runs as the `postgres` user, since `initdb` refuses root.
//!
//! [`PgCluster::start_with_tls`] serves TLS only (`hostssl` in pg_hba.conf), with a certificate
//! for `localhost` from a throwaway CA whose certificate is [`PgCluster::ca_file`].

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    /// The CA that signed the server's certificate (PEM), for a TLS cluster.
    ca_file: Option<PathBuf>,
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
        PgCluster::start_as(false)
    }

    /// A cluster that accepts only TLS connections (plain ones find no pg_hba.conf entry), with
    /// a server certificate for `localhost` (not for 127.0.0.1) signed by a throwaway CA.
    pub fn start_with_tls() -> PgCluster {
        PgCluster::start_as(true)
    }

    fn start_as(tls: bool) -> PgCluster {
        let bin = server_bin_dir()
            .unwrap_or_else(|| panic!("PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/install-system-deps.sh"));
        let dir = tempfile::Builder::new().prefix("syncmon-pg-").tempdir().expect("a temporary directory");
        let as_postgres = is_root();
        let mut cluster = PgCluster { dir, bin, port: 0, as_postgres, ca_file: None };
        if as_postgres {
            let ok = Command::new("chown").args(["postgres:postgres"]).arg(cluster.dir.path()).status().is_ok_and(|s| s.success());
            assert!(ok, "chown of {} to postgres failed", cluster.dir.path().display());
        }
        let data = cluster.data_dir();
        let out = cluster.run("initdb", &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let tls_opts = if tls { cluster.set_up_tls() } else { String::new() };
        // Two agents' ports may race for the same free port: try a few.
        for attempt in 0..5 {
            cluster.port = free_loopback_port();
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off{tls_opts}",
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

    /// Writes the CA, the server's certificate and key (0600, owned by the server's user) and a
    /// pg_hba.conf with `hostssl` lines only; returns the server options that turn TLS on.
    fn set_up_tls(&mut self) -> String {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "syncmon-testpg throwaway CA");
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let server_key = rcgen::KeyPair::generate().expect("server key");
        let server = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("server params")
            .signed_by(&server_key, &ca, &ca_key)
            .expect("server certificate");
        let dir = self.dir.path();
        let (ca_file, cert_file, key_file) = (dir.join("ca.pem"), dir.join("server.crt"), dir.join("server.key"));
        std::fs::write(&ca_file, ca.pem()).expect("write ca.pem");
        std::fs::write(&cert_file, server.pem()).expect("write server.crt");
        std::fs::write(&key_file, server_key.serialize_pem()).expect("write server.key");
        // The server refuses a key that others can read, or that another user owns.
        let ok = Command::new("chmod").arg("0600").arg(&key_file).status().is_ok_and(|s| s.success());
        assert!(ok, "chmod 0600 {}", key_file.display());
        if self.as_postgres {
            let ok = Command::new("chown").arg("postgres:postgres").arg(&cert_file).arg(&key_file).status().is_ok_and(|s| s.success());
            assert!(ok, "chown of the server's certificate and key to postgres failed");
        }
        let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n";
        std::fs::write(self.data_dir().join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        self.ca_file = Some(ca_file);
        format!(" -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}", cert_file.display(), key_file.display())
    }

    /// The PEM certificate of the CA that signed a TLS cluster's certificate
    /// ([`PgCluster::start_with_tls`]).
    pub fn ca_file(&self) -> &Path {
        self.ca_file.as_deref().expect("a cluster started with start_with_tls")
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

    /// Restarts the server (`pg_ctl restart`, same options): every connection is closed.
    pub fn restart(&self) {
        let data = self.data_dir();
        // With its log file, as at start: the server must not inherit (and hold open) our pipes.
        let log = self.dir.path().join("server.log");
        let out = self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-m", "fast", "-w", "-t", "60", "restart"]);
        assert!(out.status.success(), "pg_ctl restart failed: {}", String::from_utf8_lossy(&out.stderr));
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
