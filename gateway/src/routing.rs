//! Routing: any call to a `unione.<function>.v1` service is sent, with no code written for
//! each method, to the node that provides that function for the comune named in the routing
//! header (AIP-4222, `x-goog-request-params: comune=comuni%2F{istat}`). The body is never
//! decoded here: the node checks that the body names the same comune. Streams pass through.
//!
//! The user's token stops here; the node receives the verified principal in the
//! `x-unione-principal` header, which it believes only from a gateway's certificate.
//!
//! Who may call what is decided by the one table in [`crate::policy`], for the comune the call
//! is routed for. A refusal never says whether the comune or the resource exists.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tower::{Service, ServiceExt};
use unione_kit::ApiError;
use unione_kit::certs::Kind;
use unione_kit::names::{ROUTING_HEADER, routing_param};
use unione_kit::principal::{PRINCIPAL_HEADER, Principal};
use unione_kit::storage::now_micros;
use unione_kit::tls::TlsFiles;

use crate::api::Authenticator;
use crate::audit::{AuditSink, Entry};
use crate::directory::Function;
use crate::live::DirectoryHandle;
use crate::policy::{self, Access, PublicLimiter};
use crate::store::Snapshot;

/// The function a gRPC method belongs to, read from its package: `/unione.registry.v1.X/Y`
/// is the registry.
pub fn function_of(path: &str) -> Option<Function> {
    let service = path.strip_prefix('/')?.split('/').next()?;
    let mut parts = service.split('.');
    if parts.next()? != "unione" {
        return None;
    }
    match parts.next()? {
        "registry" => Some(Function::Registry),
        "payments" => Some(Function::Payments),
        "quality" => Some(Function::Quality),
        _ => None,
    }
}

/// One mutual-TLS channel per node, connected lazily, verifying the node's identity.
pub fn node_channels(
    snapshot: &Snapshot,
    tls: &TlsFiles,
) -> anyhow::Result<HashMap<String, Channel>> {
    let mut channels = HashMap::new();
    for node in &snapshot.directory.nodes {
        let config = tls.mutual_client(&Kind::Node.identity(&node.node_id))?;
        let channel = Endpoint::from_shared(node.endpoint.clone())
            .with_context(|| format!("node {}: endpoint", node.node_id))?
            .tls_config(config)
            .with_context(|| format!("node {}: TLS", node.node_id))?
            .connect_timeout(Duration::from_secs(2))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(node.node_id.clone(), channel);
    }
    Ok(channels)
}

/// The routing proxy, served as the gateway's fallback for every method it does not answer
/// itself.
#[derive(Clone)]
pub struct Proxy {
    state: Arc<State>,
}

struct State {
    directory: DirectoryHandle,
    auth: Authenticator,
    audit: AuditSink,
    public: PublicLimiter,
}

/// What is known of a call as it is routed, for its audit entry.
#[derive(Default)]
struct Attempt {
    principal: String,
    role: String,
    comune: String,
    node: String,
    function: Option<Function>,
}

impl Proxy {
    /// A proxy over the directory in force, auditing every call into `audit`.
    pub fn new(
        directory: DirectoryHandle,
        auth: Authenticator,
        audit: AuditSink,
        public: PublicLimiter,
    ) -> Self {
        Self {
            state: Arc::new(State {
                directory,
                auth,
                audit,
                public,
            }),
        }
    }
}

impl Service<http::Request<Body>> for Proxy {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move {
            let started = Instant::now();
            let at = now_micros();
            let method = request.uri().path().to_owned();
            let mut attempt = Attempt::default();
            let (response, code) = match state.forward(request, &mut attempt).await {
                Ok(response) => {
                    // A handler's error travels in the headers (trailers-only); success in the
                    // trailers, which are not waited for here.
                    let code = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    (response, code)
                }
                Err(status) => (status.clone().into_http(), status.code() as i32),
            };
            if attempt.function.is_some() {
                state
                    .audit
                    .record(Entry {
                        at,
                        principal: attempt.principal,
                        role: attempt.role,
                        comune: attempt.comune,
                        method,
                        node: attempt.node,
                        function: attempt.function,
                        code,
                        latency_micros: i64::try_from(started.elapsed().as_micros())
                            .unwrap_or(i64::MAX),
                    })
                    .await;
            }
            Ok(response)
        })
    }
}

impl State {
    async fn forward(
        &self,
        mut request: http::Request<Body>,
        attempt: &mut Attempt,
    ) -> Result<http::Response<Body>, Status> {
        let path = request.uri().path().to_owned();
        let Some(function) = function_of(&path) else {
            return Err(ApiError::new(
                Code::Unimplemented,
                "UNKNOWN_METHOD",
                format!("{path} is not a method of the Unione API"),
            )
            .into());
        };
        attempt.function = Some(function);
        let rule = policy::rule_for(&path).ok_or_else(|| {
            ApiError::new(
                Code::Unimplemented,
                "UNKNOWN_METHOD",
                format!("{path} is not a method of the Unione API"),
            )
        })?;
        let header = request.headers().get("authorization").map(|v| v.as_bytes());
        let claims = match (rule.access, header) {
            (Access::Public, None) => {
                self.public.admit()?;
                None
            }
            (_, header) => Some(self.auth.authenticate(header)?),
        };
        if let Some(claims) = &claims {
            attempt.principal = claims.sub.clone();
            attempt.role = format!("{:?}", claims.role).to_lowercase();
        }
        let istat = match request.headers().get(ROUTING_HEADER) {
            Some(value) => routing_param(value.as_bytes())?,
            None => None,
        }
        .ok_or_else(|| {
            ApiError::invalid(
                ROUTING_HEADER,
                "ROUTING_HEADER_MISSING",
                format!("{ROUTING_HEADER} must name the comune: comune=comuni%2F{{istat}}"),
            )
        })?;
        attempt.comune = istat.resource_name();
        policy::decide(rule, claims.as_ref(), Some(istat.as_str()))?;
        self.directory.check_fresh()?;
        let live = self.directory.current();
        let directory = &live.snapshot.directory;
        if !directory.members.iter().any(|m| m.istat == istat.as_str()) {
            return Err(ApiError::not_found(ROUTING_HEADER, &istat.resource_name())
                .with_metadata("reason_detail", "not a member of the federation")
                .into());
        }
        let provider = directory
            .provisions
            .iter()
            .find(|p| p.comune == istat.as_str() && p.function == function)
            .ok_or_else(|| {
                ApiError::failed_precondition(
                    "FUNCTION_NOT_PROVIDED",
                    format!(
                        "no node provides {} for {}",
                        function.as_str(),
                        istat.resource_name()
                    ),
                )
            })?;
        let channel = live
            .channels
            .get(&provider.node)
            .map(|(_, channel)| channel.clone())
            .ok_or_else(|| {
                ApiError::internal(&format!(
                    "the directory names node {} but no channel exists",
                    provider.node
                ))
            })?;
        attempt.node = format!("nodes/{}", provider.node);
        tracing::debug!(method = %path, comune = %istat, node = %provider.node, "routing");

        // The user's token stays at the gateway; the node gets the verified principal (which
        // it believes only from a gateway's certificate), and the trace continues there.
        let headers = request.headers_mut();
        headers.remove("authorization");
        headers.remove(PRINCIPAL_HEADER);
        if let Some(claims) = &claims {
            let principal = Principal::from_claims(claims).encode();
            match http::HeaderValue::try_from(principal) {
                Ok(value) => {
                    headers.insert(PRINCIPAL_HEADER, value);
                }
                Err(err) => return Err(ApiError::internal(&err).into()),
            }
        }
        unione_kit::telemetry::inject_current(request.headers_mut());
        let node = provider.node.clone();
        match channel.oneshot(request).await {
            Ok(response) => Ok(response),
            Err(err) => {
                tracing::warn!(%node, error = %err, "node unreachable");
                Err(ApiError::unavailable(
                    "NODE_UNAVAILABLE",
                    "the node serving this comune cannot be reached; retry later",
                )
                .with_metadata("node", node)
                .into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_read_from_the_package() {
        assert_eq!(
            function_of("/unione.registry.v1.ResidentService/GetResident"),
            Some(Function::Registry)
        );
        assert_eq!(
            function_of("/unione.payments.v1.DebtPositionService/X"),
            Some(Function::Payments)
        );
        assert_eq!(
            function_of("/unione.quality.v2.KpiService/ListKpis"),
            Some(Function::Quality)
        );
        assert_eq!(
            function_of("/unione.federation.v1.DirectoryService/ListMembers"),
            None
        );
        assert_eq!(function_of("/grpc.health.v1.Health/Check"), None);
        assert_eq!(function_of("nonsense"), None);
    }
}
