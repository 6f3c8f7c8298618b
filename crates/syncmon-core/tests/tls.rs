//! TLS trust (source/tls.rs): a source behind HTTPS with a certificate from a private CA — as
//! behind an inspecting proxy — is refused with a message that says what to do, and synced once
//! the connection's `ca_file` names the CA. The HTTPS server is a TLS front on loopback
//! (rustls, a throwaway CA made by rcgen) forwarding to the simulated source.

mod common;

use common::{config_text, entities, Harness};
use std::sync::Arc;
use syncmon_core::config::Config;
use syncmon_core::engine::Outcome;
use syncmon_mock::{MockConfig, MockServer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA, a certificate for `localhost` signed by it, and a TLS front on loopback that forwards
/// each connection to `backend`. Answers the front's port and the CA's PEM file.
async fn tls_front(backend: std::net::SocketAddr, dir: &std::path::Path) -> (u16, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Syncmon test inspecting proxy CA");
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params").signed_by(&leaf_key, &ca, &ca_key).expect("leaf certificate");
    let ca_file = dir.join("proxy-root.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write the CA file");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(leaf.der().to_vec())], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())))
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the TLS front");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to forward.
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut upstream) = TcpStream::connect(backend).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    (port, ca_file)
}

async fn mock() -> MockServer {
    MockServer::start(MockConfig { entities: entities(&[("items", 80)]), ..Default::default() }).await.expect("the simulated source starts")
}

fn backend_addr(mock: &MockServer) -> std::net::SocketAddr {
    mock.base_url().trim_start_matches("http://").trim_end_matches('/').split('/').next().unwrap().parse().expect("the mock's address")
}

#[tokio::test]
async fn a_private_ca_is_refused_until_the_connection_names_it_in_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock().await;
    let (port, ca_file) = tls_front(backend_addr(&m), dir.path()).await;
    let base = format!("https://localhost:{port}");

    // Not in the OS store and not named: the certificate is refused, and the message says why
    // and what to do.
    let h = Harness::with_config(mock().await, config_text(&base, &["items"], "max_retries = 0", "")).await;
    let refused = h.sync("items").await;
    assert_ne!(refused.outcome, Outcome::CaughtUp, "an untrusted certificate must not be accepted");
    let why = refused.error.expect("a failure").message;
    assert!(why.contains("certificate") && why.contains("ca_file"), "the refusal says what to do: {why}");
    assert!(h.replica("items").is_empty(), "nothing was written");

    // Named in ca_file: the same source over the same HTTPS front syncs to the last record (one
    // page: the simulated source writes its next-page links as http://).
    let text = config_text(&base, &["items"], &format!("ca_file = {:?}", ca_file.to_str().unwrap()), "");
    let h = Harness::with_config(m, text).await;
    h.sync_ok("items").await;
    h.assert_converged("items");
    assert_eq!(h.replica("items").len(), 80);
}

#[test]
fn ca_file_is_read_relative_to_the_config_and_refused_when_missing_or_not_pem() {
    let dir = tempfile::tempdir().unwrap();
    let text = |file: &str| format!("[[connection]]\nid = \"erp\"\nbase_url = \"https://erp.example.com\"\nca_file = \"{file}\"\n");

    let missing = Config::parse_in(&text("certs/root.pem"), dir.path()).expect_err("a missing file is refused");
    let message = missing.to_string();
    assert!(message.contains("ca_file") && message.contains("root.pem") && message.contains("line 4"), "names key, file and line: {message}");

    std::fs::create_dir(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/root.der"), [0x30, 0x82, 0x01, 0x0a]).unwrap();
    let der = Config::parse_in(&text("certs/root.der"), dir.path()).expect_err("DER is refused");
    assert!(der.to_string().contains("PEM"), "says PEM is wanted: {der}");

    let empty = Config::parse_in(&text(" "), dir.path()).expect_err("an empty ca_file is refused");
    assert!(empty.to_string().contains("ca_file is empty"), "{empty}");

    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.path().join("certs/root.pem"), ca.pem()).unwrap();
    let config = Config::parse_in(&text("certs/root.pem"), dir.path()).expect("a PEM CA file is accepted");
    let loaded = config.connections[0].ca.as_ref().expect("the file was read");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded.path, dir.path().join("certs/root.pem"));
}
