//! Mutual TLS between gateways and nodes (rustls with the ring provider, the one crypto
//! provider of the whole tree), and the peer identity read from a verified certificate.

use std::path::Path;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Installs ring as rustls' process-wide crypto provider. Call once at start; later calls
/// are harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Paths of a TLS identity and the CA that verifies peers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TlsFiles {
    /// The federation CA certificate (PEM).
    pub ca: String,
    /// This server's certificate (PEM).
    pub cert: String,
    /// This server's private key (PEM).
    pub key: String,
}

impl TlsFiles {
    /// True when no file is named.
    pub fn is_empty(&self) -> bool {
        self.ca.is_empty() && self.cert.is_empty() && self.key.is_empty()
    }

    fn read(path: &str, what: &str) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(!path.is_empty(), "the {what} path is not configured");
        std::fs::read(Path::new(path)).with_context(|| format!("reading the {what} {path}"))
    }

    /// The identity (certificate and key).
    pub fn identity(&self) -> anyhow::Result<Identity> {
        Ok(Identity::from_pem(
            Self::read(&self.cert, "certificate")?,
            Self::read(&self.key, "key")?,
        ))
    }

    /// The CA certificate.
    pub fn ca(&self) -> anyhow::Result<Certificate> {
        Ok(Certificate::from_pem(Self::read(
            &self.ca,
            "CA certificate",
        )?))
    }

    /// A server config that requires a client certificate issued by the CA (mutual TLS).
    pub fn mutual_server(&self) -> anyhow::Result<ServerTlsConfig> {
        Ok(ServerTlsConfig::new()
            .identity(self.identity()?)
            .client_ca_root(self.ca()?))
    }

    /// A server config with no client certificate (the gateway's client-facing listener,
    /// where clients authenticate with a token).
    pub fn server(&self) -> anyhow::Result<ServerTlsConfig> {
        Ok(ServerTlsConfig::new().identity(self.identity()?))
    }

    /// A server config where a client certificate is optional but, when presented, must be
    /// one the CA issued (the gateway's client-facing listener: users come with a token, nodes
    /// calling through the gateway with their own certificate).
    pub fn server_optional_client(&self) -> anyhow::Result<ServerTlsConfig> {
        Ok(ServerTlsConfig::new()
            .identity(self.identity()?)
            .client_ca_root(self.ca()?)
            .client_auth_optional(true))
    }

    /// A client config presenting this identity and accepting only a peer whose certificate
    /// the CA issued for `peer_identity` (e.g. `sarzana.nodes.unione.internal`).
    pub fn mutual_client(&self, peer_identity: &str) -> anyhow::Result<ClientTlsConfig> {
        Ok(ClientTlsConfig::new()
            .ca_certificate(self.ca()?)
            .identity(self.identity()?)
            .domain_name(peer_identity))
    }

    /// The CA certificate as a rustls root store, for a client that builds its own rustls
    /// configuration (the gateway's revocation-aware connections to nodes).
    pub fn root_store(&self) -> anyhow::Result<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in pem_certificates(&Self::read(&self.ca, "CA certificate")?)
            .with_context(|| format!("the CA certificate {}", self.ca))?
        {
            roots
                .add(cert)
                .with_context(|| format!("the CA certificate {}", self.ca))?;
        }
        Ok(roots)
    }

    /// The certificate chain and private key, as rustls takes them.
    pub fn rustls_identity(
        &self,
    ) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let chain = pem_certificates(&Self::read(&self.cert, "certificate")?)
            .with_context(|| format!("the certificate {}", self.cert))?;
        let key = PrivateKeyDer::from_pem_slice(&Self::read(&self.key, "key")?)
            .with_context(|| format!("the key {}", self.key))?;
        Ok((chain, key))
    }
}

/// How a certificate fingerprint starts: the digest's name.
pub const FINGERPRINT_PREFIX: &str = "sha256:";

/// The fingerprint of a DER certificate, as the federation directory lists revoked ones:
/// `sha256:` and the 64 lowercase hex digits of the SHA-256 of the DER bytes (the same digits
/// as `openssl x509 -in cert.pem -outform DER | sha256sum`).
pub fn fingerprint(der: &[u8]) -> String {
    format!("{FINGERPRINT_PREFIX}{}", hex::encode(Sha256::digest(der)))
}

/// The certificates of a PEM text, in order, as DER. Refuses a text with none.
pub fn pem_certificates(pem: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .context("not valid PEM")?;
    anyhow::ensure!(!certs.is_empty(), "no CERTIFICATE block in the PEM text");
    Ok(certs)
}

/// The DNS identities (subject alternative names) of a DER certificate.
pub fn dns_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            _ => None,
        })
        .collect()
}

/// The id of the peer of a request, read from its verified client certificate: the first DNS
/// name ending in `.{suffix}`, without the suffix.
pub fn peer_id<T>(request: &tonic::Request<T>, suffix: &str) -> Option<String> {
    let certs = request.peer_certs()?;
    id_in(certs.first()?.as_ref(), suffix)
}

/// Like [`peer_id`], for an HTTP request as a tower service under a tonic server sees it.
pub fn http_peer_id<B>(request: &http::Request<B>, suffix: &str) -> Option<String> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let info = request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()?;
    let certs = info.peer_certs()?;
    id_in(certs.first()?.as_ref(), suffix)
}

/// The verified client certificate (the end entity, DER) of the peer of an HTTP request as a
/// tower service under a tonic server sees it; `None` when the client presented none.
pub fn http_peer_cert<B>(request: &http::Request<B>) -> Option<CertificateDer<'static>> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let info = request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()?;
    info.peer_certs()?.first().cloned()
}

fn id_in(der: &[u8], suffix: &str) -> Option<String> {
    dns_names(der)
        .into_iter()
        .find_map(|name| name.strip_suffix(&format!(".{suffix}")).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{self, Kind};

    /// The fingerprint is the SHA-256 of the DER, whatever the PEM's layout.
    #[test]
    fn fingerprints_are_the_sha256_of_the_der() {
        let dir = tempfile::tempdir().expect("tempdir");
        certs::ensure_ca(dir.path(), "Test").expect("CA");
        let issued = certs::issue(dir.path(), Kind::Node, "luni").expect("issued");
        let pem = std::fs::read(&issued.cert).expect("cert");
        let chain = pem_certificates(&pem).expect("one certificate");
        assert_eq!(chain.len(), 1);
        let print = fingerprint(chain[0].as_ref());
        assert_eq!(
            print,
            format!("sha256:{}", hex::encode(Sha256::digest(chain[0].as_ref())))
        );
        assert_eq!(print.len(), FINGERPRINT_PREFIX.len() + 64);
        assert!(
            print[FINGERPRINT_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{print}"
        );
        // A certificate reissued to the same node has another fingerprint.
        let again = certs::issue(dir.path(), Kind::Node, "luni").expect("reissued");
        let der = pem_certificates(&std::fs::read(&again.cert).expect("cert")).expect("PEM");
        assert_ne!(fingerprint(der[0].as_ref()), print);

        assert!(pem_certificates(b"not a certificate").is_err());
    }

    #[test]
    fn rustls_identities_and_roots_load_from_the_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        certs::ensure_ca(dir.path(), "Test").expect("CA");
        let issued = certs::issue(dir.path(), Kind::Gateway, "g").expect("issued");
        let files = TlsFiles {
            ca: certs::ca_cert_path(dir.path()).display().to_string(),
            cert: issued.cert.display().to_string(),
            key: issued.key.display().to_string(),
        };
        assert_eq!(files.root_store().expect("roots").len(), 1);
        let (chain, _key) = files.rustls_identity().expect("identity");
        assert_eq!(chain.len(), 1);
        let missing = TlsFiles {
            key: dir.path().join("none.key").display().to_string(),
            ..files
        };
        assert!(missing.rustls_identity().is_err());
    }
}
