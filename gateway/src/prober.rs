//! The health prober: a background task per node that, every `health_interval_ms`, asks the
//! node over mutual TLS what it serves (`NodeService.GetNodeInfo`) and whether the primary
//! service of each function it provides answers its gRPC health check, and records the result
//! of every (comune, function) the directory assigns to it.
//!
//! The gateway dials a node only as `{node_id}.nodes.unione.internal` and only trusts the
//! federation CA, so a node presenting another CA's certificate, or another node's, or one the
//! directory revokes ([`crate::revocation`]), fails the handshake and shows NOT_SERVING with
//! the reason. Probes restart with new channels for each directory version, so a revocation
//! applies to them at once. One task per node, each probe bounded by `probe_timeout_ms`: a
//! dead node never delays the others' results.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as HealthStatus;
use tonic_health::pb::health_client::HealthClient;
use tracing::Instrument;
use unione_kit::tls::TlsFiles;
use unione_proto::federation::v1::node_service_client::NodeServiceClient;
use unione_proto::federation::v1::{GetNodeInfoRequest, NodeInfo, ServingStatus};

use crate::directory::{Directory, Function};
use crate::revocation::NodeDialer;

/// The last probe of one function of one comune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// The providing node.
    pub node: String,
    /// SERVING or NOT_SERVING.
    pub status: ServingStatus,
    /// When the probe finished, microseconds since the epoch.
    pub check_time: i64,
    /// Round trip of the probe, microseconds.
    pub latency_micros: i64,
    /// Why it is not serving; empty when it is.
    pub detail: String,
}

/// The latest probe results, by (ISTAT code, function).
#[derive(Debug, Default)]
pub struct HealthBoard {
    results: RwLock<HashMap<(String, Function), ProbeResult>>,
}

impl HealthBoard {
    /// The latest result for one comune and function, if probed.
    pub fn get(&self, istat: &str, function: Function) -> Option<ProbeResult> {
        self.results
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(istat.to_owned(), function))
            .cloned()
    }

    pub(crate) fn record(&self, results: Vec<((String, Function), ProbeResult)>) {
        let mut board = self.results.write().unwrap_or_else(PoisonError::into_inner);
        for (key, result) in results {
            let previous = board.get(&key).map(|r| r.status);
            if previous != Some(result.status) {
                let (istat, function) = (&key.0, key.1);
                if result.status == ServingStatus::Serving {
                    tracing::info!(node = %result.node, comune = %istat, %function, "serving");
                } else {
                    tracing::warn!(node = %result.node, comune = %istat, %function, detail = %result.detail, "not serving");
                }
            }
            board.insert(key, result);
        }
    }
}

/// What the prober needs to know about one node.
struct Target {
    node_id: String,
    channel: Channel,
    /// The (ISTAT code, function) pairs the directory assigns to it.
    provisions: Vec<(String, Function)>,
}

/// Probe timing.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Between the starts of two probes of a node.
    pub interval: Duration,
    /// The bound on one probe.
    pub timeout: Duration,
}

/// Creates one lazily connected mutual-TLS channel per node of the directory and spawns one
/// probing task per node onto `tasks`. The tasks stop when `shutdown` turns true (or its
/// sender is dropped).
pub fn spawn(
    directory: &Directory,
    tls: &TlsFiles,
    timing: Timing,
    board: Arc<HealthBoard>,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    let mut by_node = BTreeMap::<&str, Vec<(String, Function)>>::new();
    for p in &directory.provisions {
        by_node
            .entry(p.node.as_str())
            .or_default()
            .push((p.comune.clone(), p.function));
    }
    let mut dialer = None;
    for node in &directory.nodes {
        let Some(provisions) = by_node.remove(node.node_id.as_str()) else {
            tracing::info!(node = %node.node_id, "node provides nothing: not probed");
            continue;
        };
        let dialer = match &mut dialer {
            Some(dialer) => dialer,
            None => dialer.insert(
                NodeDialer::new(tls, &directory.revoked_certificates)
                    .context("loading the gateway's TLS files")?,
            ),
        };
        let (endpoint, connector) = dialer.endpoint(node, timing.timeout)?;
        let channel = endpoint
            .timeout(timing.timeout)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .connect_with_connector_lazy(connector);
        let target = Target {
            node_id: node.node_id.clone(),
            channel,
            provisions,
        };
        tasks.spawn(probe_loop(target, timing, board.clone(), shutdown.clone()));
    }
    Ok(())
}

async fn probe_loop(
    target: Target,
    timing: Timing,
    board: Arc<HealthBoard>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(timing.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = ticker.tick() => {}
        }
        let span = tracing::info_span!("probe", otel.name = "probe", node = %target.node_id);
        tokio::select! {
            _ = shutdown.changed() => return,
            results = probe(&target, timing.timeout).instrument(span) => board.record(results),
        }
    }
}

/// Probes one node: GetNodeInfo and the health checks of its functions run at once, each
/// bounded by `timeout`.
async fn probe(target: &Target, timeout: Duration) -> Vec<((String, Function), ProbeResult)> {
    let functions: BTreeSet<Function> = target.provisions.iter().map(|(_, f)| *f).collect();
    let info = timed(timeout, node_info(target.channel.clone()));
    let checks = futures::future::join_all(
        functions
            .iter()
            .map(|f| timed(timeout, health_check(target.channel.clone(), *f))),
    );
    let (info, checks) = futures::join!(info, checks);
    let check_time = unione_kit::storage::now_micros();
    let health: HashMap<Function, (Result<(), String>, Duration)> =
        functions.into_iter().zip(checks).collect();

    let served: Result<BTreeSet<(String, i32)>, String> = match &info.0 {
        Ok(info) if info.node_id != target.node_id => Err(format!(
            "node reports its id as `{}`, the directory says `{}`",
            info.node_id, target.node_id
        )),
        Ok(info) => Ok(info
            .comuni
            .iter()
            .flat_map(|c| c.functions.iter().map(|f| (c.comune.clone(), *f)))
            .collect()),
        Err(e) => Err(format!("GetNodeInfo failed: {e}")),
    };

    target
        .provisions
        .iter()
        .map(|(istat, function)| {
            let (health, latency) = health
                .get(function)
                .cloned()
                .unwrap_or((Err("not checked".into()), Duration::ZERO));
            let name = format!("comuni/{istat}");
            let verdict = match &served {
                Err(e) => Err(e.clone()),
                Ok(served) if !served.contains(&(name.clone(), function.to_proto() as i32)) => {
                    Err(format!("node does not serve {function} for {name}"))
                }
                Ok(_) => health,
            };
            let (status, detail) = match verdict {
                Ok(()) => (ServingStatus::Serving, String::new()),
                Err(detail) => (ServingStatus::NotServing, detail),
            };
            let result = ProbeResult {
                node: target.node_id.clone(),
                status,
                check_time,
                latency_micros: i64::try_from(latency.max(info.1).as_micros()).unwrap_or(i64::MAX),
                detail,
            };
            ((istat.clone(), *function), result)
        })
        .collect()
}

/// Runs `call` bounded by `timeout`, measuring its round trip.
async fn timed<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, String>>,
) -> (Result<T, String>, Duration) {
    let start = Instant::now();
    let result = match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    };
    (result, start.elapsed())
}

async fn node_info(channel: Channel) -> Result<NodeInfo, String> {
    let mut request = tonic::Request::new(GetNodeInfoRequest {});
    unione_kit::telemetry::inject_metadata(request.metadata_mut());
    NodeServiceClient::new(channel)
        .get_node_info(request)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| describe(&s))
}

async fn health_check(channel: Channel, function: Function) -> Result<(), String> {
    let service = function.health_service();
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.to_owned(),
    });
    unione_kit::telemetry::inject_metadata(request.metadata_mut());
    let response = HealthClient::new(channel)
        .check(request)
        .await
        .map_err(|s| format!("health check of {service} failed: {}", describe(&s)))?;
    match response.into_inner().status() {
        HealthStatus::Serving => Ok(()),
        other => Err(format!(
            "health check of {service}: {}",
            other.as_str_name()
        )),
    }
}

/// A status with the chain of causes that tonic keeps for transport errors (a refused
/// connection, a certificate the CA did not issue, a name mismatch).
fn describe(status: &tonic::Status) -> String {
    let mut out = format!("{:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
