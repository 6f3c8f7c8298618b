//! Connecting to the PostgreSQL replica of `[replica]`: the URL, the password from outside the
//! file, TLS, and errors that say what to check (never the password).
//!
//! TLS is rustls (the same as the HTTP clients') and always verifies the server's certificate
//! and its host name (libpq's `verify-full`): the OS certificate store plus `[replica] ca_file`.
//! There is no "accept any certificate". Whether TLS is used is [`pg_config`]'s rule.

use super::db::{DbError, PgConn, PgTls};
use crate::config::ReplicaConfig;
use crate::secrets::Secret;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long a connection attempt may take before it is reported.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The URL as it may be shown: without query (options) or password.
pub fn shown_url(replica: &ReplicaConfig) -> String {
    match url::Url::parse(&replica.url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "[replica] url".to_string(),
    }
}

/// How the connection to the replica is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No TLS: every address it connects to is this machine's (loopback, or a Unix socket).
    Plain,
    /// TLS, the certificate and host name verified; a server without TLS is refused.
    VerifiedTls,
}

/// `[replica] url` as the client's settings, and the transport. The rule:
/// - `sslmode=require`, `verify-ca` or `verify-full`: verified TLS, to any host;
/// - no `sslmode`, or `prefer`: verified TLS to another host than this machine; to loopback none
///   (nothing leaves the machine, and libpq's `prefer` would accept any certificate there);
/// - `ca_file` set (and no `sslmode`): verified TLS, even to loopback;
/// - `sslmode=disable`: loopback only (refused for another host, and with `ca_file`).
///
/// "Another host" looks at every host the client may try (also `host=`/`hostaddr=` in the
/// query; `hostaddr` is where it connects). The error reads after "[replica] url".
pub fn pg_config(url: &str, has_ca_file: bool) -> Result<(postgres::Config, Transport), String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut sslmode = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = url::form_urlencoded::parse(pair.as_bytes()).next().unwrap_or_default();
        match key.as_ref() {
            "sslmode" => sslmode = Some(value.into_owned()),
            "sslrootcert" => return Err("sets sslrootcert: name the CA's PEM file with [replica] ca_file instead".into()),
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(format!(
                    "sets {key}: Syncmon does not use client certificates; authenticate with a password (password_env, or `syncmon creds replica`)"
                ))
            }
            _ => kept.push(pair),
        }
    }
    // The client knows only disable/prefer/require: the mode is set below, not parsed.
    let rest = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    let mut config: postgres::Config = rest.parse().map_err(|e| format!("is not a PostgreSQL URL: {e}"))?;
    let local = connects_locally(&config);
    let transport = match sslmode.as_deref() {
        Some("require" | "verify-ca" | "verify-full") => Transport::VerifiedTls,
        None | Some("prefer") if has_ca_file || !local => Transport::VerifiedTls,
        None | Some("prefer") => Transport::Plain,
        Some("disable") if !local => {
            return Err("has sslmode=disable but names another host than this machine: the password and the data would cross the \
                 network unencrypted. Remove sslmode (Syncmon then uses TLS and verifies the server's certificate), or reach the \
                 server through an SSH tunnel (ssh -L 5433:127.0.0.1:5432 db-host) and write postgresql://…@127.0.0.1:5433/…"
                .into())
        }
        Some("disable") if has_ca_file => return Err("has sslmode=disable, but [replica] ca_file is only for TLS: remove one of them".into()),
        Some("disable") => Transport::Plain,
        Some(other) => {
            return Err(format!(
                "has sslmode={other}; write verify-full (or require, verify-ca: all verify the certificate and the host name), or \
                 disable for a server on this machine"
            ))
        }
    };
    config.ssl_mode(match transport {
        Transport::Plain => postgres::config::SslMode::Disable,
        Transport::VerifiedTls => postgres::config::SslMode::Require,
    });
    Ok((config, transport))
}

/// Whether every address the client may connect to is this machine's.
fn connects_locally(config: &postgres::Config) -> bool {
    let (hosts, addrs) = (config.get_hosts(), config.get_hostaddrs());
    (0..hosts.len().max(addrs.len())).all(|i| match (addrs.get(i), hosts.get(i)) {
        (Some(ip), _) => ip.is_loopback(),
        (None, Some(postgres::config::Host::Tcp(name))) => is_loopback_name(name),
        _ => true, // a Unix socket
    })
}

pub(crate) fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The certificates of `[replica] ca_file`; the reason it cannot be used otherwise.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a readable PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----); export the CA certificate as PEM (Base64), not DER", path.display()));
    }
    let (_, unusable) = rustls::RootCertStore::empty().add_parsable_certificates(certs.iter().cloned());
    if unusable > 0 {
        return Err(format!("{}: {unusable} of its certificates cannot serve as a CA (not a valid X.509 certificate)", path.display()));
    }
    Ok(certs)
}

/// The OS certificate store, read once per process (as reqwest reads it per client).
fn os_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// rustls trusting the OS store and `ca_file`; ring, as reqwest's.
fn verified_tls(replica: &ReplicaConfig) -> Result<PgTls, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(os_roots().iter().cloned());
    roots.add_parsable_certificates(replica.ca.iter().cloned());
    if roots.is_empty() {
        return Err("no CA certificate to verify the PostgreSQL server with: the operating system's certificate store is empty or \
             unreadable; set [replica] ca_file to the CA that signed the server's certificate"
            .into());
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // As libpq 17 does; a server before 17 ignores it.
    tls.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(PgTls::Verified(Arc::new(tls)))
}

/// One connection to the replica's database.
pub fn connect(replica: &ReplicaConfig, password: Option<&Secret>) -> Result<PgConn, String> {
    let (mut config, transport) = pg_config(&replica.url, replica.ca_file.is_some()).map_err(|why| format!("[replica] url {why}"))?;
    if let Some(p) = password {
        config.password(p.expose());
    }
    config.application_name("syncmon");
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let tls = match transport {
        Transport::Plain => PgTls::Plain,
        Transport::VerifiedTls => verified_tls(replica)?,
    };
    PgConn::connect(&config, &tls).map_err(|e| explain(replica, &e))
}

/// The rustls error inside a failed handshake (postgres → io::Error → rustls).
fn tls_error(e: &DbError) -> Option<&rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    for _ in 0..8 {
        let c = cause?;
        if let Some(tls) = c.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // io::Error's `source` skips the error it wraps.
        cause = match c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner),
            None => c.source(),
        };
    }
    None
}

/// What to do about a refused certificate.
fn certificate_hint(replica: &ReplicaConfig, e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer => match &replica.ca_file {
            None => "this machine does not trust the CA that signed the server's certificate: set [replica] ca_file to the CA that signed the server's certificate (PEM)".into(),
            Some(file) => format!("neither [replica] ca_file ({file}) nor the OS store holds the CA that signed the server's certificate: set [replica] ca_file to the CA that signed the server's certificate (PEM)"),
        },
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "the server's certificate is for another name than the host in [replica] url: write the host name the certificate names (its subjectAltName), or have the server's certificate issued for this host".into()
        }
        C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => {
            "the server's certificate is out of its validity period: renew it (or correct this machine's clock)".into()
        }
        _ => "the server's certificate was refused: check it, and [replica] ca_file".into(),
    }
}

/// PostgreSQL's refusal, with what to do about it.
fn explain(replica: &ReplicaConfig, e: &DbError) -> String {
    let url = shown_url(replica);
    let mut text = e.to_string();
    // The client's own words stop at the kind ("error performing TLS handshake"): add why.
    // (A server's refusal is already in its own words.)
    let client_error = match e {
        DbError::Postgres(pg) if pg.as_db_error().is_none() => Some(pg),
        _ => None,
    };
    if let Some(pg) = client_error {
        let mut cause = std::error::Error::source(pg);
        for _ in 0..4 {
            let Some(c) = cause else { break };
            text = format!("{text}: {c}");
            cause = c.source();
        }
    }
    let hint = if let Some(tls) = tls_error(e) {
        match tls {
            rustls::Error::InvalidCertificate(c) => certificate_hint(replica, c),
            _ => "the TLS handshake with the server failed: check the server's ssl settings and its log".into(),
        }
    } else if text.contains("server does not support TLS") {
        "the server does not accept TLS: turn it on in its postgresql.conf (ssl = on, ssl_cert_file, ssl_key_file); only for a server on this machine, sslmode=disable in [replica] url connects without TLS".into()
    } else if text.contains("no hostname provided for TLS") {
        "name the server by its host name in [replica] url: TLS verifies the server's certificate against it".into()
    } else if text.contains("no pg_hba.conf entry") && text.contains("no encryption") {
        "the server accepts only TLS connections from here: add ?sslmode=verify-full to [replica] url (and ca_file for a private CA)".into()
    } else if text.contains("password authentication failed") || text.contains("no password") || text.contains("password missing") {
        match &replica.password_env {
            Some(var) => format!("check the password in the environment variable {var} (named by [replica] password_env)"),
            None => "give the password in an environment variable named by [replica] password_env, or store it with `syncmon creds replica`".into(),
        }
    } else if text.contains("does not exist") && text.contains("database") {
        "create the database (e.g. `createdb -O <user> <database>`) or fix the database name in [replica] url".into()
    } else if text.contains("Connection refused") || text.contains("connection refused") {
        "check that PostgreSQL runs and listens on that host and port ([replica] url)".into()
    } else if text.contains("timed out") || text.contains("timeout") {
        format!("no answer within {} s: check the host and port in [replica] url, and the network between", CONNECT_TIMEOUT.as_secs())
    } else if text.contains("no pg_hba.conf entry") {
        "the server does not let this user in from here: add a line for it in the server's pg_hba.conf".into()
    } else {
        "check [replica] url and the server's log".into()
    };
    format!("cannot connect to the PostgreSQL replica {url}: {text}; {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::db::Db;
    use std::cell::RefCell;
    use syncmon_testpg::PgCluster;

    /// `[replica]` as a config file gives it (ca_file read and checked on load).
    fn replica(url: &str, ca_file: Option<&Path>) -> ReplicaConfig {
        let ca = ca_file.map(|f| format!("ca_file = \"{}\"\n", f.display())).unwrap_or_default();
        let text = format!(
            "[replica]\nurl = \"{url}\"\n{ca}\n[[connection]]\nid = \"shop\"\nbase_url = \"https://api.example.com/c\"\nauth = \"oauth2\"\n\
             token_url = \"https://login.example.com/token\"\nclient_id = \"syncmon\"\n[[connection.entity]]\nname = \"items\"\n"
        );
        Config::parse(&text).unwrap_or_else(|e| panic!("{url}: {}", e.message)).replica.expect("[replica]")
    }

    fn refusal(replica: &ReplicaConfig) -> String {
        match connect(replica, None) {
            Ok(_) => panic!("{} connected", replica.url),
            Err(e) => e,
        }
    }

    #[test]
    fn tls_is_used_to_another_host_and_on_request_and_never_plain_beyond_loopback() {
        let transport = |url: &str, ca: bool| pg_config(url, ca).map(|(config, t)| (t, config.get_ssl_mode()));
        use postgres::config::SslMode::{Disable, Require};
        use Transport::{Plain, VerifiedTls};
        for (url, ca, want) in [
            ("postgresql://u@127.0.0.1/db", false, (Plain, Disable)),
            ("postgresql://u@localhost/db?sslmode=prefer", false, (Plain, Disable)),
            ("postgresql://u@[::1]:5433/db?sslmode=disable", false, (Plain, Disable)),
            ("postgresql://u@localhost/db", true, (VerifiedTls, Require)),
            ("postgresql://u@localhost/db?sslmode=verify-full", false, (VerifiedTls, Require)),
            ("postgresql://u@127.0.0.1/db?sslmode=verify-ca&application_name=x", false, (VerifiedTls, Require)),
            ("postgresql://u@db.example.com/db", false, (VerifiedTls, Require)),
            ("postgresql://u@db.example.com/db?sslmode=prefer", false, (VerifiedTls, Require)),
            ("postgresql://u@127.0.0.1/db?host=db.example.com", false, (VerifiedTls, Require)),
            ("postgresql://u@localhost/db?hostaddr=10.1.2.3", false, (VerifiedTls, Require)),
            // A tunnel: the name is verified, the connection goes to this machine.
            ("postgresql://u@db.example.com/db?hostaddr=127.0.0.1&sslmode=disable", false, (Plain, Disable)),
        ] {
            assert_eq!(transport(url, ca), Ok(want), "{url} (ca_file: {ca})");
        }
        let (config, _) = pg_config("postgresql://u@db.example.com:6432/db?sslmode=verify-full&connect_timeout=3", false).unwrap();
        assert_eq!((config.get_ports(), config.get_connect_timeout()), (&[6432][..], Some(&Duration::from_secs(3))), "other options kept");
        for (url, why) in [
            ("postgresql://u@db.example.com/db?sslmode=disable", "unencrypted"),
            ("postgresql://u@localhost/db?hostaddr=10.1.2.3&sslmode=disable", "another host"),
            ("postgresql://u@localhost/db?sslmode=allow", "write verify-full"),
            ("postgresql://u@db.example.com/db?sslcert=c.pem&sslkey=k.pem", "client certificates"),
        ] {
            let err = pg_config(url, false).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn verified_tls_to_localhost_with_the_ca_file_runs_a_query() {
        let pg = PgCluster::start_with_tls();
        let r = replica(&format!("postgresql://postgres@localhost:{}/postgres", pg.port()), Some(pg.ca_file()));
        let db = Db::Postgres(Box::new(RefCell::new(connect(&r, None).expect("verified TLS to localhost"))));
        let (ssl, version): (i64, String) = db
            .query_row("SELECT CASE WHEN ssl THEN 1 ELSE 0 END, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!(ssl, 1, "the server sees a TLS connection");
        assert!(version.starts_with("TLSv1."), "{version}");
        assert_eq!(db.query_row("SELECT 40 + ?1", &[&2i64], |row| row.get::<_, i64>(0)).unwrap(), 42);
        // Without ca_file the loopback connection is plain, which this server refuses.
        let err = refusal(&replica(&format!("postgresql://postgres@localhost:{}/postgres", pg.port()), None));
        assert!(err.contains("no encryption") && err.contains("add ?sslmode=verify-full"), "{err}");
    }

    #[test]
    fn a_server_certificate_from_a_ca_not_trusted_here_is_refused_with_the_ca_file_hint() {
        let pg = PgCluster::start_with_tls();
        let err = refusal(&replica(&format!("postgresql://postgres@localhost:{}/postgres?sslmode=verify-full", pg.port()), None));
        assert!(err.contains("invalid peer certificate"), "{err}");
        assert!(err.contains("set [replica] ca_file to the CA that signed the server's certificate"), "{err}");
        assert!(err.starts_with(&format!("cannot connect to the PostgreSQL replica postgresql://postgres@localhost:{}/postgres:", pg.port())), "{err}");
    }

    #[test]
    fn a_server_certificate_for_another_name_is_refused() {
        let pg = PgCluster::start_with_tls();
        // The certificate names localhost only; 127.0.0.1 is the same server under another name.
        let err = refusal(&replica(&format!("postgresql://postgres@127.0.0.1:{}/postgres?sslmode=require", pg.port()), Some(pg.ca_file())));
        assert!(err.contains("not valid for name") && err.contains("127.0.0.1"), "{err}");
        assert!(err.contains("for another name than the host in [replica] url"), "{err}");
    }

    #[test]
    fn tls_asked_of_a_server_without_it_is_refused_with_what_to_turn_on() {
        let pg = PgCluster::start();
        let err = refusal(&replica(&format!("postgresql://postgres@127.0.0.1:{}/postgres?sslmode=require", pg.port()), None));
        assert!(err.contains("server does not support TLS") && err.contains("ssl = on"), "{err}");
    }
}
