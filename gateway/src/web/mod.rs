//! The gateway's web front: static pages that need no build step, and a small JSON API under
//! `/api/` that they call.
//!
//! The JSON API is a thin translation: each endpoint makes gRPC calls to this gateway's own
//! client-facing listener with the browser's token ([`bridge`]), so a page can do exactly what
//! its user's token allows any gRPC client to do, no more. The pages keep the token in the
//! tab's session storage and send it as `Authorization: Bearer`; no cookie is ever set, so no
//! cross-site request can act for a signed-in user.
//!
//! Shared endpoints: `GET /api/session` (the verified claims of the caller's token, for the
//! page to show who is signed in), `GET /api/settings` and `GET /api/comuni` (the members).
//! Pages: `/common/*` holds the shared style sheet and scripts.

pub mod bridge;
mod dashboard;
mod frontoffice;
pub mod psp;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tonic::Code;
use unione_kit::token::Verifier;
use unione_proto::federation::v1::ListMembersRequest;
use unione_proto::federation::v1::directory_service_client::DirectoryServiceClient;

use crate::config::WebConfig;
pub use bridge::{Bridge, Caller, JsonBody, WebError, all_pages, parse_istat};

/// What every endpoint of the web front shares.
#[derive(Clone)]
pub struct WebState {
    /// The channel to the gateway's own gRPC listener.
    pub bridge: Bridge,
    /// Verifies tokens for `/api/session` (display only: authorization happens on the gRPC
    /// calls).
    pub verifier: Verifier,
    /// The settings the pages read.
    pub settings: Arc<Settings>,
    /// The simulated payment provider of the front office, when configured.
    pub psp: Option<psp::SimulatedPsp>,
}

/// Settings the pages read from `GET /api/settings`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    /// Seconds of inactivity after which a kiosk signs the citizen out.
    pub kiosk_idle_seconds: u32,
}

/// A file served as it is, compiled into the binary.
pub struct Asset {
    /// The URL path, e.g. `/common/unione.css`.
    pub path: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

/// The shared style sheet and scripts.
const COMMON: &[Asset] = &[
    Asset {
        path: "/common/unione.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/common/unione.css"),
    },
    Asset {
        path: "/common/api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/common/api.js"),
    },
    Asset {
        path: "/common/i18n.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/common/i18n.js"),
    },
    Asset {
        path: "/favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../web/common/favicon.svg"),
    },
];

/// Routes serving `assets` with GET.
pub fn asset_routes(assets: &'static [Asset]) -> Router<WebState> {
    assets.iter().fold(Router::new(), |router, asset| {
        router.route(
            asset.path,
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, asset.content_type),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    asset.body,
                )
            }),
        )
    })
}

/// The whole web front.
pub fn router(state: WebState) -> Router {
    Router::new()
        .merge(asset_routes(COMMON))
        .merge(dashboard::routes())
        .merge(frontoffice::routes())
        .merge(psp::routes())
        .route("/api/session", get(session))
        .route("/api/settings", get(settings))
        .route("/api/comuni", get(comuni))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers on every response: the pages load scripts and styles only from this origin, are
/// never framed, and leak no referrer.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; \
             frame-src blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn not_found() -> WebError {
    WebError::new(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        "NOT_FOUND",
        "no such page or endpoint",
    )
}

/// The verified claims of the caller's token.
async fn session(
    State(state): State<WebState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, WebError> {
    let unauthenticated = |reason: &str, message: &str| {
        WebError::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthenticated,
            reason,
            message.to_owned(),
        )
        .with_field("authorization")
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthenticated("TOKEN_MISSING", "sign in with a token"))?;
    let claims = state
        .verifier
        .verify(token.trim())
        .map_err(|err| unauthenticated("TOKEN_INVALID", &err.to_string()))?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({
            "subject": claims.sub,
            "role": claims.role,
            "comuni": claims.comuni,
            "fiscal_number": claims.fiscal_number,
            "expires": claims.exp,
        })),
    )
        .into_response())
}

async fn settings(State(state): State<WebState>) -> impl IntoResponse {
    let mut value = serde_json::to_value(state.settings.as_ref()).unwrap_or_default();
    // Whether the front office offers its simulated payment provider.
    value["simulated_psp"] = serde_json::Value::Bool(state.psp.is_some());
    axum::Json(value)
}

/// The member comuni (public, like `DirectoryService.ListMembers`).
async fn comuni(
    State(state): State<WebState>,
    caller: Caller,
) -> Result<axum::Json<serde_json::Value>, WebError> {
    let client = DirectoryServiceClient::new(state.bridge.channel());
    let members = all_pages(|page_token| {
        let mut client = client.clone();
        let request = caller.request(
            ListMembersRequest {
                page_size: 500,
                page_token,
            },
            None,
        );
        async move {
            let page = client.list_members(request).await?.into_inner();
            Ok((page.members, page.next_page_token))
        }
    })
    .await?;
    let members: Vec<serde_json::Value> = members
        .into_iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "istat_code": m.istat_code,
                "display_name": m.display_name,
                "province": m.province,
                "population": m.population,
                "peer_group": m.peer_group,
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({ "comuni": members })))
}

/// The web front being served.
pub struct RunningWeb {
    /// The bound address.
    pub addr: SocketAddr,
    /// Whether it serves HTTPS.
    pub tls: bool,
}

/// Binds `config.listen` and serves `app` until `shutdown` resolves: over HTTPS with
/// `config.cert`/`config.key` when given, plain HTTP otherwise (validation allows that only
/// on loopback).
pub async fn spawn(
    config: &WebConfig,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<RunningWeb>> {
    let Some(addr) = config.listen_addr()? else {
        return Ok(None);
    };
    let tls = if config.tls() {
        Some(tls_acceptor(config)?)
    } else {
        None
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the web front on {addr}"))?;
    let addr = listener.local_addr()?;
    let https = tls.is_some();
    tokio::spawn(async move {
        let result = match tls {
            None => axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(anyhow::Error::from),
            Some(acceptor) => serve_tls(listener, acceptor, app, shutdown).await,
        };
        if let Err(err) = result {
            tracing::error!(error = %err, "the web front failed");
        }
    });
    tracing::info!(%addr, https, "web front serving");
    Ok(Some(RunningWeb { addr, tls: https }))
}

fn tls_acceptor(config: &WebConfig) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&config.cert)
        .with_context(|| format!("reading web.cert {}", config.cert))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing web.cert {}", config.cert))?;
    let key = PrivateKeyDer::from_pem_file(&config.key)
        .with_context(|| format!("reading web.key {}", config.key))?;
    let mut server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("web.cert and web.key do not make a TLS identity")?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

/// Accepts TLS connections and serves each with hyper until `shutdown` resolves; a handshake
/// that fails drops that connection only.
async fn serve_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "web front: accept failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(
                std::time::Duration::from_secs(10),
                acceptor.accept(stream),
            )
            .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "web front: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = TowerToHyperService::new(app);
            if let Err(err) = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %err, "web front: connection ended");
            }
        });
    }
}
