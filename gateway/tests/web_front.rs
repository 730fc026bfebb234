//! The gateway's web front over the wire: HTTPS with a configured certificate (and nothing
//! served over plain HTTP on that port), JSON errors with the gRPC reason, and the shared
//! endpoints answered through the gateway's own gRPC listener.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use unione_gateway::GatewayConfig;
use unione_gateway::config::WebConfig;
use unione_kit::certs::{self, Kind};
use unione_kit::tls::TlsFiles;
use unione_kit::token::{self, Role};

fn config(dir: &Path, web: WebConfig) -> GatewayConfig {
    let certs_dir = dir.join("certs");
    certs::ensure_ca(&certs_dir, "Test federation").expect("CA");
    let issued = certs::issue(&certs_dir, Kind::Gateway, "gateway").expect("gateway cert");
    let keys = dir.join("keys");
    token::ensure_keys(&keys).expect("token keys");
    GatewayConfig {
        gateway_id: "gateway".to_owned(),
        listen: "127.0.0.1:0".to_owned(),
        data_dir: dir.join("gateway").display().to_string(),
        token_keys_dir: keys.display().to_string(),
        tls: TlsFiles {
            ca: certs::ca_cert_path(&certs_dir).display().to_string(),
            cert: issued.cert.display().to_string(),
            key: issued.key.display().to_string(),
        },
        web,
        ..GatewayConfig::default()
    }
}

/// One HTTP/1.1 exchange on `stream`; returns the status line and the body.
async fn exchange<S>(mut stream: S, path: &str, token: Option<&str>) -> (String, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("response read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn the_web_front_serves_https_with_its_configured_certificate() {
    unione_kit::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = config(dir.path(), WebConfig::default());
    // The federation's gateway certificate names `localhost`: it stands in for a public one.
    let web = WebConfig {
        listen: "127.0.0.1:0".to_owned(),
        cert: base.tls.cert.clone(),
        key: base.tls.key.clone(),
        kiosk_idle_seconds: 45,
        ..WebConfig::default()
    };
    let signer = token::Signer::load(Path::new(&base.token_keys_dir)).expect("signer");
    let gateway = unione_gateway::start(GatewayConfig {
        web,
        ..base.clone()
    })
    .await
    .expect("the gateway starts");
    let front = gateway.web.as_ref().expect("the web front is on");
    assert!(front.tls);
    let addr = front.addr;

    let mut roots = rustls::RootCertStore::empty();
    let ca_pem = std::fs::read(&base.tls.ca).expect("CA");
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca_pem) {
        roots.add(cert.expect("CA PEM")).expect("CA added");
    }
    let connector = tokio_rustls::TlsConnector::from(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ));
    let connect = || async {
        let tcp = TcpStream::connect(addr).await.expect("TCP");
        connector
            .connect("localhost".try_into().expect("server name"), tcp)
            .await
            .expect("TLS handshake with the web front")
    };

    let (status, body) = exchange(connect().await, "/api/settings", None).await;
    assert!(status.contains("200"), "{status}");
    let settings: serde_json::Value = serde_json::from_str(&body).expect("JSON settings");
    assert_eq!(settings["kiosk_idle_seconds"], 45);

    let citizen = signer.issue(
        "citizen-1",
        Role::Citizen,
        Vec::new(),
        Some("RSSMRA85T10E463U".to_owned()),
        1,
    );
    let (status, body) = exchange(connect().await, "/api/session", Some(&citizen)).await;
    assert!(status.contains("200"), "{status} {body}");
    let session: serde_json::Value = serde_json::from_str(&body).expect("JSON session");
    assert_eq!(session["role"], "citizen");
    assert_eq!(session["fiscal_number"], "RSSMRA85T10E463U");

    // The members come from the gateway's own gRPC listener (no directory here: none).
    let (status, body) = exchange(connect().await, "/api/comuni", None).await;
    assert!(status.contains("200"), "{status} {body}");
    assert_eq!(body, r#"{"comuni":[]}"#);

    let (status, body) = exchange(connect().await, "/api/session", Some("not-a-token")).await;
    assert!(status.contains("401"), "{status}");
    let error: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
    assert_eq!(error["error"]["reason"], "TOKEN_INVALID");
    assert_eq!(error["error"]["field"], "authorization");

    // Plain HTTP on the HTTPS port gets no page.
    let tcp = TcpStream::connect(addr).await.expect("TCP");
    let (status, _) = exchange(tcp, "/api/settings", None).await;
    assert!(!status.contains("200"), "plain HTTP answered: {status}");

    gateway.stop().await.expect("stops");
}

#[tokio::test]
async fn the_web_front_is_off_unless_configured_and_refuses_bad_tokens_as_json() {
    unione_kit::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = config(dir.path(), WebConfig::default());
    let off = unione_gateway::start(base.clone()).await.expect("starts");
    assert!(off.web.is_none(), "no web.listen, no web front");
    off.stop().await.expect("stops");

    let gateway = unione_gateway::start(GatewayConfig {
        web: WebConfig {
            listen: "127.0.0.1:0".to_owned(),
            ..WebConfig::default()
        },
        ..base
    })
    .await
    .expect("starts");
    let front = gateway.web.as_ref().expect("on");
    assert!(!front.tls);
    let tcp = TcpStream::connect(front.addr).await.expect("TCP");
    let (status, body) = exchange(tcp, "/api/comuni", Some("two words")).await;
    assert!(status.contains("401"), "{status}");
    let error: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
    assert_eq!(error["error"]["reason"], "TOKEN_MALFORMED");
    assert_eq!(error["error"]["code"], "UNAUTHENTICATED");

    let tcp = TcpStream::connect(front.addr).await.expect("TCP");
    let (status, body) = exchange(tcp, "/nowhere", None).await;
    assert!(status.contains("404"), "{status}");
    assert!(body.contains(r#""code":"NOT_FOUND""#), "{body}");
    gateway.stop().await.expect("stops");
}
