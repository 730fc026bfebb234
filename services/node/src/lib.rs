//! A node: runs the services of one comune, or of several comuni for a capofila that serves
//! others, in one process, over one database, behind mutual TLS.

pub mod config;

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};
use unione_kit::Database;
use unione_kit::metrics::Metrics;
use unione_kit::server::ServerBuilder;
use unione_proto::federation::v1::node_service_server::{NodeService, NodeServiceServer};
use unione_proto::federation::v1::{GetNodeInfoRequest, NodeInfo, ServedComune};

pub use config::{Function, NodeConfig};

/// A node being served.
pub struct RunningNode {
    /// The bound gRPC address.
    pub addr: SocketAddr,
    /// The bound metrics address, if any.
    pub metrics_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningNode {
    /// Stops gracefully (draining calls in flight) and waits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.context("node task panicked")?
    }

    /// Waits until the node stops by itself (it fails).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("node task panicked")?
    }
}

/// Opens the database, runs every migration, binds and serves in the background.
pub async fn start(config: NodeConfig) -> anyhow::Result<RunningNode> {
    let listener = unione_kit::server::bind(config.listen_addr()?).await?;
    start_on(config, listener).await
}

/// How often the node seals the protocol registers' days that are over (and once at start).
const DAILY_SEALING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Like [`start`] on a listener already bound.
pub async fn start_on(config: NodeConfig, listener: TcpListener) -> anyhow::Result<RunningNode> {
    unione_kit::tls::install_crypto_provider();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir))?;
    let db = Database::connect(&config.database_url())
        .await
        .with_context(|| {
            format!(
                "opening {}",
                unione_kit::storage::redact(&config.database_url())
            )
        })?;
    db.migrate(&unione_registry::migrations())
        .await
        .context("registry migrations")?;
    db.migrate(&unione_payments::migrations())
        .await
        .context("payments migrations")?;
    db.migrate(&unione_quality::migrations())
        .await
        .context("quality migrations")?;

    let max = config.limits.max_message_bytes;
    let mut builder = ServerBuilder::new();
    builder.trust_gateway_principals();
    builder.add(NodeServiceServer::new(NodeInfoApi::new(
        &config,
        db.backend().as_str(),
    )));
    let runs = |f: Function| config.comuni.iter().any(|c| c.functions.contains(&f));
    let mut move_dispatcher = None;
    let mut daily_sealing = None;
    let mut preservation = None;
    if runs(Function::Registry) {
        let served = config.served(Function::Registry);
        // Moves to other member comuni are delivered through the gateway of
        // `operational_data`, under the node's own certificate.
        let od = &config.operational_data;
        let wake =
            (!od.gateway.is_empty()).then(|| std::sync::Arc::new(tokio::sync::Notify::new()));
        if let Some(wake) = &wake {
            let channel = tonic::transport::Endpoint::from_shared(od.gateway.clone())
                .context("operational_data.gateway")?
                .tls_config(config.tls.mutual_client(&od.gateway_tls_name)?)
                .context("operational_data.gateway")?
                .connect_timeout(std::time::Duration::from_secs(5))
                .connect_lazy();
            move_dispatcher = Some(unione_registry::MoveDispatcher::new(
                db.clone(),
                channel,
                std::time::Duration::from_millis(od.move_retry_interval_ms),
                wake.clone(),
            ));
        }
        builder.add(
            unione_registry::move_service(db.clone(), served.clone(), wake)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        builder.add(
            unione_registry::service(db.clone(), served.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        // Registrations carry documents of up to 10 MiB: the service sets its own limit.
        builder.add(unione_registry::protocol_service(
            db.clone(),
            served.clone(),
        ));
        // Each day's protocol register is sealed once the day is over, without an operator.
        daily_sealing = Some(std::sync::Arc::new(unione_registry::ProtocolApi::new(
            db.clone(),
            served.clone(),
        )));
        // Each sealed day goes to the preservation archive, when one is configured.
        if !config.registry.preservation_dir.is_empty() {
            preservation = Some((
                std::sync::Arc::new(unione_registry::archive::DirectoryArchive::new(
                    &config.registry.preservation_dir,
                ))
                    as std::sync::Arc<
                        dyn unione_registry::domain::preservation::PreservationService,
                    >,
                std::time::Duration::from_secs(config.registry.preservation_interval_s),
            ));
        }
        builder.add(
            unione_registry::household_service(db.clone(), served.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        builder.add(
            unione_registry::certificate_service(db.clone(), served.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        // Cases carry their documents: the service sets its own limit, as the protocol does.
        builder.add(unione_registry::case_service(db.clone(), served.clone()));
        builder.add(
            unione_registry::access_log_service(db.clone(), served.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        builder.add(
            unione_registry::statistics_service(db.clone(), served)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
    }
    if runs(Function::Payments) {
        let served = config.served(Function::Payments);
        builder.add(
            unione_payments::service(db.clone(), served.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        builder.add(
            unione_payments::provider_service(db.clone(), served.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        builder.add(
            unione_payments::reconciliation_service(db.clone(), served.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        builder.add(
            unione_payments::ledger_service(db.clone(), served.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        builder.add(
            unione_payments::cost_sharing_service(db.clone(), served.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        builder.add(
            unione_payments::statistics_service(db.clone(), served)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
    }
    let mut recompute = None;
    if runs(Function::Quality) {
        let served = config.served(Function::Quality);
        let mut kpis = unione_quality::KpiApi::new(db.clone(), served.clone());
        let od = &config.operational_data;
        if !od.gateway.is_empty() {
            kpis = kpis.with_operational_data(
                unione_quality::grpc::indicators::OperationalData::new(
                    &od.gateway,
                    &od.gateway_tls_name,
                    &config.tls,
                )
                .context("operational_data")?,
            );
            if od.recompute_interval_s > 0 {
                let comuni: Vec<_> = config
                    .comuni
                    .iter()
                    .filter(|c| c.functions.contains(&Function::Quality))
                    .map(|c| c.profile.istat.clone())
                    .collect();
                recompute = Some((
                    std::sync::Arc::new(kpis.clone()),
                    comuni,
                    std::time::Duration::from_secs(od.recompute_interval_s),
                ));
            }
        }
        builder.add(
            unione_proto::quality::v1::kpi_service_server::KpiServiceServer::new(kpis)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        builder.add(
            unione_quality::survey_service(db.clone(), served.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        builder.add(
            unione_quality::complaint_service(db.clone(), served.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        builder.add(
            unione_quality::improvement_service(db.clone(), served.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        builder.add(
            unione_quality::review_service(db.clone(), served)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
    }

    let tls = config
        .tls
        .mutual_server()
        .context("loading the node's TLS files")?;
    let metrics = Metrics::new();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (recompute_stop_tx, mut recompute_stop_rx) = tokio::sync::watch::channel(false);
    let mut moves_stop_rx = recompute_stop_tx.subscribe();
    let sealing_stop_tx = recompute_stop_tx.clone();
    let stopped = async move {
        let _ = stop_rx.await;
        let _ = recompute_stop_tx.send(true);
    };
    if let Some((api, comuni, interval)) = recompute {
        tokio::spawn(unione_quality::grpc::indicators::recompute_every(
            api,
            comuni,
            interval,
            async move {
                let _ = recompute_stop_rx.wait_for(|stop| *stop).await;
            },
        ));
    }
    if let (Some(protocol), Some((archive, interval))) = (&daily_sealing, preservation) {
        let mut preservation_stop_rx = sealing_stop_tx.subscribe();
        tokio::spawn(unione_registry::grpc::protocol::preserve_every(
            protocol.clone(),
            archive,
            interval,
            async move {
                let _ = preservation_stop_rx.wait_for(|stop| *stop).await;
            },
        ));
    }
    if let Some(protocol) = daily_sealing {
        let mut sealing_stop_rx = sealing_stop_tx.subscribe();
        tokio::spawn(unione_registry::grpc::protocol::seal_every(
            protocol,
            DAILY_SEALING_INTERVAL,
            async move {
                let _ = sealing_stop_rx.wait_for(|stop| *stop).await;
            },
        ));
    }
    if let Some(dispatcher) = move_dispatcher {
        tokio::spawn(dispatcher.run(async move {
            let _ = moves_stop_rx.wait_for(|stop| *stop).await;
        }));
    }
    let (metrics_stop_tx, metrics_stop_rx) = oneshot::channel::<()>();
    let metrics_addr = if config.metrics_listen.is_empty() {
        None
    } else {
        let addr = config.metrics_listen.parse().context("metrics_listen")?;
        Some(
            metrics
                .clone()
                .spawn(addr, async move {
                    let _ = metrics_stop_rx.await;
                })
                .await?,
        )
    };
    let addr = listener.local_addr()?;
    tracing::info!(node = %config.node_id, %addr, backend = db.backend().as_str(), comuni = config.comuni.len(), "node serving");
    let limits = config.limits;
    let task = tokio::spawn(async move {
        let result = builder
            .serve(listener, Some(tls), limits, metrics, stopped)
            .await;
        let _ = metrics_stop_tx.send(());
        db.close().await;
        result
    });
    Ok(RunningNode {
        addr,
        metrics_addr,
        stop: Some(stop_tx),
        task,
    })
}

/// Serves until SIGINT or SIGTERM, then drains and stops.
pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    start(config).await?.run_until_signal().await
}

impl RunningNode {
    /// Serves until SIGINT or SIGTERM (then drains and stops), or until the server fails.
    pub async fn run_until_signal(mut self) -> anyhow::Result<()> {
        tokio::select! {
            () = unione_kit::server::shutdown_signal() => self.stop().await,
            result = &mut self.task => result.context("node task panicked")?,
        }
    }
}

/// `unione.federation.v1.NodeService`: what this node runs.
pub struct NodeInfoApi {
    info: NodeInfo,
}

impl NodeInfoApi {
    fn new(config: &NodeConfig, backend: &str) -> Self {
        let comuni = config
            .comuni
            .iter()
            .map(|c| ServedComune {
                comune: c.profile.istat.resource_name(),
                functions: c.functions.iter().map(|f| f.to_proto() as i32).collect(),
            })
            .collect();
        Self {
            info: NodeInfo {
                node_id: config.node_id.clone(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                comuni,
                storage_backend: backend.to_owned(),
            },
        }
    }
}

#[tonic::async_trait]
impl NodeService for NodeInfoApi {
    async fn get_node_info(
        &self,
        _request: Request<GetNodeInfoRequest>,
    ) -> Result<Response<NodeInfo>, Status> {
        Ok(Response::new(self.info.clone()))
    }
}
