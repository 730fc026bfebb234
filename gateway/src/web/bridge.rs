//! From a JSON call of the web front to a gRPC call on the gateway's own client-facing
//! listener, and back.
//!
//! The web front holds no authority of its own: every call it makes carries the browser's
//! token, so the gateway applies the same authorization table, rate limits and audit log to a
//! citizen at the kiosk as to any gRPC client. Errors keep their meaning on the way back: the
//! HTTP status follows the gRPC code and the body carries the `ErrorInfo` reason and the field
//! at fault.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use unione_kit::names::{Istat, ROUTING_HEADER, routing_value};
use unione_kit::tls::TlsFiles;

/// How long the web front waits for one gRPC call.
const CALL_DEADLINE: Duration = Duration::from_secs(20);

/// A channel to the gateway's own client-facing listener, over the same TLS any client uses.
#[derive(Clone)]
pub struct Bridge {
    channel: Channel,
}

impl Bridge {
    /// A lazily connected channel to `grpc_addr` (an unspecified address is dialled on
    /// loopback), verifying the gateway's certificate for `{gateway_id}.gateways.unione.internal`
    /// with the federation CA.
    pub fn new(grpc_addr: SocketAddr, gateway_id: &str, tls: &TlsFiles) -> anyhow::Result<Self> {
        let mut addr = grpc_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let tls_config = ClientTlsConfig::new()
            .ca_certificate(tls.ca()?)
            .domain_name(format!(
                "{gateway_id}.{}",
                unione_kit::certs::GATEWAY_SUFFIX
            ));
        let channel = Endpoint::from_shared(format!("https://{addr}"))
            .context("the gateway's own address")?
            .tls_config(tls_config)
            .context("TLS to the gateway's own listener")?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Self { channel })
    }

    /// The channel, for a generated client.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }
}

/// Every item of a paged listing: `page(token)` answers one page's items and the next page
/// token (empty on the last page).
pub async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, WebError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), tonic::Status>>,
{
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let (batch, next) = page(token).await?;
        items.extend(batch);
        if next.is_empty() {
            return Ok(items);
        }
        token = next;
    }
}

/// Who calls: the bearer token of the browser's request, if any, passed on unchanged.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    token: Option<String>,
}

impl Caller {
    /// A caller with `token` (the front office's simulated payment provider, which calls
    /// with its own configured token).
    pub fn bearer(token: &str) -> Self {
        Self {
            token: Some(token.to_owned()),
        }
    }

    /// True when the browser sent a token.
    pub fn signed_in(&self) -> bool {
        self.token.is_some()
    }

    /// A gRPC request carrying the caller's token and, for a call that acts for one comune,
    /// the routing header.
    pub fn request<T>(&self, message: T, comune: Option<&Istat>) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(CALL_DEADLINE);
        if let Some(token) = &self.token {
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .expect("the token was checked to be visible ASCII");
            request.metadata_mut().insert("authorization", value);
        }
        if let Some(istat) = comune {
            let value = MetadataValue::try_from(routing_value(istat))
                .expect("a routing parameter is ASCII");
            request.metadata_mut().insert(ROUTING_HEADER, value);
        }
        request
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Self::default());
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                WebError::new(
                    StatusCode::UNAUTHORIZED,
                    Code::Unauthenticated,
                    "TOKEN_MALFORMED",
                    "the Authorization header must be `Bearer <token>`",
                )
                .with_field("authorization")
            })?;
        Ok(Self {
            token: Some(token.to_owned()),
        })
    }
}

/// A JSON request body; a body that is not the expected JSON is a clear 400, not a panic or
/// a plain-text rejection.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(WebError::invalid(
                "body",
                "INVALID_JSON",
                rejection.body_text(),
            )),
        }
    }
}

/// Reads an ISTAT code given in a path or query (`field` names it in the error).
pub fn parse_istat(field: &str, value: &str) -> Result<Istat, WebError> {
    let value = value.strip_prefix("comuni/").unwrap_or(value);
    Istat::parse(value).ok_or_else(|| {
        WebError::invalid(
            field,
            "INVALID_ISTAT_CODE",
            format!("`{value}` is not a six-digit ISTAT code"),
        )
    })
}

/// An error answered to the browser as JSON:
/// `{"error": {"code", "reason", "field", "message"}}` with the matching HTTP status.
#[derive(Debug)]
pub struct WebError {
    status: StatusCode,
    code: Code,
    reason: String,
    field: Option<String>,
    message: String,
}

impl WebError {
    /// An error with an explicit HTTP status and gRPC code.
    pub fn new(status: StatusCode, code: Code, reason: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            reason: reason.to_owned(),
            field: None,
            message: message.into(),
        }
    }

    /// Bad input in the JSON call itself (checked before any gRPC call is made).
    pub fn invalid(field: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
            reason,
            message,
        )
        .with_field(field)
    }

    /// Names the field at fault.
    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    /// The reason, for tests.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl From<tonic::Status> for WebError {
    fn from(status: tonic::Status) -> Self {
        let (reason, field) = unione_kit::error::reason_and_field(&status);
        let reason = if reason.is_empty() {
            code_name(status.code()).to_owned()
        } else {
            reason
        };
        Self {
            status: http_status(status.code()),
            code: status.code(),
            reason,
            field,
            message: status.message().to_owned(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": {
                "code": code_name(self.code),
                "reason": self.reason,
                "field": self.field,
                "message": self.message,
            }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// The HTTP status of a gRPC code (the mapping of google/rpc/code.proto).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status"),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The canonical name of a gRPC code, e.g. `PERMISSION_DENIED`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unione_kit::ApiError;

    #[test]
    fn grpc_errors_keep_reason_field_and_meaning() {
        let status: tonic::Status =
            ApiError::invalid("case.documents", "DOCUMENT_TOO_LARGE", "too big").into();
        let err = WebError::from(status);
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.reason(), "DOCUMENT_TOO_LARGE");
        assert_eq!(err.field.as_deref(), Some("case.documents"));

        let err = WebError::from(tonic::Status::permission_denied("no"));
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert_eq!(err.reason(), "PERMISSION_DENIED");
        assert_eq!(code_name(err.code), "PERMISSION_DENIED");
    }

    #[test]
    fn every_code_maps_to_an_error_status_but_ok() {
        for n in 1..=16 {
            let code = Code::from_i32(n);
            assert!(
                http_status(code).is_client_error() || http_status(code).is_server_error(),
                "{code:?}"
            );
        }
        assert_eq!(http_status(Code::Ok), StatusCode::OK);
    }

    #[test]
    fn the_routing_header_and_token_go_on_the_grpc_call() {
        let caller = Caller {
            token: Some("abc.def.ghi".into()),
        };
        let istat = parse_istat("comune", "comuni/011027").expect("valid");
        let request = caller.request((), Some(&istat));
        assert_eq!(
            request
                .metadata()
                .get("authorization")
                .map(|v| v.to_str().ok()),
            Some(Some("Bearer abc.def.ghi"))
        );
        assert_eq!(
            request
                .metadata()
                .get(ROUTING_HEADER)
                .map(|v| v.to_str().ok()),
            Some(Some("comune=comuni%2F011027"))
        );
        assert_eq!(
            parse_istat("comune", "11027").map_err(|e| e.reason).err(),
            Some("INVALID_ISTAT_CODE".to_owned())
        );
        let anonymous = Caller::default().request((), None);
        assert!(anonymous.metadata().get("authorization").is_none());
    }
}
