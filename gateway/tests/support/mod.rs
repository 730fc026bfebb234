//! What the gateway's end-to-end tests share: certificates from a test CA, comuni served by
//! real nodes (`unione_node`) on ephemeral ports, and a TLS channel to the real gateway.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use unione_gateway::RunningGateway;
use unione_gateway::directory::{MemberEntry, ProvisionEntry};
use unione_kit::certs::{self, Kind};
use unione_kit::tls::TlsFiles;
use unione_kit::token;
use unione_kit::{ComuneProfile, Istat};
use unione_node::config::ServedComune;
use unione_node::{Function, NodeConfig, RunningNode};

/// The secrets of a test federation under `root`: a CA in `root/certs` and token keys in
/// `root/keys`. Returns the keys' folder (for the gateway's configuration) and a signer of
/// tokens.
pub fn secrets(root: &Path) -> (PathBuf, token::Signer) {
    certs::ensure_ca(&root.join("certs"), "Test federation").expect("CA");
    let keys = root.join("keys");
    token::ensure_keys(&keys).expect("token keys");
    let signer = token::Signer::load(&keys).expect("signer");
    (keys, signer)
}

/// Issues `kind`/`id` a certificate from the CA in `dir` (created before) and names its files.
pub fn tls_files(dir: &Path, kind: Kind, id: &str) -> TlsFiles {
    let issued = certs::issue(dir, kind, id).expect("certificate issued");
    TlsFiles {
        ca: certs::ca_cert_path(dir).display().to_string(),
        cert: issued.cert.display().to_string(),
        key: issued.key.display().to_string(),
    }
}

/// A comune a test node serves, with synthetic codes derived from its ISTAT code.
pub fn served(istat: &str, name: &str, population: i64, functions: &[Function]) -> ServedComune {
    ServedComune {
        profile: ComuneProfile {
            istat: Istat::parse(istat).expect("a six-digit code"),
            name: name.to_owned(),
            fiscal_code: format!("001{istat}00"),
            cadastral_code: "A001".to_owned(),
            segregation_code: "01".to_owned(),
            ipa_code: format!("c_{istat}"),
            population,
        },
        functions: functions.to_vec(),
    }
}

/// Starts node `id` serving `comuni`, with its data and certificate under `root` (the CA in
/// `root/certs`).
pub async fn start_node(root: &Path, id: &str, comuni: Vec<ServedComune>) -> RunningNode {
    unione_node::start(NodeConfig {
        node_id: id.to_owned(),
        listen: "127.0.0.1:0".to_owned(),
        data_dir: root.join(id).display().to_string(),
        tls: tls_files(&root.join("certs"), Kind::Node, id),
        comuni,
        ..NodeConfig::default()
    })
    .await
    .expect("the node starts")
}

/// A TLS channel to `gateway`, trusting only the test CA in `root/certs`.
pub async fn client(gateway: &RunningGateway, root: &Path) -> Channel {
    let ca = std::fs::read(certs::ca_cert_path(&root.join("certs"))).expect("CA");
    Channel::from_shared(format!("https://{}", gateway.addr))
        .expect("endpoint")
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("localhost"),
        )
        .expect("TLS")
        .connect()
        .await
        .expect("the gateway accepts TLS")
}

/// `request` with `token` as its bearer.
pub fn authorized<T>(token: &str, mut request: tonic::Request<T>) -> tonic::Request<T> {
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

/// A gateway configuration for a test under `root`: ephemeral port, the directory `file`,
/// token keys in `keys`, its certificate from the CA in `root/certs`, fast health probes.
pub fn gateway_config(root: &Path, file: &Path, keys: &Path) -> unione_gateway::GatewayConfig {
    unione_gateway::GatewayConfig {
        gateway_id: "gateway".into(),
        listen: "127.0.0.1:0".into(),
        data_dir: root.join("gateway").display().to_string(),
        directory_file: file.display().to_string(),
        token_keys_dir: keys.display().to_string(),
        health_interval_ms: 200,
        probe_timeout_ms: 1000,
        tls: tls_files(&root.join("certs"), Kind::Gateway, "gateway"),
        ..unione_gateway::GatewayConfig::default()
    }
}

/// A member of a test directory, with synthetic codes derived from its ISTAT code.
pub fn member(istat: &str, name: &str) -> MemberEntry {
    MemberEntry {
        istat: istat.to_owned(),
        name: name.to_owned(),
        fiscal_code: format!("001{istat}00"),
        cadastral_code: "I449".to_owned(),
        population: 10_000,
        province: "SP".to_owned(),
        peer_group: "test".to_owned(),
        ipa_code: format!("c_{istat}"),
        segregation_code: "01".to_owned(),
    }
}

/// Every function of comune `istat`, provided by `node`, as directory entries.
pub fn provisions(istat: &str, node: &str) -> Vec<ProvisionEntry> {
    ["registry", "payments", "quality"]
        .into_iter()
        .map(|f| ProvisionEntry {
            comune: istat.to_owned(),
            function: f.to_owned(),
            node: node.to_owned(),
        })
        .collect()
}
