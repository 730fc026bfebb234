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

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Service, ServiceExt};
use unione_kit::ApiError;
use unione_kit::certs::NODE_SUFFIX;
use unione_kit::metrics::Metrics;
use unione_kit::names::{ROUTING_HEADER, routing_param};
use unione_kit::principal::{PRINCIPAL_HEADER, Principal};
use unione_kit::storage::now_micros;
use unione_kit::token::{Claims, Role};

use crate::api::Authenticator;
use crate::audit::{AuditSink, Entry};
use crate::directory::{Function, NodeEntry};
use crate::live::DirectoryHandle;
use crate::policy::{self, Access, RateLimiter};
use crate::retry::{self, RetryBudget, RetryPolicy};
use crate::revocation::NodeDialer;
use crate::upstream::Upstream;

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

/// Consecutive transport failures after which a node is ejected.
const EJECT_AFTER: u32 = 3;
/// How long an ejected node is failed fast before it is tried again.
const EJECTION: Duration = Duration::from_secs(5);

/// A few HTTP/2 connections to one node ([`Upstream`]s), used in turn,
/// with passive outlier detection: after consecutive transport failures the node is failed
/// fast for a while, so calls for other comuni never queue behind a dead node.
pub struct NodePool {
    /// The endpoint the pool dials.
    pub endpoint: String,
    channels: Vec<Upstream>,
    next: AtomicUsize,
    /// Passive outlier detection.
    pub outlier: Outlier,
    /// The node's retry budget, shared by every call routed to it.
    pub budget: RetryBudget,
}

/// Consecutive transport failures of a node, and until when it is ejected.
#[derive(Default)]
pub struct Outlier {
    failures: AtomicU32,
    ejected_until: AtomicI64,
}

impl Outlier {
    /// Fails fast while the node is ejected.
    pub fn check(&self, node: &str, now: i64) -> Result<(), ApiError> {
        if now < self.ejected_until.load(Ordering::Relaxed) {
            return Err(ApiError::unavailable(
                "NODE_UNAVAILABLE",
                "the node serving this comune is failing; retry later",
            )
            .with_metadata("node", node));
        }
        Ok(())
    }

    /// Records the outcome of a call at the transport level.
    pub fn record(&self, reached: bool, now: i64) {
        if reached {
            self.failures.store(0, Ordering::Relaxed);
        } else if self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= EJECT_AFTER {
            self.failures.store(0, Ordering::Relaxed);
            let until = now + i64::try_from(EJECTION.as_micros()).expect("seconds fit");
            self.ejected_until.store(until, Ordering::Relaxed);
        }
    }
}

impl NodePool {
    /// `size` lazily dialled mutual-TLS connections to `node`, verifying its identity and
    /// refusing a certificate the directory revokes ([`NodeDialer`]).
    pub fn connect(node: &NodeEntry, dialer: &NodeDialer, size: usize) -> anyhow::Result<Self> {
        let connector = dialer.connector(node, Duration::from_secs(2))?;
        let channels = (0..size.max(1))
            .map(|_| Upstream::new(connector.clone()))
            .collect::<Result<_, _>>()
            .with_context(|| format!("node {}: endpoint {}", node.node_id, node.endpoint))?;
        Ok(Self {
            endpoint: node.endpoint.clone(),
            channels,
            next: AtomicUsize::new(0),
            outlier: Outlier::default(),
            budget: RetryBudget::default(),
        })
    }

    /// The next connection.
    pub fn pick(&self) -> Upstream {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        self.channels[i].clone()
    }
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
    limits: RouteLimits,
    /// Told of every measurement recorded through the gateway (benchmarks refresh on change).
    changes: std::sync::OnceLock<crate::benchmarks::Changes>,
    /// Where retries are counted.
    metrics: Metrics,
}

/// Limits on routed calls.
#[derive(Clone)]
pub struct RouteLimits {
    /// Calls with no token (public methods).
    pub public: RateLimiter,
    /// Calls per principal.
    pub per_principal: RateLimiter,
    /// Calls per comune.
    pub per_comune: RateLimiter,
    /// The deadline given to calls that carry none.
    pub default_deadline: Duration,
    /// How calls to methods without side effects are retried.
    pub retry: RetryPolicy,
    /// The largest request message; a request kept for a retry is read up to this size.
    pub max_message_bytes: usize,
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
    /// A proxy over the directory in force, auditing every call into `audit` and counting
    /// retries in `metrics`.
    pub fn new(
        directory: DirectoryHandle,
        auth: Authenticator,
        audit: AuditSink,
        limits: RouteLimits,
        metrics: Metrics,
    ) -> Self {
        Self {
            state: Arc::new(State {
                directory,
                auth,
                audit,
                limits,
                changes: std::sync::OnceLock::new(),
                metrics,
            }),
        }
    }

    /// Tells `changes` of every measurement recorded through the gateway (an OK answer to
    /// `CreateMeasurement` or `ComputeMeasurement`), so the benchmark snapshot refreshes that comune without waiting
    /// for its interval. The first call wins.
    pub fn notify_measurements(&self, changes: crate::benchmarks::Changes) {
        let _ = self.state.changes.set(changes);
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
            if code == 0
                && crate::benchmarks::records_measurement(&method)
                && let Some(changes) = state.changes.get()
                && let Some(istat) = attempt.comune.strip_prefix("comuni/")
            {
                changes.measurement_recorded(istat);
            }
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

/// The subject of a node's own calls: `node:{node_id}`.
pub const NODE_PRINCIPAL_PREFIX: &str = "node:";

impl State {
    /// The principal of a node calling with its certificate: it acts, as an integrator would,
    /// for exactly the comuni the directory says it serves (any function), and for no other.
    fn node_claims(&self, node_id: &str) -> Claims {
        let live = self.directory.current();
        let mut comuni: Vec<String> = live
            .snapshot
            .directory
            .provisions
            .iter()
            .filter(|p| p.node == node_id)
            .map(|p| p.comune.clone())
            .collect();
        comuni.sort();
        comuni.dedup();
        Claims {
            iss: unione_kit::token::ISSUER.to_owned(),
            sub: format!("{NODE_PRINCIPAL_PREFIX}{node_id}"),
            role: Role::Integrator,
            comuni,
            fiscal_number: None,
            iat: 0,
            nbf: None,
            exp: i64::MAX,
        }
    }

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
        // A revoked client certificate is refused before anything else is looked at, and the
        // refusal is audited under the node whose certificate it was.
        // The directory in force for the whole call: read once.
        let live = self.directory.current();
        let revoked = &live.snapshot.directory.revoked_certificates;
        if !revoked.is_empty()
            && let Some(peer) = unione_kit::tls::http_peer_cert(&request)
            && let Some(r) = crate::revocation::revocation(revoked, &peer)
        {
            attempt.principal = format!("{NODE_PRINCIPAL_PREFIX}{}", r.node);
            attempt.role = "node".to_owned();
            return Err(crate::revocation::refusal(r).into());
        }
        // A node calling through the gateway (the quality office reading its sibling
        // services) comes with its own certificate and no token.
        let calling_node = header
            .is_none()
            .then(|| unione_kit::tls::http_peer_id(&request, NODE_SUFFIX))
            .flatten();
        // Node-to-node methods (a move delivered to its destination): a node's own
        // certificate and no token, nothing else.
        if policy::node_to_node(&path) && calling_node.is_none() {
            return Err(ApiError::new(
                Code::PermissionDenied,
                "NODE_ONLY",
                "only a node calling with its own certificate may make this call",
            )
            .into());
        }
        let claims = match (rule.access, header, calling_node) {
            (_, None, Some(node)) => Some(self.node_claims(&node)),
            (Access::Public, None, None) => {
                self.limits.public.admit("public")?;
                None
            }
            (_, header, _) => Some(self.auth.authenticate(header)?),
        };
        if let Some(claims) = &claims {
            attempt.principal = claims.sub.clone();
            attempt.role = if claims.sub.starts_with(NODE_PRINCIPAL_PREFIX) {
                "node".to_owned()
            } else {
                format!("{:?}", claims.role).to_lowercase()
            };
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
        if let Some(claims) = &claims {
            self.limits.per_principal.admit(&claims.sub)?;
        }
        self.limits.per_comune.admit(istat.as_str())?;
        self.directory.check_fresh()?;
        let directory = &live.snapshot.directory;
        if directory.member(istat.as_str()).is_none() {
            return Err(ApiError::not_found(ROUTING_HEADER, &istat.resource_name())
                .with_metadata("reason_detail", "not a member of the federation")
                .into());
        }
        let provider = directory
            .provisions_of(istat.as_str())
            .iter()
            .find(|p| p.function == function)
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
        let pool = live.pools.get(&provider.node).cloned().ok_or_else(|| {
            ApiError::internal(&format!(
                "the directory names node {} but no connection pool exists",
                provider.node
            ))
        })?;
        pool.outlier.check(&provider.node, now_micros())?;

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
        // A call with no deadline gets the gateway's default, which the node honours too.
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(retry::parse_grpc_timeout);
        if timeout.is_none()
            && let Ok(value) = http::HeaderValue::try_from(retry::format_grpc_timeout(
                self.limits.default_deadline,
            ))
        {
            request.headers_mut().insert("grpc-timeout", value);
        }
        let deadline = Instant::now() + timeout.unwrap_or(self.limits.default_deadline);
        if self.limits.retry.max_attempts > 1 && retry::is_repeatable(&path) {
            self.send_with_retries(&pool, &node, request, deadline)
                .await
        } else {
            let (outcome, retryable) = send(&pool, &node, request).await;
            settle(&pool.budget, retryable);
            outcome
        }
    }

    /// Sends a call to a method without side effects, and sends it again while its attempts
    /// fail in a retryable way, the policy allows another attempt, the node's budget has
    /// tokens, the node is not ejected and the wait fits in the call's deadline (each attempt
    /// tells the node the time that is left).
    async fn send_with_retries(
        &self,
        pool: &NodePool,
        node: &str,
        request: http::Request<Body>,
        deadline: Instant,
    ) -> Result<http::Response<Body>, Status> {
        use http_body_util::BodyExt;
        let policy = self.limits.retry;
        let (parts, body) = request.into_parts();
        // One message and its 5-byte gRPC frame header; a longer body is refused here as the
        // node would refuse it.
        let limit = self.limits.max_message_bytes.saturating_add(5);
        let message = http_body_util::Limited::new(body, limit)
            .collect()
            .await
            .map_err(|err| {
                if err
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    ApiError::new(
                        Code::ResourceExhausted,
                        "MESSAGE_TOO_LARGE",
                        format!("the request is longer than {limit} bytes"),
                    )
                } else {
                    ApiError::new(
                        Code::Cancelled,
                        "REQUEST_INTERRUPTED",
                        format!("the request could not be read: {err}"),
                    )
                }
            })?
            .to_bytes();
        let mut attempt = 1;
        loop {
            let mut request =
                http::Request::new(Body::new(http_body_util::Full::new(message.clone())));
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.version_mut() = parts.version;
            *request.headers_mut() = parts.headers.clone();
            if attempt > 1 {
                let left = deadline.saturating_duration_since(Instant::now());
                if let Ok(value) = http::HeaderValue::try_from(retry::format_grpc_timeout(left)) {
                    request.headers_mut().insert("grpc-timeout", value);
                }
            }
            let (outcome, retryable) = send(pool, node, request).await;
            let allowed = settle(&pool.budget, retryable);
            if !retryable {
                return outcome;
            }
            // Why no further attempt is made, if none is.
            let stop = if attempt >= policy.max_attempts {
                Some("exhausted")
            } else if !allowed {
                Some("throttled")
            } else {
                None
            };
            let wait = policy.backoff(attempt, rand::random::<f64>());
            let stop = stop.or_else(|| (Instant::now() + wait >= deadline).then_some("deadline"));
            if let Some(reason) = stop {
                self.metrics.event("retry", reason);
                return outcome;
            }
            self.metrics.event("retry", "scheduled");
            tracing::debug!(%node, attempt, ?wait, "retrying a call without side effects");
            tokio::time::sleep(wait).await;
            if pool.outlier.check(node, now_micros()).is_err() {
                self.metrics.event("retry", "ejected");
                return outcome;
            }
            attempt += 1;
        }
    }
}

/// Sends one attempt of a call on the next connection to the node; returns the outcome and
/// whether it failed in a way worth another attempt: the node could not be reached, or it
/// answered UNAVAILABLE without running the call (a trailers-only response).
async fn send(
    pool: &NodePool,
    node: &str,
    request: http::Request<Body>,
) -> (Result<http::Response<Body>, Status>, bool) {
    let outcome = pool.pick().oneshot(request).await;
    pool.outlier.record(outcome.is_ok(), now_micros());
    match outcome {
        Ok(response) => {
            let unavailable = response
                .headers()
                .get("grpc-status")
                .is_some_and(|v| v.as_bytes() == b"14");
            (Ok(response), unavailable)
        }
        Err(err) => {
            tracing::warn!(%node, error = %err, "node unreachable");
            let status = ApiError::unavailable(
                "NODE_UNAVAILABLE",
                "the node serving this comune cannot be reached; retry later",
            )
            .with_metadata("node", node)
            .into();
            (Err(status), true)
        }
    }
}

/// Records an attempt in the node's retry budget; true when the budget allows a retry.
fn settle(budget: &RetryBudget, retryable: bool) -> bool {
    if retryable {
        budget.failed()
    } else {
        budget.succeeded();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node that keeps failing is failed fast for a while, then tried again; one success
    /// clears its record.
    #[test]
    fn failing_nodes_are_ejected_then_retried() {
        let o = Outlier::default();
        o.record(false, 0);
        o.record(false, 1);
        assert!(
            o.check("n", 2).is_ok(),
            "two failures are not yet an outlier"
        );
        o.record(true, 2);
        o.record(false, 3);
        o.record(false, 4);
        assert!(o.check("n", 5).is_ok(), "a success resets the count");
        o.record(false, 5);
        let err = o.check("n", 6).expect_err("ejected");
        assert_eq!(
            (err.code, err.reason),
            (Code::Unavailable, "NODE_UNAVAILABLE")
        );
        let later = 5 + i64::try_from(EJECTION.as_micros()).expect("fits");
        assert!(
            o.check("n", later).is_ok(),
            "tried again after the ejection"
        );
    }

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
