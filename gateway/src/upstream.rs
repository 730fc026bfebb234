//! One HTTP/2 connection from the gateway to a node, used by many calls at once.
//!
//! A routed call is handed straight to the connection's HTTP/2 sender (hyper's
//! `client::conn::http2`), with no queue and no worker task in between: tonic's `Channel` puts
//! every request through a buffer served by a task of its own, one more hand-off per call in
//! each direction, which the gateway pays on every call it routes. The connection is dialled
//! on first use through the directory's [`NodeConnector`] (mutual TLS, the node's identity
//! checked, revoked certificates refused) and dialled again on the first call after it closed
//! (the node restarted, went away, or sent GOAWAY while draining); a call made while it is
//! failing gets the dial's error at once, which the router counts for outlier detection.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Authority, Scheme};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tonic::body::Body;
use tower::ServiceExt;

use crate::revocation::NodeConnector;

/// An error of a call to a node: the dial, the connection or the stream failed.
pub type UpstreamError = Box<dyn std::error::Error + Send + Sync>;

/// One lazily dialled HTTP/2 connection to a node; clones share it.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    connector: NodeConnector,
    authority: Authority,
    /// The sender of the open connection, if one is open.
    sender: Mutex<Option<SendRequest<Body>>>,
    /// Held while dialling, so that calls arriving together dial once.
    dialing: tokio::sync::Mutex<()>,
    /// Dials made so far, and why the last one failed (empty when it succeeded): a call that
    /// waited for another's failed dial shares its failure instead of dialling again.
    dials: AtomicU64,
    last_failure: Mutex<String>,
}

impl Upstream {
    /// A connection to the node `connector` dials; nothing is dialled yet.
    pub fn new(connector: NodeConnector) -> Result<Self, http::uri::InvalidUri> {
        let authority = Authority::try_from(connector.address())?;
        Ok(Self {
            inner: Arc::new(Inner {
                connector,
                authority,
                sender: Mutex::new(None),
                dialing: tokio::sync::Mutex::new(()),
                dials: AtomicU64::new(0),
                last_failure: Mutex::new(String::new()),
            }),
        })
    }

    /// The sender of the open connection, unless it has closed.
    fn open(&self) -> Option<SendRequest<Body>> {
        self.inner
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|sender| !sender.is_closed())
            .cloned()
    }

    /// The open connection's sender, dialling the node first if none is open.
    async fn sender(&self) -> Result<SendRequest<Body>, UpstreamError> {
        if let Some(sender) = self.open() {
            return Ok(sender);
        }
        let dials = self.inner.dials.load(Ordering::Acquire);
        let _dialing = self.inner.dialing.lock().await;
        if let Some(sender) = self.open() {
            return Ok(sender);
        }
        if self.inner.dials.load(Ordering::Acquire) != dials {
            // Another call dialled while this one waited: share its failure (after a success
            // whose connection has closed since, dial again).
            let failure = self
                .inner
                .last_failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if !failure.is_empty() {
                return Err(failure.into());
            }
        }
        let dialled = self.dial().await;
        *self
            .inner
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = match &dialled {
            Ok(_) => String::new(),
            Err(err) => err.to_string(),
        };
        self.inner.dials.fetch_add(1, Ordering::AcqRel);
        dialled
    }

    /// Dials the node and keeps the new connection's sender.
    async fn dial(&self) -> Result<SendRequest<Body>, UpstreamError> {
        let uri = http::Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.inner.authority.clone())
            .path_and_query("/")
            .build()?;
        let io = self.inner.connector.clone().oneshot(uri).await?;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .handshake(io)
            .await?;
        let node = self.inner.connector.node().to_owned();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%node, error = %err, "connection to the node ended");
            }
        });
        *self
            .inner
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
        Ok(sender)
    }

    /// Sends `request` (its URI's path is kept; scheme and authority become the node's) and
    /// returns the node's response as it arrives.
    pub async fn send(
        self,
        mut request: http::Request<Body>,
    ) -> Result<http::Response<Body>, UpstreamError> {
        let mut parts = request.uri().clone().into_parts();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(self.inner.authority.clone());
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        *request.uri_mut() = http::Uri::from_parts(parts)?;
        let mut sender = self.sender().await?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        Ok(response.map(Body::new))
    }
}

/// So that typed tonic clients can call a node over it too.
impl tower::Service<http::Request<Body>> for Upstream {
    type Response = http::Response<Body>;
    type Error = UpstreamError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(self.clone().send(request))
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;
    use unione_kit::certs::{self, Kind};

    use super::*;
    use crate::directory::NodeEntry;
    use crate::revocation::NodeDialer;
    use crate::revocation::tests::files;

    /// Calls that arrive while the node is being dialled wait for that one dial and share its
    /// failure: a node that accepts TCP but never answers TLS costs one connection timeout,
    /// not one per call. The next call after it dials again.
    #[tokio::test]
    async fn calls_waiting_for_a_dial_share_its_failure() {
        unione_kit::tls::install_crypto_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        certs::ensure_ca(dir.path(), "Test federation").expect("CA");
        let gateway = files(dir.path(), Kind::Gateway, "gateway");
        // Accepts connections and keeps them open without a word.
        let silent = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let address = silent.local_addr().expect("address");
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                open.push(socket);
            }
        });
        let node = NodeEntry {
            node_id: "silent".to_owned(),
            endpoint: format!("https://{address}"),
        };
        let connector = NodeDialer::new(&gateway, &[])
            .expect("dialer")
            .connector(&node, Duration::from_millis(300))
            .expect("connector");
        let upstream = Upstream::new(connector).expect("an upstream");

        let calls: Vec<_> = (0..5)
            .map(|_| {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let request = http::Request::builder()
                        .uri("/unione.quality.v1.KpiService/GetKpi")
                        .body(Body::empty())
                        .expect("a request");
                    upstream.send(request).await.map(|_| ())
                })
            })
            .collect();
        for call in calls {
            let err = call
                .await
                .expect("the call ends")
                .expect_err("the node never answers");
            assert!(err.to_string().contains("no answer within 300 ms"), "{err}");
        }
        assert_eq!(upstream.inner.dials.load(Ordering::Acquire), 1, "one dial");

        let request = http::Request::builder()
            .uri("/unione.quality.v1.KpiService/GetKpi")
            .body(Body::empty())
            .expect("a request");
        assert!(upstream.clone().send(request).await.is_err());
        assert_eq!(
            upstream.inner.dials.load(Ordering::Acquire),
            2,
            "a later call dials again"
        );
        held.abort();
    }
}
