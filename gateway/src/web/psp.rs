//! A SIMULATED payment service provider, for demos and tests: it moves no money.
//!
//! When `web.simulated_psp_token_file` names a file holding a payment provider token, the
//! front office offers a checkout for the signed-in citizen's notices. Paying makes the real
//! provider calls of the payments service through the gateway, under that provider token,
//! exactly as a PSP of the pagoPA network would after taking the money: `VerifyNotice`,
//! `ActivatePayment`, `SendReceipt`. The position then moves to PAID (or PARTIALLY_PAID) and
//! the citizen downloads the sealed receipt with their own token. No card is read and no
//! account is charged: never configure it where real notices are paid.
//!
//! This is the one place where the web front calls with an authority other than the caller's:
//! so it first reads the position with the CALLER'S token (the node answers NOT_FOUND unless
//! the caller is its debtor), and it serves signed-in citizens only. Without the token file
//! its endpoints answer 501 `SIMULATED_PSP_NOT_AVAILABLE`.
//!
//! Endpoints: `GET /api/psp/checkout?position&notice` (what is about to be paid) and
//! `POST /api/psp/pay` `{position, notice, payment_key}`.

use std::path::PathBuf;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::Code;
use unione_kit::names::Istat;
use unione_kit::token::Role;
use unione_proto::payments::v1 as payments;
use unione_proto::payments::v1::debt_position_service_client::DebtPositionServiceClient;
use unione_proto::payments::v1::payment_provider_service_client::PaymentProviderServiceClient;

use super::frontoffice::{date_json, parse_id};
use super::{Caller, JsonBody, WebError, WebState, parse_istat};

/// The simulated provider's configuration: where its token is. The file is read at every
/// payment, so a token rotated on disk is picked up without a restart.
#[derive(Debug, Clone)]
pub struct SimulatedPsp {
    token_file: PathBuf,
}

impl SimulatedPsp {
    /// The simulated provider of `web.simulated_psp_token_file`, or none when it is empty.
    pub fn from_config(config: &crate::config::WebConfig) -> Option<Self> {
        (!config.simulated_psp_token_file.is_empty()).then(|| Self {
            token_file: PathBuf::from(&config.simulated_psp_token_file),
        })
    }
}

/// The checkout endpoints.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/psp/checkout", get(checkout))
        .route("/api/psp/pay", post(pay))
}

fn not_available() -> WebError {
    WebError::new(
        StatusCode::NOT_IMPLEMENTED,
        Code::Unimplemented,
        "SIMULATED_PSP_NOT_AVAILABLE",
        "this front office offers no simulated payment provider: pay the notice with any \
         pagoPA provider (bank, post office, app) using its notice number",
    )
}

/// The provider's token and identity, verified like any token.
struct Provider {
    caller: Caller,
    psp_id: String,
}

fn provider(state: &WebState) -> Result<Provider, WebError> {
    let psp = state.psp.as_ref().ok_or_else(not_available)?;
    let unavailable = |why: String| {
        tracing::error!(file = %psp.token_file.display(), %why, "simulated PSP token");
        WebError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::Unavailable,
            "SIMULATED_PSP_MISCONFIGURED",
            "the simulated payment provider cannot sign in; try again later",
        )
    };
    let token = std::fs::read_to_string(&psp.token_file).map_err(|e| unavailable(e.to_string()))?;
    let token = token.trim();
    let claims = state
        .verifier
        .verify(token)
        .map_err(|e| unavailable(e.to_string()))?;
    if claims.role != Role::PaymentProvider {
        return Err(unavailable("not a payment provider token".to_owned()));
    }
    Ok(Provider {
        caller: Caller::bearer(token),
        psp_id: claims.sub,
    })
}

/// Refuses anyone but a signed-in citizen: the checkout pays a citizen's own notice.
fn require_citizen(state: &WebState, headers: &HeaderMap) -> Result<(), WebError> {
    let claims = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| state.verifier.verify(t.trim()).ok())
        .ok_or_else(|| {
            WebError::new(
                StatusCode::UNAUTHORIZED,
                Code::Unauthenticated,
                "SIGN_IN_REQUIRED",
                "sign in to pay a notice",
            )
            .with_field("authorization")
        })?;
    if claims.role != Role::Citizen {
        return Err(WebError::new(
            StatusCode::FORBIDDEN,
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
            "the simulated checkout pays a citizen's own notices",
        ));
    }
    Ok(())
}

/// The position (`comuni/{istat}/debtPositions/{id}`) read with the caller's token, and its
/// option with notice number `notice`.
async fn own_option(
    state: &WebState,
    caller: &Caller,
    position: &str,
    notice: &str,
) -> Result<(Istat, payments::DebtPosition, payments::PaymentOption), WebError> {
    let mut parts = position.split('/');
    let (Some("comuni"), Some(istat), Some("debtPositions"), Some(id), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(WebError::invalid(
            "position",
            "INVALID_NAME",
            "expected comuni/{istat}/debtPositions/{id}",
        ));
    };
    let istat = parse_istat("position", istat)?;
    let id = parse_id("position", id)?;
    let notice = parse_id("notice", notice)?;
    let position = DebtPositionServiceClient::new(state.bridge.channel())
        .get_debt_position(caller.request(
            payments::GetDebtPositionRequest {
                name: format!("{}/debtPositions/{id}", istat.resource_name()),
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    let option = position
        .payment_options
        .iter()
        .find(|o| o.notice_number == notice)
        .cloned()
        .ok_or_else(|| {
            WebError::new(
                StatusCode::NOT_FOUND,
                Code::NotFound,
                "NOT_FOUND",
                "no such notice in this position",
            )
            .with_field("notice")
        })?;
    Ok((istat, position, option))
}

fn notice_name(istat: &Istat, notice: &str) -> String {
    format!("{}/notices/{notice}", istat.resource_name())
}

/// The provider's `VerifyNotice` of `notice`.
async fn verify(
    channel: tonic::transport::Channel,
    provider: &Provider,
    istat: &Istat,
    notice: &str,
) -> Result<payments::VerifyNoticeResponse, WebError> {
    Ok(PaymentProviderServiceClient::new(channel)
        .verify_notice(provider.caller.request(
            payments::VerifyNoticeRequest {
                name: notice.to_owned(),
            },
            Some(istat),
        ))
        .await?
        .into_inner())
}

fn verified_json(v: &payments::VerifyNoticeResponse) -> Value {
    json!({
        "notice": v.name,
        "notice_number": v.notice_number,
        "iuv": v.iuv,
        "amount_cents": v.amount_cents,
        "due_date": date_json(v.due_date.as_ref()),
        "status": payments::NoticeStatus::try_from(v.status)
            .map(|s| s.as_str_name()).unwrap_or_default(),
        "creditor_name": v.creditor_name,
        "creditor_fiscal_code": v.creditor_fiscal_code,
        "description": v.description,
        "remittance_information": v.remittance_information,
        "installment": v.installment,
    })
}

#[derive(Debug, Deserialize)]
struct CheckoutQuery {
    position: Option<String>,
    notice: Option<String>,
}

/// What the citizen is about to pay, as the provider sees it (`VerifyNotice`).
async fn checkout(
    State(state): State<WebState>,
    headers: HeaderMap,
    caller: Caller,
    Query(q): Query<CheckoutQuery>,
) -> Result<Response, WebError> {
    let provider = provider(&state)?;
    require_citizen(&state, &headers)?;
    let (istat, position, option) = own_option(
        &state,
        &caller,
        q.position.as_deref().unwrap_or_default(),
        q.notice.as_deref().unwrap_or_default(),
    )
    .await?;
    let notice = notice_name(&istat, &option.notice_number);
    let verified = verify(state.bridge.channel(), &provider, &istat, &notice).await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "position": position.name,
            "provider": provider.psp_id,
            "simulated": true,
            "verified": verified_json(&verified),
        })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct PayBody {
    position: String,
    notice: String,
    /// The page's key for this payment: a retry with the same key pays once.
    payment_key: String,
}

/// Pays a notice: verify, activate, send the receipt, under the provider's token.
async fn pay(
    State(state): State<WebState>,
    headers: HeaderMap,
    caller: Caller,
    JsonBody(body): JsonBody<PayBody>,
) -> Result<Response, WebError> {
    let provider = provider(&state)?;
    require_citizen(&state, &headers)?;
    let key = parse_id("payment_key", &body.payment_key)?;
    if key.len() < 8 {
        return Err(WebError::invalid(
            "payment_key",
            "INVALID_ID",
            "the payment key has at least 8 characters",
        ));
    }
    let (istat, _, option) = own_option(&state, &caller, &body.position, &body.notice).await?;
    let notice = notice_name(&istat, &option.notice_number);
    let verified = verify(state.bridge.channel(), &provider, &istat, &notice).await?;
    let mut client = PaymentProviderServiceClient::new(state.bridge.channel());
    let activation = client
        .activate_payment(provider.caller.request(
            payments::ActivatePaymentRequest {
                name: notice.clone(),
                psp_id: provider.psp_id.clone(),
                idempotency_key: key.clone(),
                amount_cents: verified.amount_cents,
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    // Here a real provider takes the money; the simulated one takes none.
    let now = chrono::Utc::now();
    let receipt = client
        .send_receipt(provider.caller.request(
            payments::SendReceiptRequest {
                notice,
                psp_id: provider.psp_id.clone(),
                receipt_id: key,
                amount_cents: verified.amount_cents,
                payment_time: Some(prost_types::Timestamp {
                    seconds: now.timestamp(),
                    nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or_default(),
                }),
                activation_id: activation.activation_id,
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "receipt": receipt.name,
            "debt_position": receipt.debt_position,
            "amount_cents": receipt.amount_cents,
            "position_state": payments::debt_position::State::try_from(receipt.position_state)
                .map(|s| s.as_str_name()).unwrap_or_default(),
            "simulated": true,
        })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::web::Settings;
    use unione_kit::certs;
    use unione_kit::tls::TlsFiles;
    use unione_kit::token::{Signer, Verifier};

    /// A web state whose bridge is never dialled (the decisions below come first).
    fn state(dir: &std::path::Path, psp: Option<SimulatedPsp>) -> (WebState, Signer) {
        unione_kit::tls::install_crypto_provider();
        let certs_dir = dir.join("certs");
        certs::ensure_ca(&certs_dir, "Test federation").expect("CA");
        let keys = dir.join("keys");
        unione_kit::token::ensure_keys(&keys).expect("keys");
        let tls = TlsFiles {
            ca: certs::ca_cert_path(&certs_dir).display().to_string(),
            ..TlsFiles::default()
        };
        let state = WebState {
            bridge: crate::web::Bridge::new("127.0.0.1:9".parse().expect("addr"), "gateway", &tls)
                .expect("bridge"),
            verifier: Verifier::load(&keys).expect("verifier"),
            settings: Arc::new(Settings {
                kiosk_idle_seconds: 90,
            }),
            psp,
        };
        (state, Signer::load(&keys).expect("signer"))
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
        headers
    }

    #[tokio::test]
    async fn without_a_token_file_the_provider_is_not_available() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (state, _) = state(dir.path(), None);
        let err = provider(&state).err().expect("no provider");
        assert_eq!(err.reason(), "SIMULATED_PSP_NOT_AVAILABLE");
        assert!(
            SimulatedPsp::from_config(&crate::config::WebConfig::default()).is_none(),
            "off unless configured"
        );
    }

    #[tokio::test]
    async fn the_provider_signs_in_only_with_a_provider_token_and_pays_for_citizens_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("psp.token");
        let psp = SimulatedPsp {
            token_file: file.clone(),
        };
        let (state, signer) = state(dir.path(), Some(psp));
        // A missing file, then a token of another role: misconfigured, nobody pays.
        assert_eq!(
            provider(&state).err().expect("no file").reason(),
            "SIMULATED_PSP_MISCONFIGURED"
        );
        std::fs::write(
            &file,
            signer.issue("op", Role::Operator, vec!["011027".into()], None, 1),
        )
        .expect("write");
        assert_eq!(
            provider(&state).err().expect("not a provider").reason(),
            "SIMULATED_PSP_MISCONFIGURED"
        );
        // A provider token (rotated on disk: read at each payment) names the provider.
        std::fs::write(
            &file,
            format!(
                "{}\n",
                signer.issue(
                    "SIM-PSP",
                    Role::PaymentProvider,
                    vec!["011027".into()],
                    None,
                    1
                )
            ),
        )
        .expect("write");
        assert_eq!(provider(&state).expect("provider").psp_id, "SIM-PSP");

        // Only a signed-in citizen reaches the checkout.
        let citizen = signer.issue(
            "c",
            Role::Citizen,
            vec![],
            Some("RSSMRA80A01H501U".into()),
            1,
        );
        let operator = signer.issue("o", Role::Operator, vec!["011027".into()], None, 1);
        assert!(require_citizen(&state, &bearer(&citizen)).is_ok());
        assert_eq!(
            require_citizen(&state, &bearer(&operator))
                .expect_err("an operator")
                .reason(),
            "ROLE_NOT_ALLOWED"
        );
        assert_eq!(
            require_citizen(&state, &HeaderMap::new())
                .expect_err("nobody")
                .reason(),
            "SIGN_IN_REQUIRED"
        );
        assert_eq!(
            require_citizen(&state, &bearer("forged.token.here"))
                .expect_err("forged")
                .reason(),
            "SIGN_IN_REQUIRED"
        );
    }
}
