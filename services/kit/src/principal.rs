//! The end user of a call, as the gateway authenticated them (DOMAIN.md, Federation: "the end
//! user travels with the call as a separate, authenticated principal").
//!
//! The gateway verifies the user's token, then sends the principal to the node in the
//! `x-unione-principal` header. A node believes that header only on a connection whose client
//! certificate names a gateway of the federation (`*.gateways.unione.internal`); from any other
//! peer a call carrying it is refused, and a client can never set it through the gateway (the
//! gateway replaces it). Handlers read it with [`principal`] or [`require`].

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tonic::Code;
use tower::{Layer, Service};

use crate::certs::GATEWAY_SUFFIX;
use crate::error::ApiError;
use crate::token::{Claims, Role};

/// The header that carries the principal from a gateway to a node.
pub const PRINCIPAL_HEADER: &str = "x-unione-principal";

/// The user on whose behalf a call is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user's opaque id (the token's subject).
    pub sub: String,
    /// The role.
    pub role: Role,
    /// ISTAT codes of the comuni the user acts for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comuni: Vec<String>,
    /// A citizen's codice fiscale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiscal_number: Option<String>,
    /// The gateway that authenticated the user (set by the node from the peer certificate).
    #[serde(default)]
    pub gateway: String,
}

impl Principal {
    /// The principal of verified token claims.
    pub fn from_claims(claims: &Claims) -> Self {
        Self {
            sub: claims.sub.clone(),
            role: claims.role,
            comuni: claims.comuni.clone(),
            fiscal_number: claims.fiscal_number.clone(),
            gateway: String::new(),
        }
    }

    /// The header value.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a principal is plain data"))
    }

    /// Reads a header value.
    pub fn decode(value: &[u8]) -> Option<Self> {
        let json = URL_SAFE_NO_PAD.decode(value).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// The principal of a request, if a gateway sent one.
pub fn principal<T>(request: &tonic::Request<T>) -> Option<&Principal> {
    request.extensions().get::<Principal>()
}

/// The principal of a request, or UNAUTHENTICATED (reason `PRINCIPAL_REQUIRED`): for writes
/// that must record who made them.
pub fn require<T>(request: &tonic::Request<T>) -> Result<&Principal, ApiError> {
    principal(request).ok_or_else(|| {
        ApiError::new(
            Code::Unauthenticated,
            "PRINCIPAL_REQUIRED",
            "this call records who makes it: send it through the gateway with a user token",
        )
    })
}

/// The codice fiscale (trimmed, upper case) of a citizen principal, `None` for any other
/// caller (staff routed by a gateway, or a federation peer with no user). Handlers use it to
/// restrict a citizen to their own records; a citizen principal without a codice fiscale owns
/// none and is refused (PERMISSION_DENIED).
pub fn citizen(who: Option<&Principal>) -> Result<Option<String>, ApiError> {
    match who {
        Some(p) if p.role == Role::Citizen => p
            .fiscal_number
            .as_deref()
            .map(|cf| cf.trim().to_ascii_uppercase())
            .filter(|cf| !cf.is_empty())
            .map(Some)
            .ok_or_else(|| {
                ApiError::new(
                    Code::PermissionDenied,
                    "PERMISSION_DENIED",
                    "a citizen principal without a codice fiscale has no records",
                )
            }),
        _ => Ok(None),
    }
}

/// Refuses a citizen a call that only a comune's staff make (PERMISSION_DENIED, reason
/// `ROLE_NOT_ALLOWED`), for the handlers of services where citizens call other methods.
pub fn refuse_citizen(who: Option<&Principal>) -> Result<(), ApiError> {
    if who.is_some_and(|p| p.role == Role::Citizen) {
        return Err(ApiError::new(
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
            "a citizen may not make this call",
        ));
    }
    Ok(())
}

/// Reads the principal header: on a node (`trust` true) only from a gateway's connection; on
/// a gateway (`trust` false) never, so that a client cannot forge it.
#[derive(Clone, Copy)]
pub struct PrincipalLayer {
    trust: bool,
}

impl PrincipalLayer {
    /// `trust`: believe a gateway peer's header (nodes) or drop every such header (gateways).
    pub fn new(trust: bool) -> Self {
        Self { trust }
    }
}

impl<S> Layer<S> for PrincipalLayer {
    type Service = PrincipalService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        PrincipalService {
            inner,
            trust: self.trust,
        }
    }
}

/// The service made by [`PrincipalLayer`].
#[derive(Clone)]
pub struct PrincipalService<S> {
    inner: S,
    trust: bool,
}

/// The gateway id of the peer, if its verified certificate names a gateway.
fn peer_gateway<B>(request: &http::Request<B>) -> Option<String> {
    crate::tls::http_peer_id(request, GATEWAY_SUFFIX)
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for PrincipalService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        request.extensions_mut().remove::<Principal>();
        if let Some(value) = request.headers_mut().remove(PRINCIPAL_HEADER)
            && self.trust
        {
            let accepted = peer_gateway(&request).and_then(|gateway| {
                Principal::decode(value.as_bytes()).map(|p| Principal { gateway, ..p })
            });
            match accepted {
                Some(principal) => {
                    request.extensions_mut().insert(principal);
                }
                None => {
                    let status: tonic::Status = ApiError::new(
                        Code::PermissionDenied,
                        "PRINCIPAL_NOT_TRUSTED",
                        "a principal is accepted only from a federation gateway",
                    )
                    .with_metadata("header", PRINCIPAL_HEADER)
                    .into();
                    return Box::pin(async move { Ok(status.into_http()) });
                }
            }
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn principal() -> Principal {
        Principal {
            sub: "op-1".into(),
            role: Role::Operator,
            comuni: vec!["011027".into()],
            fiscal_number: None,
            gateway: String::new(),
        }
    }

    /// A citizen is their codice fiscale (trimmed, upper case); staff and peers are no citizen;
    /// a citizen principal without a codice fiscale owns nothing and is refused.
    #[test]
    fn a_citizen_is_their_codice_fiscale() {
        let person = |cf: Option<&str>| Principal {
            role: Role::Citizen,
            comuni: Vec::new(),
            fiscal_number: cf.map(str::to_owned),
            ..principal()
        };
        assert_eq!(
            citizen(Some(&person(Some(" rssmra80a01i449q ")))).expect("a citizen"),
            Some("RSSMRA80A01I449Q".to_owned())
        );
        assert_eq!(citizen(Some(&principal())).expect("staff"), None);
        assert_eq!(citizen(None).expect("a peer"), None);
        let err = citizen(Some(&person(None))).expect_err("no codice fiscale");
        assert_eq!(err.code, Code::PermissionDenied);
        assert!(refuse_citizen(Some(&principal())).is_ok());
        assert_eq!(
            refuse_citizen(Some(&person(Some("RSSMRA80A01I449Q"))))
                .expect_err("a citizen")
                .reason,
            "ROLE_NOT_ALLOWED"
        );
    }

    #[test]
    fn header_round_trip() {
        let p = principal();
        assert_eq!(Principal::decode(p.encode().as_bytes()), Some(p));
        assert_eq!(Principal::decode(b"not base64!"), None);
    }

    /// Without a gateway's certificate on the connection, a principal header is refused on a
    /// node and dropped on a gateway; it never reaches a handler.
    #[tokio::test]
    async fn a_principal_header_from_a_non_gateway_is_refused_or_dropped() {
        let handler = tower::service_fn(|request: http::Request<()>| async move {
            let seen = request.extensions().get::<Principal>().is_some();
            let forwarded = request.headers().contains_key(PRINCIPAL_HEADER);
            Ok::<_, Infallible>(http::Response::new(format!("{seen}/{forwarded}")))
        });
        let request = || {
            http::Request::builder()
                .uri("/unione.registry.v1.ProtocolService/CreateRegistration")
                .header(PRINCIPAL_HEADER, principal().encode())
                .body(())
                .expect("request")
        };
        let mut node = PrincipalLayer::new(true).layer(handler);
        let response = node.call(request()).await.expect("a response");
        let status = tonic::Status::from_header_map(response.headers()).expect("refused");
        assert_eq!(
            crate::error::reason_and_field(&status).0,
            "PRINCIPAL_NOT_TRUSTED"
        );

        let mut gateway = PrincipalLayer::new(false).layer(handler);
        let response = gateway.call(request()).await.expect("a response");
        assert_eq!(response.body(), "false/false");

        let plain = http::Request::builder()
            .uri("/x/y")
            .body(())
            .expect("request");
        let response = node.call(plain).await.expect("a response");
        assert_eq!(response.body(), "false/false");
    }
}
