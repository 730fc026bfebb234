//! The Unione federation gateway.
//!
//! - Keeps the federation directory (members, nodes, which node provides which function for
//!   which comune) in its database, versioned: at start it loads `directory_file` and stores
//!   it as a new version only when its content changed ([`store`]).
//! - Serves `unione.federation.v1.DirectoryService` to clients over TLS, from an in-memory
//!   snapshot, to callers with a valid user token ([`api`]).
//! - Probes every node over mutual TLS, as the node identity its certificate must carry, and
//!   reports each member's health ([`prober`]).
//! - Routes every other call (any `unione.<function>.v1` method) by the comune in its routing
//!   header to the node that provides that function for it, over mutual TLS ([`routing`]).
//! - Refuses certificates the directory revokes, of nodes it dials and of nodes calling
//!   through it ([`revocation`]).
//!
//! Three hops from an RPC to its data: [`api`] (handlers, token check) reads the
//! [`store::Snapshot`] that [`store`] read from SQL; [`directory`] holds the rules of the file.

pub mod api;
pub mod audit;
pub mod audit_api;
pub mod benchmarks;
pub mod config;
pub mod directory;
pub mod live;
pub mod policy;
pub mod prober;
pub mod retry;
pub mod revocation;
pub mod routing;
pub mod store;
pub mod upstream;
pub mod web;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use unione_kit::Database;
use unione_kit::metrics::Metrics;
use unione_kit::server::ServerBuilder;
use unione_kit::token::Verifier;
use unione_proto::federation::v1::audit_service_server::AuditServiceServer;
use unione_proto::federation::v1::benchmark_service_server::BenchmarkServiceServer;
use unione_proto::federation::v1::directory_service_server::DirectoryServiceServer;

pub use config::GatewayConfig;

use crate::api::{Authenticator, DirectoryApi};
use crate::directory::DirectoryFile;
use crate::prober::{HealthBoard, Timing};

/// A gateway being served.
pub struct RunningGateway {
    /// The bound client-facing gRPC address.
    pub addr: SocketAddr,
    /// The bound metrics address, if any.
    pub metrics_addr: Option<SocketAddr>,
    /// The bound web front address and whether it serves HTTPS, if any.
    pub web: Option<web::RunningWeb>,
    /// The directory version being served (0: the database holds no directory).
    pub directory_version: i64,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningGateway {
    /// Stops gracefully (draining calls in flight, stopping the prober) and waits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.context("gateway task panicked")?
    }

    /// Waits until the gateway stops by itself (it fails).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("gateway task panicked")?
    }

    /// Serves until SIGINT or SIGTERM (then drains and stops), or until the server fails.
    pub async fn run_until_signal(mut self) -> anyhow::Result<()> {
        tokio::select! {
            () = unione_kit::server::shutdown_signal() => self.stop().await,
            result = &mut self.task => result.context("gateway task panicked")?,
        }
    }
}

/// Opens the database, loads the directory file, binds and serves in the background.
pub async fn start(config: GatewayConfig) -> anyhow::Result<RunningGateway> {
    let listener = unione_kit::server::bind(config.listen_addr()?).await?;
    start_on(config, listener).await
}

/// Serves until SIGINT or SIGTERM, then drains and stops.
pub async fn run(config: GatewayConfig) -> anyhow::Result<()> {
    start(config).await?.run_until_signal().await
}

/// Like [`start`] on a listener already bound.
pub async fn start_on(
    config: GatewayConfig,
    listener: TcpListener,
) -> anyhow::Result<RunningGateway> {
    unione_kit::tls::install_crypto_provider();
    unione_kit::config::Validate::validate(&config)?;
    // Everything that can fail on a bad file is read before anything is opened or spawned.
    let server_tls = config
        .tls
        .server_optional_client()
        .context("loading the gateway's TLS files")?;
    let verifier = Verifier::load(Path::new(&config.token_keys_dir))
        .with_context(|| format!("loading the token keys from {}", config.token_keys_dir))?
        .trusting(config.token_issuers.clone());
    if !config.directory_file.is_empty() {
        // A bad file stops the start before anything is opened.
        DirectoryFile::load(Path::new(&config.directory_file))
            .with_context(|| format!("the directory file {}", config.directory_file))?;
    }

    if config.database_url.is_empty() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir))?;
    }
    let url = config.database_url();
    let db = Database::connect(&url)
        .await
        .with_context(|| format!("opening {}", unione_kit::storage::redact(&url)))?;
    db.migrate(&store::migrations())
        .await
        .context("gateway migrations")?;
    let (audit_sink, audit_writer) = audit::spawn_writer(db.clone(), config.gateway_id.clone());
    if !config.directory_file.is_empty() {
        live::load_file(&db, &config.directory_file, &audit_sink).await?;
    }
    let snapshot = Arc::new(
        store::snapshot(&db)
            .await
            .context("reading the directory")?,
    );
    if snapshot.version == 0 {
        tracing::warn!("the database holds no directory and no directory_file is configured");
    }
    let directory = live::DirectoryHandle::new(
        live::live(snapshot.clone(), &config.tls, config.node_connections, None)
            .context("channels to the nodes")?,
        config.directory_max_staleness(),
    );

    let board = Arc::new(HealthBoard::default());
    let (refresher_stop_tx, refresher_stop_rx) = watch::channel(false);
    let benchmark_snapshot = Arc::new(
        benchmarks::Snapshot::load(&db)
            .await
            .context("reading the benchmark snapshot")?,
    );
    let (benchmark_changes, benchmark_changes_rx) = benchmarks::Changes::channel();
    let benchmark_refresher = tokio::spawn(
        benchmarks::Refresher {
            directory: directory.clone(),
            snapshot: benchmark_snapshot.clone(),
            db: db.clone(),
            pacing: config.benchmark_pacing(),
        }
        .run(benchmark_changes_rx, refresher_stop_rx.clone()),
    );
    let refresher = tokio::spawn(
        live::Refresher {
            handle: directory.clone(),
            db: db.clone(),
            directory_file: config.directory_file.clone(),
            interval: config.directory_refresh(),
            tls: config.tls.clone(),
            pool_size: config.node_connections,
            timing: Timing {
                interval: config.health_interval(),
                timeout: config.probe_timeout(),
            },
            board: board.clone(),
            audit: audit_sink.clone(),
        }
        .run(refresher_stop_rx),
    );

    let max = config.limits.max_message_bytes;
    let mut builder = ServerBuilder::new();
    let public = policy::RateLimiter::new(
        config.public_calls_per_second,
        "gateway (calls without a token)",
    );
    builder.add(policy::Guard::new(
        DirectoryServiceServer::new(DirectoryApi::new(directory.clone(), board))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        Authenticator::new(verifier.clone()),
        public.clone(),
    ));
    builder.add(policy::Guard::new(
        AuditServiceServer::new(audit_api::AuditApi::new(db.clone())),
        Authenticator::new(verifier.clone()),
        public.clone(),
    ));
    builder.add(policy::Guard::new(
        BenchmarkServiceServer::new(benchmarks::BenchmarkApi::new(
            directory.clone(),
            benchmark_snapshot,
            config.benchmark_max_age(),
        ))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max),
        Authenticator::new(verifier.clone()),
        public.clone(),
    ));
    let web_verifier = verifier.clone();
    let metrics = Metrics::new();
    let proxy = routing::Proxy::new(
        directory,
        Authenticator::new(verifier),
        audit_sink,
        routing::RouteLimits {
            public,
            per_principal: policy::RateLimiter::new(
                config.calls_per_second_per_principal,
                "principal",
            ),
            per_comune: policy::RateLimiter::new(config.calls_per_second_per_comune, "comune"),
            default_deadline: config.default_deadline(),
            retry: config.retry_policy(),
            max_message_bytes: config.limits.max_message_bytes,
        },
        metrics.clone(),
    );
    proxy.notify_measurements(benchmark_changes);
    builder.fallback(proxy);

    let (metrics_stop_tx, metrics_stop_rx) = oneshot::channel::<()>();
    let metrics_addr = match config.metrics_addr()? {
        None => None,
        Some(addr) => Some(
            metrics
                .clone()
                .spawn(addr, async move {
                    let _ = metrics_stop_rx.await;
                })
                .await
                .with_context(|| format!("serving metrics on {addr}"))?,
        ),
    };

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    // The web front stops first: its calls go through the gRPC listener, which then drains.
    let (web_stop_tx, mut web_stop_rx) = watch::channel(false);
    let stopped = async move {
        let _ = stop_rx.await;
        let _ = web_stop_tx.send(true);
    };
    let addr = listener.local_addr()?;
    let web = web::spawn(
        &config.web,
        web::router(web::WebState {
            bridge: web::Bridge::new(addr, &config.gateway_id, &config.tls)
                .context("the web front's channel to the gateway")?,
            verifier: web_verifier,
            settings: Arc::new(web::Settings {
                kiosk_idle_seconds: config.web.kiosk_idle_seconds,
            }),
            psp: web::psp::SimulatedPsp::from_config(&config.web),
        }),
        async move {
            let _ = web_stop_rx.wait_for(|stop| *stop).await;
        },
    )
    .await?;
    tracing::info!(
        gateway = %config.gateway_id,
        %addr,
        backend = db.backend().as_str(),
        directory_version = snapshot.version,
        members = snapshot.directory.members.len(),
        nodes = snapshot.directory.nodes.len(),
        "gateway serving"
    );
    let limits = config.limits;
    let task = tokio::spawn(async move {
        let result = builder
            .serve(listener, Some(server_tls), limits, metrics, stopped)
            .await;
        // The refresher (with the probes) stops; the proxy and its audit sink went with the
        // server, so the audit writer drains and stops.
        let _ = refresher_stop_tx.send(true);
        if let Err(err) = refresher.await {
            tracing::error!(error = %err, "the directory refresher failed");
        }
        if let Err(err) = benchmark_refresher.await {
            tracing::error!(error = %err, "the benchmark refresher failed");
        }
        if let Err(err) = audit_writer.await {
            tracing::error!(error = %err, "the audit writer failed");
        }
        let _ = metrics_stop_tx.send(());
        db.close().await;
        result
    });
    Ok(RunningGateway {
        addr,
        metrics_addr,
        web,
        directory_version: snapshot.version,
        stop: Some(stop_tx),
        task,
    })
}
