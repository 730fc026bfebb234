//! Prometheus metrics: request counts by method and status code, and latency histograms by
//! method, served as the Prometheus text format on `GET /metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: String,
    outcome: String,
}

/// The metrics of one server.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<CodeLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    events: Family<EventLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with the request metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("unione");
        let requests = Family::<CodeLabels, Counter>::default();
        registry.register(
            "grpc_requests",
            "gRPC requests by method and status code",
            requests.clone(),
        );
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            // 50 µs to ~26 s, doubling.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.000_05, 2.0, 20,
            ))
        });
        registry.register(
            "grpc_request_duration_seconds",
            "gRPC request latency by method",
            latency.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Notable events of a server by kind and outcome (e.g. event=retry outcome=throttled)",
            events.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            latency,
            events,
        }
    }

    /// Records one finished request.
    pub fn record(&self, method: &str, code: &str, elapsed: Duration) {
        self.requests
            .get_or_create(&CodeLabels {
                method: method.to_owned(),
                code: code.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one `event` with its `outcome`.
    pub fn event(&self, event: &str, outcome: &str) {
        self.events
            .get_or_create(&EventLabels {
                event: event.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Serves `GET /metrics` on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = self.clone();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Binds `addr` and serves in the background; returns the bound address.
    pub async fn spawn(
        self,
        addr: SocketAddr,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(err) = self.serve(listener, shutdown).await {
                tracing::error!(error = %err, "metrics endpoint failed");
            }
        });
        Ok(local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_histograms() {
        let m = Metrics::new();
        m.record(
            "/unione.registry.v1.ResidentService/GetResident",
            "0",
            Duration::from_millis(2),
        );
        m.record(
            "/unione.registry.v1.ResidentService/GetResident",
            "5",
            Duration::from_millis(1),
        );
        let text = m.render();
        assert!(text.contains(r#"unione_grpc_requests_total{method="/unione.registry.v1.ResidentService/GetResident",code="0"} 1"#), "{text}");
        assert!(
            text.contains("unione_grpc_request_duration_seconds_count"),
            "{text}"
        );
    }
}
