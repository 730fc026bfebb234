//! Certificate revocation (DOMAIN.md, Federation; issue 6: "a node's certificate is
//! revoked"). The directory lists revoked certificates by fingerprint
//! ([`crate::directory::RevokedCertificate`]); the gateway refuses them on both of its paths:
//!
//! - **Gateway to node.** The gateway dials nodes with its own rustls client configuration
//!   ([`NodeDialer`]): a [`RevocationVerifier`] wraps rustls' WebPKI verifier (the federation
//!   CA, the name `{node}.nodes.unione.internal`) and also refuses a certificate whose
//!   fingerprint the directory revokes, naming the revocation. A dialer holds the revocations of
//!   one directory version; when they change, [`crate::live::live`] builds new pools (and the
//!   prober new channels), so no connection opened before a revocation keeps being used for new
//!   calls, while calls in flight finish on the old channels. TLS session resumption is off, so
//!   every connection is verified in full.
//! - **Node through the gateway.** A node calling through the gateway with a revoked client
//!   certificate is refused before anything else with UNAUTHENTICATED, reason
//!   `CERTIFICATE_REVOKED` ([`refusal`]), and the refusal is audited under the node's name.
//!
//! Not covered: nodes do not read the directory, so a node cannot tell that a *gateway's*
//! certificate was revoked; that takes the CA (reissue) or a CRL on the nodes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use hyper_util::rt::TokioIo;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::Code;
use tonic::transport::Endpoint;
use unione_kit::ApiError;
use unione_kit::certs::Kind;
use unione_kit::tls::TlsFiles;

use crate::directory::{NodeEntry, RevokedCertificate};

/// The ErrorInfo reason of a call refused for a revoked client certificate.
pub const CERTIFICATE_REVOKED: &str = "CERTIFICATE_REVOKED";

/// The revocation of `der`, when `revoked` (sorted by fingerprint, as in a validated
/// directory) lists it. Hashes nothing when nothing is revoked.
pub fn revocation<'a>(
    revoked: &'a [RevokedCertificate],
    der: &[u8],
) -> Option<&'a RevokedCertificate> {
    if revoked.is_empty() {
        return None;
    }
    let fingerprint = unione_kit::tls::fingerprint(der);
    revoked
        .binary_search_by(|r| r.fingerprint.as_str().cmp(&fingerprint))
        .ok()
        .and_then(|i| revoked.get(i))
}

/// What a refusal says of a revocation: whose certificate, when, why, and its fingerprint.
pub fn describe(r: &RevokedCertificate) -> String {
    format!(
        "the certificate {} of node {} was revoked on {} ({})",
        r.fingerprint, r.node, r.revoked_at, r.reason
    )
}

/// The refusal of a call made with a revoked client certificate: UNAUTHENTICATED, reason
/// `CERTIFICATE_REVOKED`, with the node, fingerprint and date as metadata (the caller holds
/// that certificate, so this tells it nothing it does not know).
pub fn refusal(r: &RevokedCertificate) -> ApiError {
    ApiError::new(
        Code::Unauthenticated,
        CERTIFICATE_REVOKED,
        format!("{}: the federation no longer trusts it", describe(r)),
    )
    .with_metadata("node", r.node.clone())
    .with_metadata("fingerprint", r.fingerprint.clone())
    .with_metadata("revoked_at", r.revoked_at.clone())
}

/// Why a handshake was refused: the certificate is revoked (the message names the revocation).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Revoked(String);

/// Verifies a node's certificate as rustls' WebPKI verifier does (chain to the federation CA,
/// validity, the expected name), and refuses it when the directory revokes it.
#[derive(Debug)]
pub struct RevocationVerifier {
    inner: Arc<WebPkiServerVerifier>,
    revoked: Arc<[RevokedCertificate]>,
}

impl RevocationVerifier {
    /// A verifier trusting `roots` and refusing the certificates of `revoked` (sorted by
    /// fingerprint).
    pub fn new(
        roots: rustls::RootCertStore,
        revoked: Arc<[RevokedCertificate]>,
    ) -> anyhow::Result<Self> {
        let inner = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .context("the federation CA as a verifier's root")?;
        Ok(Self { inner, revoked })
    }
}

impl ServerCertVerifier for RevocationVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(r) = revocation(&self.revoked, end_entity.as_ref()) {
            tracing::warn!(
                server = %server_name.to_str(),
                node = %r.node,
                fingerprint = %r.fingerprint,
                "refusing a revoked certificate"
            );
            return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(Revoked(describe(r)))),
            )));
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// How the gateway dials nodes under one directory version: mutual TLS presenting the
/// gateway's certificate, verifying each node with a [`RevocationVerifier`], HTTP/2 by ALPN.
#[derive(Clone)]
pub struct NodeDialer {
    tls: TlsConnector,
}

impl NodeDialer {
    /// Reads the gateway's TLS files and refuses the certificates of `revoked` (sorted by
    /// fingerprint, as in a validated directory).
    pub fn new(files: &TlsFiles, revoked: &[RevokedCertificate]) -> anyhow::Result<Self> {
        let verifier = RevocationVerifier::new(files.root_store()?, revoked.into())?;
        let (chain, key) = files.rustls_identity()?;
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain, key)
        .context("the gateway's certificate and key")?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        // A resumed session skips certificate verification: every connection is verified.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Self {
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// The tonic endpoint of `node` and the connector that dials it. The endpoint's URI is
    /// `http://host:port` only because TLS happens in the connector, not in tonic.
    pub fn endpoint(
        &self,
        node: &NodeEntry,
        connect_timeout: Duration,
    ) -> anyhow::Result<(Endpoint, NodeConnector)> {
        let connector = self.connector(node, connect_timeout)?;
        let endpoint = Endpoint::from_shared(format!("http://{}", connector.address))
            .with_context(|| format!("node {}: endpoint", node.node_id))?;
        Ok((endpoint, connector))
    }

    /// The connector that dials `node`.
    pub fn connector(
        &self,
        node: &NodeEntry,
        connect_timeout: Duration,
    ) -> anyhow::Result<NodeConnector> {
        let uri: http::Uri = node
            .endpoint
            .parse()
            .with_context(|| format!("node {}: endpoint {}", node.node_id, node.endpoint))?;
        let address = uri
            .authority()
            .with_context(|| format!("node {}: endpoint {} has no host", node.node_id, uri))?
            .as_str()
            .to_owned();
        let server_name = ServerName::try_from(Kind::Node.identity(&node.node_id))
            .with_context(|| format!("node {}: identity", node.node_id))?;
        Ok(NodeConnector {
            tls: self.tls.clone(),
            server_name,
            address,
            node: node.node_id.clone(),
            timeout: connect_timeout,
        })
    }
}

/// Dials one node: TCP (no delay), then TLS as the node's identity, bounded by a timeout.
#[derive(Clone)]
pub struct NodeConnector {
    tls: TlsConnector,
    server_name: ServerName<'static>,
    address: String,
    node: String,
    timeout: Duration,
}

impl NodeConnector {
    /// `host:port` of the node.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The node's id.
    pub fn node(&self) -> &str {
        &self.node
    }
}

impl tower::Service<http::Uri> for NodeConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let dial = async {
                let tcp = TcpStream::connect(&this.address).await?;
                tcp.set_nodelay(true)?;
                this.tls.connect(this.server_name.clone(), tcp).await
            };
            match tokio::time::timeout(this.timeout, dial).await {
                Ok(Ok(stream)) => Ok(TokioIo::new(stream)),
                Ok(Err(err)) => Err(std::io::Error::new(
                    err.kind(),
                    format!("node {} at {}: {err}", this.node, this.address),
                )),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "node {} at {}: no answer within {} ms while connecting (TCP and TLS)",
                        this.node,
                        this.address,
                        this.timeout.as_millis()
                    ),
                )),
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;
    use tokio::net::TcpListener;
    use unione_kit::certs;

    /// A certificate for `kind`/`id` from the CA in `dir`, as TLS files.
    pub(crate) fn files(dir: &Path, kind: Kind, id: &str) -> TlsFiles {
        let issued = certs::issue(dir, kind, id).expect("issued");
        TlsFiles {
            ca: certs::ca_cert_path(dir).display().to_string(),
            cert: issued.cert.display().to_string(),
            key: issued.key.display().to_string(),
        }
    }

    fn der(files: &TlsFiles) -> CertificateDer<'static> {
        files.rustls_identity().expect("identity").0.remove(0)
    }

    fn revoked(der: &[u8], node: &str) -> RevokedCertificate {
        RevokedCertificate {
            fingerprint: unione_kit::tls::fingerprint(der),
            node: node.into(),
            reason: "key compromise".into(),
            revoked_at: "2026-12-06".into(),
        }
    }

    fn verify(verifier: &RevocationVerifier, cert: &CertificateDer<'_>, name: &str) -> String {
        let name = ServerName::try_from(name.to_owned()).expect("a DNS name");
        match verifier.verify_server_cert(cert, &[], &name, &[], UnixTime::now()) {
            Ok(_) => "ok".to_owned(),
            Err(err) => err.to_string(),
        }
    }

    /// The verifier accepts what the CA issued for the expected name, refuses another name as
    /// WebPKI does, and refuses a revoked certificate naming its revocation, even one that is
    /// otherwise valid; the node's next certificate is accepted.
    #[test]
    fn the_verifier_refuses_revoked_certificates() {
        unione_kit::tls::install_crypto_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        certs::ensure_ca(dir.path(), "Test").expect("CA");
        let luni = der(&files(dir.path(), Kind::Node, "luni"));
        let sarzana = der(&files(dir.path(), Kind::Node, "sarzana"));
        let roots = files(dir.path(), Kind::Gateway, "g")
            .root_store()
            .expect("roots");

        let none = RevocationVerifier::new(roots.clone(), Arc::from(Vec::new())).expect("v");
        assert_eq!(verify(&none, &luni, "luni.nodes.unione.internal"), "ok");
        let wrong = verify(&none, &luni, "sarzana.nodes.unione.internal");
        assert!(wrong.contains("not valid for name"), "{wrong}");

        let list = vec![revoked(&luni, "luni")];
        let verifier = RevocationVerifier::new(roots, Arc::from(list)).expect("v");
        let refused = verify(&verifier, &luni, "luni.nodes.unione.internal");
        assert!(
            refused.contains("revoked")
                && refused.contains(&unione_kit::tls::fingerprint(&luni))
                && refused.contains("node luni")
                && refused.contains("2026-12-06"),
            "{refused}"
        );
        assert_eq!(
            verify(&verifier, &sarzana, "sarzana.nodes.unione.internal"),
            "ok",
            "other certificates are unaffected"
        );
        let reissued = der(&files(dir.path(), Kind::Node, "luni"));
        assert_eq!(
            verify(&verifier, &reissued, "luni.nodes.unione.internal"),
            "ok",
            "the node's new certificate is trusted"
        );
    }

    #[test]
    fn revoked_client_certificates_are_unauthenticated() {
        let dir = tempfile::tempdir().expect("tempdir");
        certs::ensure_ca(dir.path(), "Test").expect("CA");
        let luni = der(&files(dir.path(), Kind::Node, "luni"));
        let other = der(&files(dir.path(), Kind::Node, "arcola"));
        let list = [revoked(&luni, "luni")];
        assert!(revocation(&list, other.as_ref()).is_none());
        assert!(revocation(&[], luni.as_ref()).is_none());
        let r = revocation(&list, luni.as_ref()).expect("revoked");
        let err = refusal(r);
        assert_eq!(
            (err.code, err.reason),
            (Code::Unauthenticated, CERTIFICATE_REVOKED)
        );
        let status = tonic::Status::from(err);
        assert!(status.message().contains("node luni"), "{status:?}");
    }

    /// The connector completes a real handshake with a node's TLS server, and fails it, naming
    /// the revocation, once the node's certificate is revoked.
    #[tokio::test]
    async fn the_connector_dials_and_refuses_revoked_nodes() {
        unione_kit::tls::install_crypto_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        certs::ensure_ca(dir.path(), "Test").expect("CA");
        let node_files = files(dir.path(), Kind::Node, "luni");
        let gateway = files(dir.path(), Kind::Gateway, "g");
        let (chain, key) = node_files.rustls_identity().expect("identity");
        let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain.clone(), key)
        .expect("server config");
        server.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = acceptor.accept(tcp).await;
                });
            }
        });
        let node = NodeEntry {
            node_id: "luni".into(),
            endpoint: format!("https://{addr}"),
        };

        let dialer = NodeDialer::new(&gateway, &[]).expect("dialer");
        let (endpoint, mut connector) = dialer
            .endpoint(&node, Duration::from_secs(2))
            .expect("endpoint");
        assert_eq!(endpoint.uri().to_string(), format!("http://{addr}/"));
        let io = tower::Service::call(&mut connector, endpoint.uri().clone())
            .await
            .expect("the handshake succeeds");
        assert_eq!(
            io.inner().get_ref().1.alpn_protocol(),
            Some(&b"h2"[..]),
            "HTTP/2 by ALPN"
        );

        let list = [revoked(chain[0].as_ref(), "luni")];
        let dialer = NodeDialer::new(&gateway, &list).expect("dialer");
        let (endpoint, mut connector) = dialer
            .endpoint(&node, Duration::from_secs(2))
            .expect("endpoint");
        let err = tower::Service::call(&mut connector, endpoint.uri().clone())
            .await
            .expect_err("a revoked node is refused");
        let text = err.to_string();
        assert!(
            text.contains("node luni") && text.contains("revoked on 2026-12-06"),
            "{text}"
        );
    }
}
