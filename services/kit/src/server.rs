//! The server builder: gives any set of tonic services gRPC health (per service), server
//! reflection, mutual TLS, a global concurrency limit with load shedding, per-method metrics,
//! a span per call joined to the caller's W3C trace context, `grpc-timeout` (tonic honours it;
//! we cap it), and graceful shutdown that drains calls in flight.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::{Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::telemetry;

/// Limits applied to every call.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Limits {
    /// Calls served at once; beyond it calls are shed with UNAVAILABLE (reason OVERLOADED).
    pub max_concurrent_requests: usize,
    /// Largest request or response message, in bytes.
    pub max_message_bytes: usize,
    /// Longest a call may run, whatever `grpc-timeout` the client sends.
    pub max_request_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 512,
            max_message_bytes: 8 * 1024 * 1024,
            max_request_seconds: 60,
        }
    }
}

impl Limits {
    /// Refuses zero limits.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_concurrent_requests > 0,
            "limits.max_concurrent_requests must be at least 1"
        );
        anyhow::ensure!(
            self.max_message_bytes >= 1024,
            "limits.max_message_bytes must be at least 1024"
        );
        anyhow::ensure!(
            self.max_request_seconds > 0,
            "limits.max_request_seconds must be at least 1"
        );
        Ok(())
    }
}

type RouterHook = Box<dyn FnOnce(axum::Router) -> axum::Router + Send>;

/// Collects services, then serves them.
pub struct ServerBuilder {
    routes: RoutesBuilder,
    health: HealthReporter,
    names: Vec<&'static str>,
    fallback: Option<RouterHook>,
    trust_principals: bool,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerBuilder {
    /// A builder with the health and reflection services already added.
    pub fn new() -> Self {
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(unione_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .expect("the embedded descriptor sets are valid");
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(unione_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .expect("the embedded descriptor sets are valid");
        routes.add_service(reflection_v1);
        routes.add_service(reflection_v1alpha);
        Self {
            routes,
            health,
            names: Vec::new(),
            fallback: None,
            trust_principals: false,
        }
    }

    /// Adds a service; its health status is SERVING while the server runs.
    pub fn add<S>(&mut self, service: S) -> &mut Self
    where
        S: Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Serves every call that no added service answers (the gateway's proxy).
    pub fn fallback<S>(&mut self, service: S) -> &mut Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.fallback = Some(Box::new(move |router: axum::Router| {
            router.fallback_service(tower::ServiceExt::map_request(
                service,
                |request: http::Request<axum::body::Body>| request.map(Body::new),
            ))
        }));
        self
    }

    /// Believes the principal that a federation gateway sends with a call (nodes). Without it,
    /// every principal header is dropped (gateways).
    pub fn trust_gateway_principals(&mut self) -> &mut Self {
        self.trust_principals = true;
        self
    }

    /// The health reporter, to mark services NOT_SERVING while a dependency is down.
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting, marks every
    /// service NOT_SERVING and waits for calls in flight to finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        tls: Option<ServerTlsConfig>,
        limits: Limits,
        metrics: Metrics,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        for name in &self.names {
            self.health
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        self.health
            .set_service_status("", ServingStatus::Serving)
            .await;
        let mut server = Server::builder()
            .timeout(Duration::from_secs(limits.max_request_seconds))
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)));
        if let Some(tls) = tls {
            server = server.tls_config(tls).context("TLS configuration")?;
        }
        let incoming = TcpListenerStream::new(listener);
        let incoming = tokio_stream::StreamExt::map(incoming, |stream| {
            // tonic's own nodelay setting is ignored with serve_with_incoming.
            stream.inspect(|s| {
                let _ = s.set_nodelay(true);
            })
        });
        let routes = match self.fallback {
            Some(hook) => {
                tonic::service::Routes::from(hook(self.routes.routes().into_axum_router()))
            }
            None => self.routes.routes(),
        };
        let health = self.health.clone();
        let names = self.names.clone();
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down: draining calls in flight");
            for name in &names {
                health
                    .set_service_status(*name, ServingStatus::NotServing)
                    .await;
            }
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
        };
        server
            .layer(ObserveLayer::new(metrics, limits.max_concurrent_requests))
            .layer(crate::principal::PrincipalLayer::new(self.trust_principals))
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .context("serving gRPC")
    }
}

/// Binds a listener (before serving, so a test knows the port with no race).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Metrics, a span joined to the caller's trace, and the global concurrency limit.
#[derive(Clone)]
pub struct ObserveLayer {
    metrics: Metrics,
    permits: Arc<Semaphore>,
}

impl ObserveLayer {
    /// At most `max_concurrent` calls at once (health checks excepted).
    pub fn new(metrics: Metrics, max_concurrent: usize) -> Self {
        Self {
            metrics,
            permits: Arc::new(Semaphore::new(max_concurrent)),
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            metrics: self.metrics.clone(),
            permits: self.permits.clone(),
        }
    }
}

/// The service made by [`ObserveLayer`].
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Metrics,
    permits: Arc<Semaphore>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let start = Instant::now();
        let exempt = method.starts_with("/grpc.health.v1.Health/");
        let permit = if exempt {
            None
        } else {
            Some(self.permits.clone().try_acquire_owned())
        };
        if let Some(Err(_)) = permit {
            metrics.record(&method, "14", start.elapsed());
            let status: tonic::Status = ApiError::unavailable(
                "OVERLOADED",
                "the server is at its concurrency limit; retry with backoff",
            )
            .into();
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let span = tracing::info_span!("grpc", otel.name = %method, rpc.method = %method, rpc.grpc.status_code = tracing::field::Empty);
        let _ = span.set_parent(telemetry::extract_context(request.headers()));
        // Take the service that was polled ready; leave a fresh clone for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(
            async move {
                let response = inner.call(request).await;
                let code = match &response {
                    Ok(r) => r
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("0")
                        .to_owned(),
                    Err(_) => "2".to_owned(),
                };
                tracing::Span::current().record("rpc.grpc.status_code", code.as_str());
                metrics.record(&method, &code, start.elapsed());
                drop(permit);
                response
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Notify;

    fn grpc_request(path: &str) -> http::Request<()> {
        http::Request::builder()
            .uri(path)
            .body(())
            .expect("request")
    }

    /// Beyond the concurrency limit a call is shed at once with UNAVAILABLE and reason
    /// OVERLOADED, instead of queueing; health checks are never shed.
    #[tokio::test]
    async fn calls_beyond_the_limit_are_shed_with_overloaded() {
        let release = Arc::new(Notify::new());
        let entered = Arc::new(Notify::new());
        let (r, e) = (release.clone(), entered.clone());
        let inner = tower::service_fn(move |_req: http::Request<()>| {
            let (r, e) = (r.clone(), e.clone());
            async move {
                e.notify_one();
                r.notified().await;
                Ok::<_, Infallible>(http::Response::new(String::new()))
            }
        });
        let metrics = Metrics::new();
        let mut service = ObserveLayer::new(metrics.clone(), 1).layer(inner);

        let first = tokio::spawn({
            let mut s = service.clone();
            async move { s.call(grpc_request("/unione.test.v1.Slow/Call")).await }
        });
        entered.notified().await;

        let shed = service
            .call(grpc_request("/unione.test.v1.Slow/Call"))
            .await
            .expect("a response");
        assert_eq!(
            shed.headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok()),
            Some("14")
        );
        let status = tonic::Status::from_header_map(shed.headers()).expect("a status");
        assert_eq!(crate::error::reason_and_field(&status).0, "OVERLOADED");

        // Health is exempt, so an overloaded server still answers its probes.
        let health = tokio::spawn({
            let mut s = service.clone();
            async move { s.call(grpc_request("/grpc.health.v1.Health/Check")).await }
        });
        entered.notified().await;
        release.notify_one();
        release.notify_one();
        assert!(first.await.expect("joined").is_ok());
        assert!(health.await.expect("joined").is_ok());
        assert!(metrics.render().contains(r#"code="14""#));
    }
}
