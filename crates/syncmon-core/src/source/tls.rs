//! What the HTTP clients trust. Every client verifies TLS (never switched off): the operating
//! system's certificate store (rustls-native-certs: the Windows certificate store, the macOS
//! Keychain, the distribution's bundle on Linux — so an inspecting proxy's root that IT installed
//! there is trusted) plus the bundled Mozilla roots, and for a connection or target with
//! `ca_file` the certificates of that PEM file as well (a private CA, or a proxy's root that is
//! not in the OS store). Proxies come from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY
//! (reqwest reads them when a client is built).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The certificates of a connection's `ca_file`, read and parsed once when the config loads.
#[derive(Clone)]
pub struct CaFile {
    pub path: PathBuf,
    certs: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaFile({}, {} certificates)", self.path.display(), self.certs.len())
    }
}

impl CaFile {
    /// Reads a PEM file of one or more certificates; the reason it cannot be used otherwise.
    pub fn load(path: &Path) -> Result<CaFile, String> {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----); export the CA certificate as PEM (Base64), not DER",
                path.display()
            ));
        }
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("{}: not a readable PEM certificate file: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{} holds no certificate", path.display()));
        }
        Ok(CaFile { path: path.to_path_buf(), certs })
    }

    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

/// How long a client waits for a TCP connection (and the TLS handshake) before it gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client: rustls with the OS store and the bundled roots, plus `ca`'s certificates.
pub fn http_client(ca: Option<&CaFile>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("syncmon/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(60))
        // Redirects are followed by `call_once` and the token request, only within the
        // origin asked: the client's own policy would carry the credentials anywhere.
        .redirect(reqwest::redirect::Policy::none());
    for cert in ca.map(|c| c.certs.as_slice()).unwrap_or_default() {
        b = b.add_root_certificate(cert.clone());
    }
    b.build().expect("a TLS backend is compiled in")
}
