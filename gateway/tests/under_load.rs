//! The gateway under a steady stream of calls (DOMAIN.md, Federation; issue 6): the directory
//! changes at run time and another comune's node dies, and the calls for Sarzana never fail.
//! Real nodes (`unione_node`), the real gateway, mutual TLS, SQLite.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tonic::Code;
use tonic::transport::Channel;
use unione_gateway::GatewayConfig;
use unione_gateway::directory::{DirectoryFile, NodeEntry};
use unione_kit::names::routed;
use unione_kit::token::Role;
use unione_node::{Function, RunningNode};
use unione_proto::federation::v1::directory_service_client::DirectoryServiceClient;
use unione_proto::federation::v1::{GetFederationHealthRequest, ServingStatus};
use unione_proto::quality::v1::GetKpiRequest;
use unione_proto::quality::v1::kpi_service_client::KpiServiceClient;

const SARZANA: &str = "011027";
const AMEGLIA: &str = "011001";
const LUNI: &str = "011020";

async fn node(root: &Path, id: &str, istat: &str) -> RunningNode {
    let comune = support::served(istat, id, 10_000, &Function::ALL);
    support::start_node(root, id, vec![comune]).await
}

async fn wait_until<F: Fn(&unione_proto::federation::v1::FederationHealth) -> bool>(
    channel: &Channel,
    token: &str,
    what: &str,
    done: F,
) {
    let mut client = DirectoryServiceClient::new(channel.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut request = tonic::Request::new(GetFederationHealthRequest {});
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
        let health = client
            .get_federation_health(request)
            .await
            .expect("health answers")
            .into_inner();
        if done(&health) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {health:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn status(h: &unione_proto::federation::v1::FederationHealth, istat: &str) -> i32 {
    h.members
        .iter()
        .find(|m| m.comune == format!("comuni/{istat}"))
        .map_or(0, |m| m.status)
}

/// Under load, a new directory version is installed and another comune's node is killed; no
/// call for Sarzana fails, and calls for the dead node's comune fail fast with UNAVAILABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn directory_changes_and_a_dead_node_do_not_fail_other_calls() {
    unione_kit::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let (keys, signer) = support::secrets(root);
    let admin = signer.issue("admin-1", Role::Admin, Vec::new(), None, 1);

    let sarzana = node(root, "sarzana", SARZANA).await;
    let ameglia = node(root, "ameglia", AMEGLIA).await;
    let mut directory = DirectoryFile {
        members: vec![
            support::member(SARZANA, "Sarzana"),
            support::member(AMEGLIA, "Ameglia"),
        ],
        nodes: vec![
            NodeEntry {
                node_id: "sarzana".into(),
                endpoint: format!("https://{}", sarzana.addr),
            },
            NodeEntry {
                node_id: "ameglia".into(),
                endpoint: format!("https://{}", ameglia.addr),
            },
        ],
        provisions: [
            support::provisions(SARZANA, "sarzana"),
            support::provisions(AMEGLIA, "ameglia"),
        ]
        .concat(),
        revoked_certificates: Vec::new(),
    };
    let file = root.join("directory.toml");
    std::fs::write(&file, toml::to_string(&directory).expect("toml")).expect("written");
    let gateway = unione_gateway::start(GatewayConfig {
        probe_timeout_ms: 500,
        directory_refresh_ms: 200,
        // This test is about routing, not about the rate limits.
        calls_per_second_per_principal: 1_000_000,
        calls_per_second_per_comune: 1_000_000,
        ..support::gateway_config(root, &file, &keys)
    })
    .await
    .expect("the gateway starts");
    let channel = support::client(&gateway, root).await;
    wait_until(&channel, &admin, "both members serving", |h| {
        status(h, SARZANA) == ServingStatus::Serving as i32
            && status(h, AMEGLIA) == ServingStatus::Serving as i32
    })
    .await;

    // A steady stream of calls for Sarzana, through the gateway.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (channel, admin, stop, ok, failed, first_error) = (
            channel.clone(),
            admin.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
            first_error.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut client = KpiServiceClient::new(channel);
            while !stop.load(Ordering::Relaxed) {
                let mut request = routed(
                    SARZANA,
                    GetKpiRequest {
                        name: format!("comuni/{SARZANA}/kpis/UQ0001"),
                    },
                );
                request.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {admin}").parse().expect("ascii"),
                );
                match client.get_kpi(request).await {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(status) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .get_or_insert_with(|| format!("{status:?}"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }

    // The directory changes: Luni joins, served by Ameglia's node (which does not confirm it).
    directory.members.push(support::member(LUNI, "Luni"));
    directory
        .provisions
        .extend(support::provisions(LUNI, "ameglia"));
    std::fs::write(&file, toml::to_string(&directory).expect("toml")).expect("written");
    wait_until(&channel, &admin, "directory version 2", |h| {
        h.directory_version == 2
    })
    .await;

    // Ameglia's node dies.
    ameglia.stop().await.expect("the node stops");
    wait_until(&channel, &admin, "Ameglia unhealthy", |h| {
        status(h, AMEGLIA) == ServingStatus::NotServing as i32
    })
    .await;
    let mut request = routed(
        AMEGLIA,
        GetKpiRequest {
            name: format!("comuni/{AMEGLIA}/kpis/UQ0001"),
        },
    );
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {admin}").parse().expect("ascii"),
    );
    let started = Instant::now();
    let status = KpiServiceClient::new(channel.clone())
        .get_kpi(request)
        .await
        .expect_err("the dead node's comune is refused");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(5), "and fast");

    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("a load task ends");
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(
        failed,
        0,
        "no call for Sarzana failed ({ok} succeeded); the first failure: {:?}",
        first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    );
    assert!(ok > 50, "the load ran: {ok} calls");

    gateway.stop().await.expect("the gateway stops");
    sarzana.stop().await.expect("the node stops");
}
