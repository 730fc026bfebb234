//! Retries with budgets (issue 6, Resilience): a call to a method the proto declares free of
//! side effects survives its node's restart, because the gateway tries it again within the
//! call's deadline; a write is never sent twice. Real node (`unione_node`), real gateway,
//! mutual TLS, SQLite; the retries are read from the gateway's Prometheus endpoint.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use unione_gateway::GatewayConfig;
use unione_gateway::directory::{DirectoryFile, NodeEntry};
use unione_kit::certs::Kind;
use unione_kit::names::routed;
use unione_kit::token::Role;
use unione_node::{Function, NodeConfig, RunningNode};
use unione_proto::quality::v1::kpi_service_client::KpiServiceClient;
use unione_proto::quality::v1::measurement::Status;
use unione_proto::quality::v1::{CreateMeasurementRequest, GetKpiRequest, Measurement};

const SARZANA: &str = "011027";

/// Starts (or starts again, on the same data) the node of Sarzana listening on `listen`.
async fn sarzana(root: &Path, listen: &str) -> RunningNode {
    unione_node::start(NodeConfig {
        node_id: "sarzana".to_owned(),
        listen: listen.to_owned(),
        data_dir: root.join("sarzana").display().to_string(),
        tls: support::tls_files(&root.join("certs"), Kind::Node, "sarzana"),
        comuni: vec![support::served(SARZANA, "Sarzana", 21_800, &Function::ALL)],
        ..NodeConfig::default()
    })
    .await
    .expect("the node starts")
}

/// The value of `unione_events_total{event="retry",outcome=...}` on the gateway's metrics
/// endpoint (0 before the first).
async fn retries(metrics: SocketAddr, outcome: &str) -> u64 {
    let mut stream = tokio::net::TcpStream::connect(metrics)
        .await
        .expect("the metrics endpoint accepts");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request written");
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .await
        .expect("response read");
    let series = format!("unione_events_total{{event=\"retry\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().expect("a count"))
}

fn get_kpi(token: &str) -> tonic::Request<GetKpiRequest> {
    support::authorized(
        token,
        routed(
            SARZANA,
            GetKpiRequest {
                name: format!("comuni/{SARZANA}/kpis/UQ0001"),
            },
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_survive_a_node_restart_and_writes_are_never_repeated() {
    unione_kit::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let (keys, signer) = support::secrets(root);
    let operator = signer.issue(
        "operator-1",
        Role::Operator,
        vec![SARZANA.to_owned()],
        None,
        1,
    );

    let node = sarzana(root, "127.0.0.1:0").await;
    let listen = node.addr.to_string();
    let directory = DirectoryFile {
        members: vec![support::member(SARZANA, "Sarzana")],
        nodes: vec![NodeEntry {
            node_id: "sarzana".into(),
            endpoint: format!("https://{listen}"),
        }],
        provisions: support::provisions(SARZANA, "sarzana"),
        revoked_certificates: Vec::new(),
    };
    let file = root.join("directory.toml");
    std::fs::write(&file, toml::to_string(&directory).expect("toml")).expect("written");
    let gateway = unione_gateway::start(GatewayConfig {
        metrics_listen: "127.0.0.1:0".to_owned(),
        // Long enough a backoff (at least 400 ms before the second attempt) for the node to
        // come back in between; four attempts in all.
        retry_max_attempts: 4,
        retry_initial_backoff_ms: 800,
        retry_max_backoff_ms: 3_000,
        ..support::gateway_config(root, &file, &keys)
    })
    .await
    .expect("the gateway starts");
    let metrics = gateway.metrics_addr.expect("a metrics endpoint");
    let mut kpis = KpiServiceClient::new(support::client(&gateway, root).await);
    kpis.get_kpi(get_kpi(&operator))
        .await
        .expect("the node answers");
    assert_eq!(
        retries(metrics, "scheduled").await,
        0,
        "nothing retried yet"
    );

    // The node stops (an upgrade, a crash). A read sent now fails its first attempt; the
    // gateway schedules a retry, the node is back in the meantime, and the read succeeds.
    node.stop().await.expect("the node stops");
    let read = tokio::spawn({
        let mut kpis = kpis.clone();
        let mut request = get_kpi(&operator);
        request.set_timeout(Duration::from_secs(20));
        async move { kpis.get_kpi(request).await }
    });
    let waited = Instant::now();
    while retries(metrics, "scheduled").await == 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "no retry was scheduled for the read"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let node = sarzana(root, &listen).await;
    let kpi = read
        .await
        .expect("the read task ends")
        .expect("the read succeeds on a later attempt")
        .into_inner();
    assert_eq!(kpi.name, format!("comuni/{SARZANA}/kpis/UQ0001"));
    assert_eq!(retries(metrics, "ejected").await, 0);

    // A write is never sent twice: with the node down it fails at once with UNAVAILABLE and
    // no retry is scheduled for it.
    node.stop().await.expect("the node stops");
    let scheduled = retries(metrics, "scheduled").await;
    let write = routed(
        SARZANA,
        CreateMeasurementRequest {
            parent: format!("comuni/{SARZANA}/kpis/UQ0001"),
            measurement: Some(Measurement {
                period: "2026-11".to_owned(),
                value: 95.0,
                status: Status::Ok as i32,
                ..Measurement::default()
            }),
            request_id: String::new(),
        },
    );
    let status = kpis
        .create_measurement(support::authorized(&operator, write))
        .await
        .expect_err("the node is down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        retries(metrics, "scheduled").await,
        scheduled,
        "the write was not retried"
    );

    gateway.stop().await.expect("the gateway stops");
}
