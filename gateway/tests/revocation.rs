//! A node's certificate revoked at run time (DOMAIN.md, Federation: a gateway "refuses rather
//! than trust a directory that may miss a revocation"; issue 6, tests: "a revoked
//! certificate"). Real nodes (`unione_node`), the real gateway, mutual TLS, SQLite.
//!
//! Two nodes, Ameglia's and Luni's. Luni's certificate is revoked by rewriting the directory
//! file: the running gateway picks it up, refuses to dial Luni's node (UNAVAILABLE) while
//! Ameglia is served throughout, and refuses Luni's node calling through it with the revoked
//! certificate (UNAUTHENTICATED, `CERTIFICATE_REVOKED`), auditing it. Luni's node gets a new
//! certificate from the CA, restarts with it, and is served again; the directory versions and
//! the audit log show the revocation.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use unione_gateway::GatewayConfig;
use unione_gateway::directory::{DirectoryFile, NodeEntry, RevokedCertificate};
use unione_kit::certs::{self, Kind};
use unione_kit::error::reason_and_field;
use unione_kit::names::routed;
use unione_kit::token::Role;
use unione_node::{Function, RunningNode};
use unione_proto::federation::v1::audit_service_client::AuditServiceClient;
use unione_proto::federation::v1::directory_service_client::DirectoryServiceClient;
use unione_proto::federation::v1::{
    AuditEntry, FederationHealth, GetFederationHealthRequest, ListAuditEntriesRequest,
    ServingStatus,
};
use unione_proto::quality::v1::GetKpiRequest;
use unione_proto::quality::v1::kpi_service_client::KpiServiceClient;

const AMEGLIA: &str = "011001";
const LUNI: &str = "011020";

async fn node(root: &Path, id: &str, istat: &str) -> RunningNode {
    let comune = support::served(istat, id, 10_000, &Function::ALL);
    support::start_node(root, id, vec![comune]).await
}

fn write(file: &Path, directory: &DirectoryFile) {
    std::fs::write(file, toml::to_string(directory).expect("toml")).expect("written");
}

/// Reads a KPI of `istat` through `channel`, with `token` if any.
async fn get_kpi(channel: &Channel, token: Option<&str>, istat: &str) -> Result<(), tonic::Status> {
    let request = routed(
        istat,
        GetKpiRequest {
            name: format!("comuni/{istat}/kpis/UQ0001"),
        },
    );
    let request = match token {
        Some(token) => support::authorized(token, request),
        None => request,
    };
    KpiServiceClient::new(channel.clone())
        .get_kpi(request)
        .await
        .map(|_| ())
}

/// Retries `get_kpi` until it succeeds, for at most 20 s.
async fn eventually_ok(channel: &Channel, token: &str, istat: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match get_kpi(channel, Some(token), istat).await {
            Ok(()) => return,
            Err(status) => assert!(
                Instant::now() < deadline,
                "{what}: still failing after 20 s: {status:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn health(channel: &Channel, token: &str) -> FederationHealth {
    DirectoryServiceClient::new(channel.clone())
        .get_federation_health(support::authorized(
            token,
            tonic::Request::new(GetFederationHealthRequest {}),
        ))
        .await
        .expect("health answers")
        .into_inner()
}

async fn wait_until(
    channel: &Channel,
    token: &str,
    what: &str,
    done: impl Fn(&FederationHealth) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = health(channel, token).await;
        if done(&h) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {h:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn member_health<'a>(
    h: &'a FederationHealth,
    istat: &str,
) -> Option<&'a unione_proto::federation::v1::MemberHealth> {
    h.members
        .iter()
        .find(|m| m.comune == format!("comuni/{istat}"))
}

/// A channel to the gateway presenting the certificate `cert` and key `key` (a node calling
/// through the gateway).
async fn as_node(
    gateway: &unione_gateway::RunningGateway,
    root: &Path,
    cert: &Path,
    key: &Path,
) -> Channel {
    let ca = std::fs::read(certs::ca_cert_path(&root.join("certs"))).expect("CA");
    let identity = Identity::from_pem(
        std::fs::read(cert).expect("certificate"),
        std::fs::read(key).expect("key"),
    );
    Channel::from_shared(format!("https://{}", gateway.addr))
        .expect("endpoint")
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .identity(identity)
                .domain_name("localhost"),
        )
        .expect("TLS")
        .connect()
        .await
        .expect("the gateway accepts the handshake: the CA issued the certificate")
}

async fn audit_entries(channel: &Channel, token: &str) -> Vec<AuditEntry> {
    AuditServiceClient::new(channel.clone())
        .list_audit_entries(support::authorized(
            token,
            tonic::Request::new(ListAuditEntriesRequest {
                page_size: 1000,
                ..Default::default()
            }),
        ))
        .await
        .expect("ListAuditEntries")
        .into_inner()
        .entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_node_certificate_is_refused_at_run_time_until_the_node_gets_a_new_one() {
    unione_kit::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let certs_dir = root.join("certs");
    let (keys, signer) = support::secrets(root);
    let admin = signer.issue("admin-1", Role::Admin, Vec::new(), None, 1);

    let ameglia = node(root, "ameglia", AMEGLIA).await;
    let luni = node(root, "luni", LUNI).await;
    let mut directory = DirectoryFile {
        members: vec![
            support::member(AMEGLIA, "Ameglia"),
            support::member(LUNI, "Luni"),
        ],
        nodes: vec![
            NodeEntry {
                node_id: "ameglia".into(),
                endpoint: format!("https://{}", ameglia.addr),
            },
            NodeEntry {
                node_id: "luni".into(),
                endpoint: format!("https://{}", luni.addr),
            },
        ],
        provisions: [
            support::provisions(AMEGLIA, "ameglia"),
            support::provisions(LUNI, "luni"),
        ]
        .concat(),
        revoked_certificates: Vec::new(),
    };
    let file = root.join("directory.toml");
    write(&file, &directory);
    let config = GatewayConfig {
        directory_refresh_ms: 200,
        ..support::gateway_config(root, &file, &keys)
    };
    let gateway = unione_gateway::start(config.clone())
        .await
        .expect("the gateway starts");
    let channel = support::client(&gateway, root).await;

    eventually_ok(&channel, &admin, AMEGLIA, "Ameglia before the revocation").await;
    eventually_ok(&channel, &admin, LUNI, "Luni before the revocation").await;

    // Luni's certificate (kept aside: the restart below reissues the files) is revoked.
    let issued = certs::paths(&certs_dir, Kind::Node, "luni");
    let (old_cert, old_key) = (root.join("luni-revoked.pem"), root.join("luni-revoked.key"));
    std::fs::copy(&issued.cert, &old_cert).expect("copied");
    std::fs::copy(&issued.key, &old_key).expect("copied");
    let der = unione_kit::tls::pem_certificates(&std::fs::read(&old_cert).expect("cert"))
        .expect("PEM")
        .remove(0);
    let fingerprint = unione_kit::tls::fingerprint(der.as_ref());
    directory.revoked_certificates.push(RevokedCertificate {
        fingerprint: fingerprint.clone(),
        node: "luni".into(),
        reason: "key compromise".into(),
        revoked_at: "2026-12-06".into(),
    });
    write(&file, &directory);
    wait_until(&channel, &admin, "directory version 2", |h| {
        h.directory_version == 2
    })
    .await;

    // The gateway no longer dials Luni's node; Ameglia is unaffected.
    let status = get_kpi(&channel, Some(&admin), LUNI)
        .await
        .expect_err("the revoked node is not trusted");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    for _ in 0..5 {
        get_kpi(&channel, Some(&admin), AMEGLIA)
            .await
            .expect("Ameglia is served throughout");
        let status = get_kpi(&channel, Some(&admin), LUNI)
            .await
            .expect_err("Luni stays refused");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
    // The prober's channels are new too: Luni shows NOT_SERVING, saying why.
    wait_until(&channel, &admin, "Luni not serving, revoked", |h| {
        member_health(h, LUNI).is_some_and(|m| {
            m.status == ServingStatus::NotServing as i32
                && m.functions.iter().all(|f| f.detail.contains("revoked"))
        }) && member_health(h, AMEGLIA).is_some_and(|m| m.status == ServingStatus::Serving as i32)
    })
    .await;

    // Luni's node calling through the gateway with the revoked certificate is refused, with or
    // without a token, before anything else.
    let revoked_node = as_node(&gateway, root, &old_cert, &old_key).await;
    for token in [None, Some(admin.as_str())] {
        let status = get_kpi(&revoked_node, token, LUNI)
            .await
            .expect_err("a revoked client certificate is refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_eq!(reason_and_field(&status).0, "CERTIFICATE_REVOKED");
        assert!(status.message().contains(&fingerprint), "{status:?}");
    }
    // Ameglia's node, with its own certificate, is not.
    let ameglia_certs = certs::paths(&certs_dir, Kind::Node, "ameglia");
    let ameglia_node = as_node(&gateway, root, &ameglia_certs.cert, &ameglia_certs.key).await;
    get_kpi(&ameglia_node, None, AMEGLIA)
        .await
        .expect("a node calls through the gateway for its own comune");

    // Luni's node gets a new certificate from the CA and restarts with it (on a new port).
    luni.stop().await.expect("the node stops");
    let luni = node(root, "luni", LUNI).await;
    let reissued = unione_kit::tls::pem_certificates(&std::fs::read(&issued.cert).expect("cert"))
        .expect("PEM")
        .remove(0);
    assert_ne!(unione_kit::tls::fingerprint(reissued.as_ref()), fingerprint);
    directory.nodes[1].endpoint = format!("https://{}", luni.addr);
    write(&file, &directory);
    wait_until(&channel, &admin, "directory version 3", |h| {
        h.directory_version == 3
    })
    .await;
    eventually_ok(&channel, &admin, LUNI, "Luni with its new certificate").await;
    get_kpi(&channel, Some(&admin), AMEGLIA)
        .await
        .expect("Ameglia still served");
    let new_node = as_node(&gateway, root, &issued.cert, &issued.key).await;
    get_kpi(&new_node, None, LUNI)
        .await
        .expect("Luni's node calls through the gateway with its new certificate");
    let status = get_kpi(&revoked_node, None, LUNI)
        .await
        .expect_err("the old certificate stays revoked");
    assert_eq!(reason_and_field(&status).0, "CERTIFICATE_REVOKED");

    // The audit log has the new directory versions and the refused calls, under Luni's name.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let entries = audit_entries(&channel, &admin).await;
        let refused = entries
            .iter()
            .filter(|e| e.principal == "node:luni" && e.code == Code::Unauthenticated as i32)
            .count();
        let loads: Vec<&str> = entries
            .iter()
            .filter(|e| e.method.starts_with("directory.load"))
            .map(|e| e.method.as_str())
            .collect();
        if refused >= 3 && loads.len() >= 3 {
            assert_eq!(
                loads,
                [
                    "directory.load/version/1",
                    "directory.load/version/2",
                    "directory.load/version/3"
                ]
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the audit log misses the revocation: {entries:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    gateway.stop().await.expect("the gateway stops");
    ameglia.stop().await.expect("the node stops");
    luni.stop().await.expect("the node stops");

    // The directory versions show the revocation.
    let db = unione_kit::Database::connect(&config.database_url())
        .await
        .expect("the gateway's database");
    let versions: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT version, revoked_certificates FROM directory_versions ORDER BY version",
    )
    .fetch_all(db.pool())
    .await
    .expect("the versions");
    assert_eq!(versions, [(1, 0), (2, 1), (3, 1)]);
    let stored: Vec<String> = sqlx::query_scalar("SELECT fingerprint FROM revoked_certificates")
        .fetch_all(db.pool())
        .await
        .expect("the revocations");
    assert_eq!(stored, [fingerprint]);
    db.close().await;
}
