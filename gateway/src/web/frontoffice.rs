//! The citizens' front office (issue 8): the single-page application served at `/`, and the
//! JSON endpoints it calls.
//!
//! Every endpoint is a translation into gRPC calls with the CALLER'S token through the
//! [`Bridge`](super::Bridge): whether a citizen may see a residence, a certificate, a case or
//! a notice is decided by the gateway's authorization table and by the node serving the
//! comune (which answers NOT_FOUND for another citizen's record), never here. The only
//! endpoint that needs no token is the verification of a certificate's code, which the
//! gateway serves to anyone.
//!
//! Endpoints (`{istat}` is a six-digit ISTAT code, `{id}` an opaque resource id):
//! - `GET /api/verify?comune&code`: verifies a certificate's code (public).
//! - `GET /api/me?comune`: my resident record, residence today and household.
//! - `GET|POST /api/certificates?comune`, `GET /api/certificates/{istat}/{id}[/pdf]`.
//! - `GET /api/procedure-types?comune`.
//! - `GET|POST /api/cases?comune`, `GET /api/cases/{istat}/{id}`,
//!   `POST /api/cases/{istat}/{id}/{integration|refusal-answer|withdraw}`.
//! - `GET /api/notices?comune`, `GET /api/notices/{istat}/{id}`,
//!   `GET /api/receipts/{istat}/{notice}/{receipt}` (the sealed receipt, downloaded).
//! - `POST /api/complaints`, `GET /api/complaints/{istat}/{id}`.
//! - `GET /api/surveys/{istat}/{id}`, `POST /api/surveys/{istat}/{id}/responses`.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::Code;
use unione_kit::names::Istat;
use unione_proto::common::v1::Channel as ContactChannel;
use unione_proto::google::r#type::Date;
use unione_proto::payments::v1 as payments;
use unione_proto::payments::v1::debt_position_service_client::DebtPositionServiceClient;
use unione_proto::payments::v1::payment_provider_service_client::PaymentProviderServiceClient;
use unione_proto::quality::v1 as quality;
use unione_proto::quality::v1::complaint_service_client::ComplaintServiceClient;
use unione_proto::quality::v1::survey_service_client::SurveyServiceClient;
use unione_proto::registry::v1 as registry;
use unione_proto::registry::v1::case_service_client::CaseServiceClient;
use unione_proto::registry::v1::certificate_service_client::CertificateServiceClient;
use unione_proto::registry::v1::household_service_client::HouseholdServiceClient;
use unione_proto::registry::v1::resident_service_client::ResidentServiceClient;

use super::{Asset, Caller, JsonBody, WebError, WebState, asset_routes, parse_istat};

/// At most this many documents attached to one case.
pub const MAX_DOCUMENTS: usize = 5;
/// At most this many bytes of documents (decoded) in one case: the whole case must fit the
/// gateway's default gRPC message limit (8 MiB) with room to spare.
pub const MAX_DOCUMENT_BYTES: usize = 6 * 1024 * 1024;
/// The largest JSON body of a case submission: the documents in base64 (4/3 of their size)
/// and the rest of the form.
const CASE_BODY_LIMIT: usize = MAX_DOCUMENT_BYTES / 3 * 4 + 256 * 1024;

/// The page and its modules.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../web/frontoffice/index.html"),
    },
    Asset {
        path: "/frontoffice/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/frontoffice/app.js"),
    },
    Asset {
        path: "/frontoffice/views.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/frontoffice/views.js"),
    },
    Asset {
        path: "/frontoffice/messages.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/frontoffice/messages.js"),
    },
    Asset {
        path: "/frontoffice/kiosk.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/frontoffice/kiosk.js"),
    },
    Asset {
        path: "/frontoffice/frontoffice.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/frontoffice/frontoffice.css"),
    },
];

/// The front office's page and endpoints.
pub fn routes() -> Router<WebState> {
    Router::new()
        .merge(asset_routes(ASSETS))
        .route("/api/verify", get(verify))
        .route("/api/me", get(me))
        .route(
            "/api/certificates",
            get(list_certificates).post(issue_certificate),
        )
        .route("/api/certificates/{istat}/{id}", get(get_certificate))
        .route("/api/certificates/{istat}/{id}/pdf", get(certificate_pdf))
        .route("/api/procedure-types", get(procedure_types))
        .route(
            "/api/cases",
            get(list_cases)
                .post(submit_case)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/api/cases/{istat}/{id}", get(get_case))
        .route("/api/cases/{istat}/{id}/{action}", post(case_action))
        .route("/api/notices", get(list_notices))
        .route("/api/notices/{istat}/{id}", get(get_notice))
        .route("/api/receipts/{istat}/{notice}/{receipt}", get(receipt))
        .route(
            "/api/complaints",
            get(list_complaints).post(create_complaint),
        )
        .route("/api/complaints/{istat}/{id}", get(get_complaint))
        .route("/api/surveys", get(list_surveys))
        .route("/api/surveys/{istat}/{id}", get(get_survey))
        .route("/api/surveys/{istat}/{id}/responses", post(answer_survey))
}

// ---- small translations -----------------------------------------------------------------

/// `?comune=011027` (or `comuni/011027`).
#[derive(Debug, Deserialize)]
pub struct ComuneQuery {
    comune: Option<String>,
}

impl ComuneQuery {
    fn istat(&self) -> Result<Istat, WebError> {
        let value = self.comune.as_deref().unwrap_or_default();
        if value.is_empty() {
            return Err(WebError::invalid(
                "comune",
                "COMUNE_REQUIRED",
                "choose a comune first",
            ));
        }
        parse_istat("comune", value)
    }
}

/// An opaque id from the address bar: letters, digits, `-` and `_`, so that it can never
/// name another kind of resource.
pub fn parse_id(field: &str, value: &str) -> Result<String, WebError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(WebError::invalid(
            field,
            "INVALID_ID",
            format!("`{value}` is not an id"),
        ))
    }
}

fn path_istat(istat: &str) -> Result<Istat, WebError> {
    parse_istat("comune", istat)
}

/// The comune and resource name `comuni/{istat}/{collection}/{id}` of an address-bar path.
fn resource(istat: &str, collection: &str, id: &str) -> Result<(Istat, String), WebError> {
    let istat = path_istat(istat)?;
    let id = parse_id("id", id)?;
    let name = format!("{}/{collection}/{id}", istat.resource_name());
    Ok((istat, name))
}

/// `YYYY-MM-DD`, or null.
pub fn date_json(date: Option<&Date>) -> Value {
    match date {
        Some(d) if d.year > 0 => json!(format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)),
        _ => Value::Null,
    }
}

/// Reads `YYYY-MM-DD`.
fn parse_date(field: &str, value: &str) -> Result<Date, WebError> {
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(|d| {
            use chrono::Datelike as _;
            Date {
                year: d.year(),
                month: i32::try_from(d.month()).unwrap_or_default(),
                day: i32::try_from(d.day()).unwrap_or_default(),
            }
        })
        .map_err(|_| {
            WebError::invalid(
                field,
                "INVALID_DATE",
                format!("`{value}` is not a date (YYYY-MM-DD)"),
            )
        })
}

/// Today as a civil date. The UTC date is never after the date in Italy, so a call that
/// refuses future dates accepts it.
fn today() -> Date {
    use chrono::Datelike as _;
    let d = chrono::Utc::now().date_naive();
    Date {
        year: d.year(),
        month: i32::try_from(d.month()).unwrap_or_default(),
        day: i32::try_from(d.day()).unwrap_or_default(),
    }
}

/// RFC 3339, or null.
fn time_json(t: Option<&prost_types::Timestamp>) -> Value {
    t.and_then(|t| {
        chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or_default())
    })
    .map_or(Value::Null, |t| json!(t.to_rfc3339()))
}

/// The last segment of a resource name.
fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or_default()
}

/// The channel a request came through: the kiosk or the web.
fn contact_channel(kiosk: bool) -> i32 {
    if kiosk {
        ContactChannel::Kiosk as i32
    } else {
        ContactChannel::Web as i32
    }
}

/// An idempotency key from the page, or none.
fn request_id(value: Option<&str>) -> Result<String, WebError> {
    match value {
        None | Some("") => Ok(String::new()),
        Some(v) => parse_id("request_id", v),
    }
}

/// A file to download.
fn attachment(content_type: &str, filename: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// A JSON answer that no cache keeps (it is a person's data).
fn private_json(value: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(value)).into_response()
}

// ---- certificates verification (public) -----------------------------------------------

#[derive(Debug, Deserialize)]
struct VerifyQuery {
    comune: Option<String>,
    code: Option<String>,
}

async fn verify(
    State(state): State<WebState>,
    caller: Caller,
    Query(q): Query<VerifyQuery>,
) -> Result<Response, WebError> {
    let istat = ComuneQuery { comune: q.comune }.istat()?;
    let code = q.code.unwrap_or_default();
    if code.trim().is_empty() {
        return Err(WebError::invalid(
            "code",
            "VERIFICATION_CODE_REQUIRED",
            "type the verification code printed on the certificate",
        ));
    }
    let answer = CertificateServiceClient::new(state.bridge.channel())
        .verify_certificate(caller.request(
            registry::VerifyCertificateRequest {
                parent: istat.resource_name(),
                verification_code: code,
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    let content: Value =
        serde_json::from_str(&answer.content).unwrap_or(Value::String(answer.content));
    Ok(private_json(json!({
        "certificate": answer.certificate,
        "content": content,
        "seal_valid": answer.seal_valid,
        "issue_time": time_json(answer.issue_time.as_ref()),
    })))
}

// ---- residence and household -----------------------------------------------------------

/// The caller's own current resident record in `istat`, if they are resident there (the
/// node lists a citizen's own record only).
async fn own_resident(
    state: &WebState,
    caller: &Caller,
    istat: &Istat,
) -> Result<Option<registry::Resident>, WebError> {
    let page = ResidentServiceClient::new(state.bridge.channel())
        .list_residents(caller.request(
            registry::ListResidentsRequest {
                parent: istat.resource_name(),
                page_size: 1,
                ..registry::ListResidentsRequest::default()
            },
            Some(istat),
        ))
        .await?
        .into_inner();
    Ok(page.residents.into_iter().next())
}

fn address_json(a: Option<&registry::Address>) -> Value {
    a.map_or(Value::Null, |a| {
        json!({
            "street": a.street,
            "house_number": a.house_number,
            "postal_code": a.postal_code,
            "locality": a.locality,
        })
    })
}

async fn me(
    State(state): State<WebState>,
    caller: Caller,
    Query(q): Query<ComuneQuery>,
) -> Result<Response, WebError> {
    let istat = q.istat()?;
    let Some(resident) = own_resident(&state, &caller, &istat).await? else {
        return Ok(private_json(json!({ "resident": null })));
    };
    let mut households = HouseholdServiceClient::new(state.bridge.channel());
    let residence = households
        .get_residence_at_date(caller.request(
            registry::GetResidenceAtDateRequest {
                name: resident.name.clone(),
                date: Some(today()),
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    let household = if residence.household.is_empty() {
        Value::Null
    } else {
        let h = households
            .get_household(caller.request(
                registry::GetHouseholdRequest {
                    name: residence.household.clone(),
                    as_of: None,
                },
                Some(&istat),
            ))
            .await?
            .into_inner();
        json!({
            "name": h.name,
            "start_date": date_json(h.start_date.as_ref()),
            "members": h.members.iter().map(|m| json!({
                "self": m.resident == resident.name,
                "relationship": relationship_name(m.relationship),
                "start_date": date_json(m.start_date.as_ref()),
            })).collect::<Vec<_>>(),
        })
    };
    Ok(private_json(json!({
        "resident": {
            "name": resident.name,
            "codice_fiscale": resident.codice_fiscale,
            "given_name": resident.given_name,
            "family_name": resident.family_name,
            "birth_date": date_json(resident.birth_date.as_ref()),
            "citizenship": resident.citizenship,
            "address": address_json(resident.address.as_ref()),
            "registration_date": date_json(resident.registration_date.as_ref()),
        },
        "residence": {
            "date": date_json(residence.date.as_ref()),
            "status": registry::ResidenceStatus::try_from(residence.status)
                .map(|s| s.as_str_name()).unwrap_or_default(),
            "address": address_json(residence.address.as_ref()),
            "relationship": relationship_name(residence.relationship),
        },
        "household": household,
    })))
}

fn relationship_name(value: i32) -> &'static str {
    registry::Relationship::try_from(value)
        .map(|r| r.as_str_name())
        .unwrap_or_default()
}

// ---- certificates ----------------------------------------------------------------------

fn certificate_json(c: &registry::Certificate) -> Value {
    json!({
        "name": c.name,
        "id": last_segment(&c.name),
        "comune": c.name.split('/').nth(1).unwrap_or_default(),
        "type": registry::CertificateType::try_from(c.r#type)
            .map(|t| t.as_str_name()).unwrap_or_default(),
        "as_of": date_json(c.as_of.as_ref()),
        "verification_code": c.verification_code,
        "issue_time": time_json(c.issue_time.as_ref()),
    })
}

async fn list_certificates(
    State(state): State<WebState>,
    caller: Caller,
    Query(q): Query<ComuneQuery>,
) -> Result<Response, WebError> {
    let istat = q.istat()?;
    let page = CertificateServiceClient::new(state.bridge.channel())
        .list_certificates(caller.request(
            registry::ListCertificatesRequest {
                parent: istat.resource_name(),
                resident: String::new(),
                page_size: 50,
                page_token: String::new(),
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    Ok(private_json(json!({
        "certificates": page.certificates.iter().map(certificate_json).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
struct IssueBody {
    comune: String,
    /// `RESIDENCE`, `HOUSEHOLD_STATUS` or `HISTORICAL_RESIDENCE`.
    r#type: String,
    /// For `HISTORICAL_RESIDENCE`: `YYYY-MM-DD`.
    #[serde(default)]
    as_of: Option<String>,
    #[serde(default)]
    kiosk: bool,
    #[serde(default)]
    request_id: Option<String>,
}

async fn issue_certificate(
    State(state): State<WebState>,
    caller: Caller,
    JsonBody(body): JsonBody<IssueBody>,
) -> Result<Response, WebError> {
    let istat = parse_istat("comune", &body.comune)?;
    let kind =
        registry::CertificateType::from_str_name(&format!("CERTIFICATE_TYPE_{}", body.r#type))
            .filter(|t| *t != registry::CertificateType::Unspecified)
            .ok_or_else(|| {
                WebError::invalid(
                    "type",
                    "INVALID_CERTIFICATE_TYPE",
                    "choose the kind of certificate",
                )
            })?;
    let as_of = match body.as_of.as_deref() {
        Some(v) if !v.is_empty() => Some(parse_date("as_of", v)?),
        _ => None,
    };
    let request_id = request_id(body.request_id.as_deref())?;
    let resident = own_resident(&state, &caller, &istat)
        .await?
        .ok_or_else(|| {
            WebError::new(
                StatusCode::NOT_FOUND,
                Code::NotFound,
                "NOT_RESIDENT",
                "you are not registered as resident in this comune",
            )
            .with_field("comune")
        })?;
    let certificate = CertificateServiceClient::new(state.bridge.channel())
        .issue_certificate(caller.request(
            registry::IssueCertificateRequest {
                parent: istat.resource_name(),
                certificate: Some(registry::Certificate {
                    r#type: kind as i32,
                    resident: resident.name,
                    as_of,
                    channel: contact_channel(body.kiosk),
                    ..registry::Certificate::default()
                }),
                request_id,
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    Ok(private_json(certificate_json(&certificate)))
}

async fn fetch_certificate(
    state: &WebState,
    caller: &Caller,
    istat: &str,
    id: &str,
) -> Result<registry::Certificate, WebError> {
    let (istat, name) = resource(istat, "certificates", id)?;
    Ok(CertificateServiceClient::new(state.bridge.channel())
        .get_certificate(caller.request(registry::GetCertificateRequest { name }, Some(&istat)))
        .await?
        .into_inner())
}

async fn get_certificate(
    State(state): State<WebState>,
    caller: Caller,
    Path((istat, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let c = fetch_certificate(&state, &caller, &istat, &id).await?;
    let mut value = certificate_json(&c);
    let content: Value = serde_json::from_str(&c.content).unwrap_or(Value::String(c.content));
    value["content"] = content;
    Ok(private_json(value))
}

async fn certificate_pdf(
    State(state): State<WebState>,
    caller: Caller,
    Path((istat, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let c = fetch_certificate(&state, &caller, &istat, &id).await?;
    Ok(attachment(
        "application/pdf",
        &format!("certificato-{}.pdf", c.verification_code),
        c.pdf,
    ))
}

// ---- procedure types and cases ---------------------------------------------------------

async fn procedure_types(
    State(state): State<WebState>,
    caller: Caller,
    Query(q): Query<ComuneQuery>,
) -> Result<Response, WebError> {
    let istat = q.istat()?;
    let page = CaseServiceClient::new(state.bridge.channel())
        .list_procedure_types(caller.request(
            registry::ListProcedureTypesRequest {
                parent: istat.resource_name(),
                page_size: 500,
                page_token: String::new(),
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    let types: Vec<Value> = page
        .procedure_types
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "code": p.code,
                "title": p.title,
                "legal_days": if p.legal_days == 0 { 30 } else { p.legal_days },
                "office": p.office,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "procedure_types": types })).into_response())
}

fn case_state_name(value: i32) -> &'static str {
    registry::CaseState::try_from(value)
        .map(|s| s.as_str_name())
        .unwrap_or_default()
}

fn case_json(c: &registry::Case) -> Value {
    let clock = c.clock.as_ref().map_or(Value::Null, |k| {
        json!({
            "deadline": date_json(k.deadline.as_ref()),
            "days_elapsed": k.days_elapsed,
            "days_remaining": k.days_remaining,
            "overdue": k.overdue,
            "suspension": registry::SuspensionKind::try_from(k.suspension)
                .map(|s| s.as_str_name()).unwrap_or_default(),
            "suspended_days": k.suspended_days,
        })
    });
    json!({
        "name": c.name,
        "id": last_segment(&c.name),
        "comune": c.name.split('/').nth(1).unwrap_or_default(),
        "procedure_type": last_segment(&c.procedure_type),
        "subject": c.subject,
        "data": c.data,
        "documents": c.documents.iter().map(|d| json!({
            "file_name": d.file_name,
            "media_type": d.media_type,
            "sha256": d.sha256,
            "size_bytes": d.size_bytes,
        })).collect::<Vec<_>>(),
        "office": c.office,
        "state": case_state_name(c.state),
        "protocol_number": c.protocol_number,
        "protocol_year": c.protocol_year,
        "submit_time": time_json(c.submit_time.as_ref()),
        "submission_date": date_json(c.submission_date.as_ref()),
        "legal_days": c.legal_days,
        "clock": clock,
        "history": c.history.iter().map(|h| json!({
            "action": registry::CaseAction::try_from(h.action)
                .map(|a| a.as_str_name()).unwrap_or_default(),
            "from_state": case_state_name(h.from_state),
            "to_state": case_state_name(h.to_state),
            "time": time_json(h.time.as_ref()),
            "reason": h.reason,
        })).collect::<Vec<_>>(),
    })
}

async fn list_cases(
    State(state): State<WebState>,
    caller: Caller,
    Query(q): Query<ComuneQuery>,
) -> Result<Response, WebError> {
    let istat = q.istat()?;
    let page = CaseServiceClient::new(state.bridge.channel())
        .list_cases(caller.request(
            registry::ListCasesRequest {
                parent: istat.resource_name(),
                page_size: 100,
                ..registry::ListCasesRequest::default()
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    Ok(private_json(json!({
        "cases": page.cases.iter().map(case_json).collect::<Vec<_>>(),
    })))
}

/// A document attached in the page, its content in base64.
#[derive(Debug, Deserialize)]
struct DocumentBody {
    file_name: String,
    #[serde(default)]
    media_type: String,
    content_base64: String,
}

#[derive(Debug, Deserialize)]
struct CaseBody {
    comune: String,
    /// The procedure type's code.
    procedure_type: String,
    subject: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    documents: Vec<DocumentBody>,
    #[serde(default)]
    request_id: Option<String>,
}

/// Decodes the attached documents, refusing too many or too large with a clear error on the
/// `documents` field before any call is made.
fn decode_documents(documents: Vec<DocumentBody>) -> Result<Vec<registry::Document>, WebError> {
    if documents.len() > MAX_DOCUMENTS {
        return Err(WebError::invalid(
            "documents",
            "TOO_MANY_DOCUMENTS",
            format!("attach at most {MAX_DOCUMENTS} documents"),
        ));
    }
    let mut total = 0usize;
    let mut out = Vec::with_capacity(documents.len());
    for d in documents {
        let content = base64::engine::general_purpose::STANDARD
            .decode(d.content_base64.trim())
            .map_err(|_| {
                WebError::invalid(
                    "documents",
                    "DOCUMENT_NOT_BASE64",
                    format!("`{}`: the content is not base64", d.file_name),
                )
            })?;
        if content.is_empty() {
            return Err(WebError::invalid(
                "documents",
                "DOCUMENT_EMPTY",
                format!("`{}` is empty", d.file_name),
            ));
        }
        total += content.len();
        if total > MAX_DOCUMENT_BYTES {
            return Err(documents_too_large());
        }
        let media_type = if d.media_type.is_empty() {
            "application/octet-stream".to_owned()
        } else {
            d.media_type
        };
        out.push(registry::Document {
            file_name: d.file_name,
            media_type,
            content,
            ..registry::Document::default()
        });
    }
    Ok(out)
}

/// Reads a case submission: a body over [`CASE_BODY_LIMIT`] is refused as documents too
/// large (the documents are what makes it large), not as a broken body.
async fn case_body(body: axum::body::Body) -> Result<CaseBody, WebError> {
    let bytes = axum::body::to_bytes(body, CASE_BODY_LIMIT)
        .await
        .map_err(|_| documents_too_large())?;
    serde_json::from_slice(&bytes)
        .map_err(|err| WebError::invalid("body", "INVALID_JSON", err.to_string()))
}

fn documents_too_large() -> WebError {
    WebError::invalid(
        "documents",
        "DOCUMENTS_TOO_LARGE",
        format!(
            "the documents together may be at most {} MiB",
            MAX_DOCUMENT_BYTES / (1024 * 1024)
        ),
    )
}

async fn submit_case(
    State(state): State<WebState>,
    caller: Caller,
    request: axum::extract::Request,
) -> Result<Response, WebError> {
    let body = case_body(request.into_body()).await?;
    let istat = parse_istat("comune", &body.comune)?;
    let code = parse_id("procedure_type", &body.procedure_type)?;
    let request_id = request_id(body.request_id.as_deref())?;
    let documents = decode_documents(body.documents)?;
    let case = CaseServiceClient::new(state.bridge.channel())
        .submit_case(caller.request(
            registry::SubmitCaseRequest {
                parent: istat.resource_name(),
                case: Some(registry::Case {
                    procedure_type: format!("{}/procedureTypes/{code}", istat.resource_name()),
                    subject: body.subject,
                    data: body.data,
                    documents,
                    ..registry::Case::default()
                }),
                request_id,
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    Ok(private_json(case_json(&case)))
}

async fn get_case(
    State(state): State<WebState>,
    caller: Caller,
    Path((istat, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let (istat, name) = resource(&istat, "cases", &id)?;
    let case = CaseServiceClient::new(state.bridge.channel())
        .get_case(caller.request(registry::GetCaseRequest { name }, Some(&istat)))
        .await?
        .into_inner();
    Ok(private_json(case_json(&case)))
}

#[derive(Debug, Deserialize)]
struct ReasonBody {
    #[serde(default)]
    reason: String,
}

/// The applicant's moves: answer a request for integration, answer a refusal notice,
/// withdraw.
async fn case_action(
    State(state): State<WebState>,
    caller: Caller,
    Path((istat, id, action)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<ReasonBody>,
) -> Result<Response, WebError> {
    let (istat, name) = resource(&istat, "cases", &id)?;
    let mut client = CaseServiceClient::new(state.bridge.channel());
    let reason = body.reason;
    let case = match action.as_str() {
        "integration" => {
            client
                .resubmit_case(
                    caller.request(registry::ResubmitCaseRequest { name, reason }, Some(&istat)),
                )
                .await?
        }
        "refusal-answer" => {
            client
                .answer_refusal_notice(caller.request(
                    registry::AnswerRefusalNoticeRequest { name, reason },
                    Some(&istat),
                ))
                .await?
        }
        "withdraw" => {
            client
                .withdraw_case(
                    caller.request(registry::WithdrawCaseRequest { name, reason }, Some(&istat)),
                )
                .await?
        }
        _ => {
            return Err(WebError::new(
                StatusCode::NOT_FOUND,
                Code::NotFound,
                "NOT_FOUND",
                "no such action on a case",
            ));
        }
    }
    .into_inner();
    Ok(private_json(case_json(&case)))
}

// ---- notices and receipts --------------------------------------------------------------

fn position_state_name(value: i32) -> &'static str {
    payments::debt_position::State::try_from(value)
        .map(|s| s.as_str_name())
        .unwrap_or_default()
}

fn position_json(p: &payments::DebtPosition, receipts: &[(String, String)]) -> Value {
    json!({
        "name": p.name,
        "id": last_segment(&p.name),
        "comune": p.name.split('/').nth(1).unwrap_or_default(),
        "description": p.description,
        "state": position_state_name(p.state),
        "create_time": time_json(p.create_time.as_ref()),
        "options": p.payment_options.iter().map(|o| json!({
            "notice_number": o.notice_number,
            "iuv": o.iuv,
            "amount_cents": o.amount_cents,
            "due_date": date_json(o.due_date.as_ref()),
            "installment": o.installment,
            "paid": o.paid,
            "receipt": receipts.iter().find(|(n, _)| *n == o.notice_number).map(|(_, r)| r),
        })).collect::<Vec<_>>(),
    })
}

async fn list_notices(
    State(state): State<WebState>,
    caller: Caller,
    Query(q): Query<ComuneQuery>,
) -> Result<Response, WebError> {
    let istat = q.istat()?;
    let page = DebtPositionServiceClient::new(state.bridge.channel())
        .list_debt_positions(caller.request(
            payments::ListDebtPositionsRequest {
                parent: istat.resource_name(),
                page_size: 100,
                page_token: String::new(),
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    Ok(private_json(json!({
        "positions": page.debt_positions.iter().map(|p| position_json(p, &[])).collect::<Vec<_>>(),
    })))
}

async fn get_notice(
    State(state): State<WebState>,
    caller: Caller,
    Path((istat, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let (istat, name) = resource(&istat, "debtPositions", &id)?;
    let position = DebtPositionServiceClient::new(state.bridge.channel())
        .get_debt_position(caller.request(payments::GetDebtPositionRequest { name }, Some(&istat)))
        .await?
        .into_inner();
    // The receipt of each paid notice, found with the caller's token too.
    let mut provider = PaymentProviderServiceClient::new(state.bridge.channel());
    let mut receipts = Vec::new();
    for option in position.payment_options.iter().filter(|o| o.paid) {
        let found = provider
            .list_receipts(caller.request(
                payments::ListReceiptsRequest {
                    parent: format!("{}/notices/{}", istat.resource_name(), option.notice_number),
                    page_size: 1,
                    page_token: String::new(),
                },
                Some(&istat),
            ))
            .await?
            .into_inner();
        if let Some(r) = found.receipts.first() {
            receipts.push((option.notice_number.clone(), r.name.clone()));
        }
    }
    Ok(private_json(position_json(&position, &receipts)))
}

async fn receipt(
    State(state): State<WebState>,
    caller: Caller,
    Path((istat, notice, receipt)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let istat = path_istat(&istat)?;
    let notice = parse_id("notice", &notice)?;
    let receipt = parse_id("receipt", &receipt)?;
    let sealed = PaymentProviderServiceClient::new(state.bridge.channel())
        .get_receipt(caller.request(
            payments::GetReceiptRequest {
                name: format!(
                    "{}/notices/{notice}/receipts/{receipt}",
                    istat.resource_name()
                ),
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    let mut response = attachment(
        "application/json",
        &format!("ricevuta-{notice}.json"),
        sealed.document.into_bytes(),
    );
    if let Ok(value) = sealed.sha256.parse() {
        response.headers_mut().insert("x-receipt-sha256", value);
    }
    Ok(response)
}

// ---- complaints ------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct ComplaintBody {
    comune: String,
    category: String,
    text: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    kiosk: bool,
    #[serde(default)]
    request_id: Option<String>,
}

fn complaint_json(c: &quality::Complaint) -> Value {
    let status = |s: i32| {
        quality::ComplaintStatus::try_from(s)
            .map(|s| s.as_str_name())
            .unwrap_or_default()
    };
    json!({
        "name": c.name,
        "id": c.complaint_id,
        "comune": c.name.split('/').nth(1).unwrap_or_default(),
        "category": c.category,
        "text": c.text,
        "contact": c.contact,
        "status": status(c.status),
        "receive_time": time_json(c.receive_time.as_ref()),
        "acknowledgement_deadline": date_json(c.acknowledgement_deadline.as_ref()),
        "response_deadline": date_json(c.response_deadline.as_ref()),
        "history": c.history.iter().map(|h| json!({
            "status": status(h.status),
            "time": time_json(h.time.as_ref()),
        })).collect::<Vec<_>>(),
    })
}

async fn create_complaint(
    State(state): State<WebState>,
    caller: Caller,
    JsonBody(body): JsonBody<ComplaintBody>,
) -> Result<Response, WebError> {
    let istat = parse_istat("comune", &body.comune)?;
    let request_id = request_id(body.request_id.as_deref())?;
    let complaint = ComplaintServiceClient::new(state.bridge.channel())
        .create_complaint(caller.request(
            quality::CreateComplaintRequest {
                parent: istat.resource_name(),
                complaint: Some(quality::Complaint {
                    category: body.category,
                    channel: contact_channel(body.kiosk),
                    text: body.text,
                    contact: body.contact,
                    ..quality::Complaint::default()
                }),
                request_id,
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    Ok(private_json(complaint_json(&complaint)))
}

/// The caller's complaints in a comune (a citizen gets only those they filed), newest first.
async fn list_complaints(
    State(state): State<WebState>,
    caller: Caller,
    Query(q): Query<ComuneQuery>,
) -> Result<Response, WebError> {
    let istat = q.istat()?;
    let page = ComplaintServiceClient::new(state.bridge.channel())
        .list_complaints(caller.request(
            quality::ListComplaintsRequest {
                parent: istat.resource_name(),
                page_size: 50,
                page_token: String::new(),
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    Ok(private_json(json!({
        "complaints": page.complaints.iter().map(complaint_json).collect::<Vec<_>>(),
    })))
}

async fn get_complaint(
    State(state): State<WebState>,
    caller: Caller,
    Path((istat, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let (istat, name) = resource(&istat, "complaints", &id)?;
    let complaint = ComplaintServiceClient::new(state.bridge.channel())
        .get_complaint(caller.request(quality::GetComplaintRequest { name }, Some(&istat)))
        .await?
        .into_inner();
    Ok(private_json(complaint_json(&complaint)))
}

// ---- satisfaction survey ---------------------------------------------------------------

/// The satisfaction surveys a comune offers, with the channel each is for.
async fn list_surveys(
    State(state): State<WebState>,
    caller: Caller,
    Query(q): Query<ComuneQuery>,
) -> Result<Response, WebError> {
    let istat = q.istat()?;
    let page = SurveyServiceClient::new(state.bridge.channel())
        .list_surveys(caller.request(
            quality::ListSurveysRequest {
                parent: istat.resource_name(),
                page_size: 50,
                page_token: String::new(),
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    Ok(private_json(json!({
        "surveys": page.surveys.iter().map(|s| json!({
            "id": s.survey_id,
            "comune": istat.as_str(),
            "title": s.title,
            "channel": unione_proto::common::v1::Channel::try_from(s.channel)
                .map(|c| c.as_str_name()).unwrap_or_default(),
        })).collect::<Vec<_>>(),
    })))
}

async fn get_survey(
    State(state): State<WebState>,
    caller: Caller,
    Path((istat, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let (istat, name) = resource(&istat, "surveys", &id)?;
    let survey = SurveyServiceClient::new(state.bridge.channel())
        .get_survey(caller.request(quality::GetSurveyRequest { name }, Some(&istat)))
        .await?
        .into_inner();
    Ok(axum::Json(json!({
        "name": survey.name,
        "id": survey.survey_id,
        "title": survey.title,
        "questions": survey.questions.iter().map(|q| json!({
            "text": q.text,
            "scale": quality::question::Scale::try_from(q.scale)
                .map(|s| s.as_str_name()).unwrap_or_default(),
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
struct SurveyAnswerBody {
    answers: Vec<i32>,
    #[serde(default)]
    request_id: Option<String>,
}

async fn answer_survey(
    State(state): State<WebState>,
    caller: Caller,
    Path((istat, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<SurveyAnswerBody>,
) -> Result<Response, WebError> {
    let (istat, parent) = resource(&istat, "surveys", &id)?;
    let request_id = request_id(body.request_id.as_deref())?;
    let response = SurveyServiceClient::new(state.bridge.channel())
        .create_survey_response(caller.request(
            quality::CreateSurveyResponseRequest {
                parent,
                response: Some(quality::SurveyResponse {
                    answers: body.answers,
                    ..quality::SurveyResponse::default()
                }),
                request_id,
            },
            Some(&istat),
        ))
        .await?
        .into_inner();
    Ok(axum::Json(json!({
        "name": response.name,
        "submit_time": time_json(response.submit_time.as_ref()),
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, bytes: &[u8]) -> DocumentBody {
        DocumentBody {
            file_name: name.to_owned(),
            media_type: String::new(),
            content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    #[test]
    fn documents_are_decoded_and_limited_before_any_call() {
        let decoded = decode_documents(vec![doc("a.txt", b"hello")]).expect("one small document");
        assert_eq!(decoded[0].content, b"hello");
        assert_eq!(decoded[0].media_type, "application/octet-stream");

        let big = vec![0u8; MAX_DOCUMENT_BYTES / 2 + 1];
        let err = decode_documents(vec![doc("a", &big), doc("b", &big)]).expect_err("too large");
        assert_eq!(err.reason(), "DOCUMENTS_TOO_LARGE");
        let many = (0..=MAX_DOCUMENTS)
            .map(|i| doc(&format!("{i}"), b"x"))
            .collect();
        assert_eq!(
            decode_documents(many).expect_err("too many").reason(),
            "TOO_MANY_DOCUMENTS"
        );
        let mut bad = doc("c", b"x");
        bad.content_base64 = "not base64!".into();
        assert_eq!(
            decode_documents(vec![bad]).expect_err("bad").reason(),
            "DOCUMENT_NOT_BASE64"
        );
        assert_eq!(
            decode_documents(vec![doc("e", b"")])
                .expect_err("empty")
                .reason(),
            "DOCUMENT_EMPTY"
        );
        // The limit of the JSON body lets the largest accepted documents through.
        assert!(CASE_BODY_LIMIT > MAX_DOCUMENT_BYTES.div_ceil(3) * 4);
    }

    #[tokio::test]
    async fn a_case_body_over_the_limit_is_documents_too_large() {
        let big = vec![b' '; CASE_BODY_LIMIT + 1];
        let err = case_body(axum::body::Body::from(big))
            .await
            .expect_err("too large");
        assert_eq!(err.reason(), "DOCUMENTS_TOO_LARGE");
        let err = case_body(axum::body::Body::from("{"))
            .await
            .expect_err("not JSON");
        assert_eq!(err.reason(), "INVALID_JSON");
        let ok = case_body(axum::body::Body::from(
            r#"{"comune":"011027","procedure_type":"SUOLO","subject":"s"}"#,
        ))
        .await
        .expect("a case");
        assert!(ok.documents.is_empty());
    }

    #[test]
    fn ids_from_the_address_bar_name_one_resource_only() {
        assert!(parse_id("id", "abc-DEF_123").is_ok());
        for bad in ["", "a/b", "..", "a%2Fb", "a b", &"x".repeat(129)] {
            assert_eq!(
                parse_id("id", bad).expect_err(bad).reason(),
                "INVALID_ID",
                "{bad}"
            );
        }
    }

    #[test]
    fn dates_go_both_ways() {
        let d = parse_date("as_of", "2024-02-29").expect("a leap day");
        assert_eq!(date_json(Some(&d)), json!("2024-02-29"));
        assert!(parse_date("as_of", "2023-02-29").is_err());
        assert_eq!(date_json(None), Value::Null);
    }
}
