//! Mutual TLS between gateways and nodes (rustls with the ring provider, the one crypto
//! provider of the whole tree), and the peer identity read from a verified certificate.

use std::path::Path;

use anyhow::Context;
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

fn id_in(der: &[u8], suffix: &str) -> Option<String> {
    dns_names(der)
        .into_iter()
        .find_map(|name| name.strip_suffix(&format!(".{suffix}")).map(str::to_owned))
}
