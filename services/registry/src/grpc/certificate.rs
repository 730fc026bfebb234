//! The gRPC handlers of `unione.registry.v1.CertificateService` (DOMAIN.md "Registry":
//! certificates with a seal and a verification code, CAD art. 23).
//!
//! IssueCertificate reads the person's residence (and household) at the date certified,
//! builds the content ([`crate::domain::certificate`]), seals it with the comune's Ed25519 key
//! (made and stored on first use), renders the PDF ([`crate::domain::pdf`]) and stores the
//! sealed content with the channel and the issuing principal ([`crate::storage::certificate`]).
//! VerifyCertificate needs no principal: anyone holding a certificate may check it.

use chrono::{DateTime, SecondsFormat};
use ring::rand::SecureRandom;
use tonic::{Code, Request, Response};
use tracing::{Span, field};
use unione_kit::names::parse_name;
use unione_kit::principal::Principal;
use unione_kit::storage::{now_micros, timestamp};
use unione_kit::token::Role;
use unione_kit::{ApiError, Database, Istat, Served, idempotency, pagination, principal};
use unione_proto::common::v1::Channel;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::certificate_service_server::CertificateService;

use super::household::{civil, residence_at, resident_in};
use super::{access, date_to_pb, is_own, today_in_italy};
use crate::domain::certificate::{
    self as rules, AddressInfo, CODE_LEN, CertificateContent, CertificateError, CertificateKind,
    ComuneInfo, MemberInfo, PersonInfo, VERIFY_URL,
};
use crate::domain::household::{self, Standing, members_at};
use crate::domain::pdf;
use crate::storage::certificate::{
    self as store, CertificateFilter, CertificatePageKey, SealKey, StoredCertificate,
};
use crate::storage::household as households;
use crate::storage::{self, StoredResident};

/// `comuni/{istat}`.
const COMUNE: &[&str] = &["comuni", "*"];
/// `comuni/{istat}/certificates/{id}`.
const CERTIFICATE: &[&str] = &["comuni", "*", "certificates", "*"];
/// The reads of personal data this service logs ([`access::record_reads`]), each under the
/// certificate's resident.
const ISSUE_CERTIFICATE: &str = "unione.registry.v1.CertificateService/IssueCertificate";
const GET_CERTIFICATE: &str = "unione.registry.v1.CertificateService/GetCertificate";
const LIST_CERTIFICATES: &str = "unione.registry.v1.CertificateService/ListCertificates";

/// A certificate that cannot be issued or checked: FAILED_PRECONDITION, or INVALID_ARGUMENT
/// for a malformed code.
impl From<CertificateError> for ApiError {
    fn from(err: CertificateError) -> Self {
        if err.is_invalid_input() {
            ApiError::invalid(err.field(), err.reason(), err.to_string())
        } else {
            ApiError::failed_precondition(err.reason(), err.to_string()).with_field(err.field())
        }
    }
}

/// The certificate service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct CertificateApi {
    db: Database,
    served: Served,
}

impl CertificateApi {
    /// The handlers over a database migrated with [`crate::migrations`], for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self { db, served }
    }

    #[tracing::instrument(
        name = "IssueCertificate",
        skip_all,
        fields(comune = field::Empty, certificate = field::Empty)
    )]
    async fn issue_inner(
        &self,
        request: Request<pb::IssueCertificateRequest>,
    ) -> Result<pb::Certificate, ApiError> {
        let reader = access::Reader::of(&request)?;
        let who = principal::require(&request).cloned();
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        let comune_name = self.served.check(&metadata, &istat, "parent")?.name.clone();
        let who = who?;
        let given = req
            .certificate
            .as_ref()
            .ok_or_else(|| ApiError::required("certificate"))?;
        let kind = kind_from_pb(given.r#type)?;
        let resident_id = resident_in("certificate.resident", &given.resident, &istat)?;
        let channel = channel_from_pb(given.channel)?;
        let today = today_in_italy();
        let as_of = match kind {
            CertificateKind::HistoricalResidence => {
                household::effective("certificate.as_of", civil(given.as_of.as_ref()), today)?
            }
            CertificateKind::Residence | CertificateKind::HouseholdStatus => today,
        };

        let asked = pb::IssueCertificateRequest {
            parent: req.parent.clone(),
            certificate: Some(pb::Certificate {
                r#type: given.r#type,
                resident: given.resident.clone(),
                as_of: given.as_of,
                channel: given.channel,
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let fingerprint = idempotency::fingerprint(&asked);
        // A citizen's keys are theirs alone: a replay never hands one citizen the certificate
        // issued to another under the same key.
        let scope = match who.role {
            Role::Citizen => format!(
                "registry/{}/IssueCertificate/{}",
                istat.resource_name(),
                who.sub
            ),
            _ => format!("registry/{}/IssueCertificate", istat.resource_name()),
        };
        let (db, istat, resident_id, who, comune_name, resident_name) = (
            &self.db,
            &istat,
            resident_id.as_str(),
            &who,
            comune_name.as_str(),
            &given.resident,
        );
        let issued = idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let mut tx = db.begin_write().await?;
                let now = now_micros();
                let person = storage::read_resident(&mut tx, istat, resident_id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("certificate.resident", resident_name))?;
                authorize(who, istat, &person, resident_name)?;
                let at = residence_at(&mut tx, istat, resident_id, as_of).await?;
                let Standing::Resident(address) = at.standing else {
                    let field = match kind {
                        CertificateKind::HistoricalResidence => "certificate.as_of",
                        _ => "certificate.resident",
                    };
                    return Err(CertificateError::NotResident { field }.into());
                };
                let mut household = Vec::new();
                if kind == CertificateKind::HouseholdStatus {
                    let membership = at.membership.ok_or(CertificateError::NoHousehold)?;
                    let all = households::memberships_of_household(
                        &mut tx,
                        istat,
                        &membership.household_id,
                    )
                    .await?;
                    for m in members_at(&all, as_of) {
                        let member = storage::read_resident(&mut tx, istat, &m.resident_id)
                            .await?
                            .ok_or_else(|| {
                                ApiError::internal(&"a household member has no resident record")
                            })?;
                        household.push(MemberInfo {
                            person: person_info(&member),
                            relationship: m.relationship.code().to_owned(),
                        });
                    }
                }
                let key = seal_key(&mut tx, istat, now).await?;
                let code = new_code()?;
                let content = CertificateContent {
                    kind: kind.code().to_owned(),
                    verification_code: code.clone(),
                    comune: ComuneInfo {
                        istat: istat.as_str().to_owned(),
                        name: comune_name.to_owned(),
                    },
                    person: person_info(&person),
                    as_of: as_of.format("%Y-%m-%d").to_string(),
                    address: AddressInfo {
                        street: address.street,
                        house_number: address.house_number,
                        postal_code: address.postal_code,
                        locality: address.locality,
                    },
                    household,
                    channel: channel.to_owned(),
                    issue_time: rfc3339(now),
                };
                let json = content.canonical_json();
                let seal = rules::seal(&key.pkcs8, &json).map_err(|e| ApiError::internal(&e))?;
                let document = pdf::render(
                    &content.lines(kind, comune_name),
                    &format!("{VERIFY_URL}{code}"),
                );
                let stored = StoredCertificate {
                    id: storage::new_id(),
                    verification_code: code,
                    kind,
                    resident_id: resident_id.to_owned(),
                    as_of: content.as_of.clone(),
                    channel: channel.to_owned(),
                    content: json,
                    seal,
                    issued_by: who.sub.clone(),
                    issue_time: now,
                };
                store::insert_certificate(&mut tx, istat, &stored).await?;
                let response = pb::Certificate {
                    name: certificate_name(istat, &stored.id),
                    r#type: given_type(kind).into(),
                    resident: resident_name.clone(),
                    as_of: Some(date_to_pb(as_of)),
                    channel: given.channel,
                    verification_code: stored.verification_code.clone(),
                    content: stored.content.clone(),
                    seal: stored.seal.clone(),
                    public_key: key.public_key.clone(),
                    pdf: document,
                    issue_time: Some(timestamp(now)),
                };
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(response)
            },
        )
        .await?;
        Span::current().record("certificate", issued.name.rsplit('/').next().unwrap_or(""));
        // A replay under the same request id is a read too: recorded each time.
        let read = [issued.resident.as_str()];
        access::record_reads(&self.db, &reader, istat, ISSUE_CERTIFICATE, read).await?;
        Ok(issued)
    }

    #[tracing::instrument(
        name = "VerifyCertificate",
        skip_all,
        fields(comune = field::Empty, certificate = field::Empty)
    )]
    async fn verify_inner(
        &self,
        request: Request<pb::VerifyCertificateRequest>,
    ) -> Result<pb::VerifyCertificateResponse, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        if req.verification_code.trim().is_empty() {
            return Err(ApiError::required("verification_code"));
        }
        let code =
            rules::normalize_code(&req.verification_code).ok_or(CertificateError::InvalidCode)?;
        let mut conn = self.db.pool().acquire().await?;
        let stored = store::find_by_code(&mut conn, &istat, &code)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    Code::NotFound,
                    "CERTIFICATE_NOT_FOUND",
                    "no certificate of this comune has this verification code",
                )
                .with_field("verification_code")
            })?;
        Span::current().record("certificate", stored.id.as_str());
        let key = store::seal_key(&mut conn, &istat).await?;
        let seal_valid = key.is_some_and(|k| {
            rules::seal_verifies(&k.public_key, &stored.content, &stored.seal)
                && names_code(&stored.content, &code)
        });
        if !seal_valid {
            tracing::warn!(certificate = %stored.id, "a stored certificate fails its seal");
        }
        Ok(pb::VerifyCertificateResponse {
            certificate: certificate_name(&istat, &stored.id),
            content: stored.content,
            seal: stored.seal,
            seal_valid,
            issue_time: Some(timestamp(stored.issue_time)),
        })
    }

    #[tracing::instrument(
        name = "GetCertificate",
        skip_all,
        fields(comune = field::Empty, certificate = field::Empty)
    )]
    async fn get_inner(
        &self,
        request: Request<pb::GetCertificateRequest>,
    ) -> Result<pb::Certificate, ApiError> {
        let reader = access::Reader::of(&request)?;
        let citizen = principal::citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, CERTIFICATE)?;
        Span::current()
            .record("comune", istat.as_str())
            .record("certificate", vars[0]);
        let comune_name = self.served.check(&metadata, &istat, "name")?.name.clone();
        let mut conn = self.db.pool().acquire().await?;
        let not_found = || ApiError::not_found("name", &req.name);
        let stored = store::get_certificate(&mut conn, &istat, vars[0])
            .await?
            .ok_or_else(not_found)?;
        // Another person's certificate is NOT_FOUND to a citizen, as a missing one.
        if let Some(cf) = &citizen {
            let person = storage::read_resident(&mut conn, &istat, &stored.resident_id).await?;
            if !person.is_some_and(|p| is_own(cf, &p)) {
                return Err(not_found());
            }
        }
        let key = store::seal_key(&mut conn, &istat)
            .await?
            .ok_or_else(|| ApiError::internal(&"a certificate without its comune's seal key"))?;
        let content: CertificateContent = serde_json::from_str(&stored.content)
            .map_err(|e| ApiError::internal(&format!("stored certificate content: {e}")))?;
        let document = pdf::render(
            &content.lines(stored.kind, &comune_name),
            &format!("{VERIFY_URL}{}", stored.verification_code),
        );
        let mut certificate = stored_to_pb(&istat, stored, key.public_key)?;
        certificate.pdf = document;
        drop(conn);
        let read = [certificate.resident.as_str()];
        access::record_reads(&self.db, &reader, &istat, GET_CERTIFICATE, read).await?;
        Ok(certificate)
    }

    #[tracing::instrument(name = "ListCertificates", skip_all, fields(comune = field::Empty))]
    async fn list_inner(
        &self,
        request: Request<pb::ListCertificatesRequest>,
    ) -> Result<pb::ListCertificatesResponse, ApiError> {
        let reader = access::Reader::of(&request)?;
        let citizen = principal::citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let resident_id = if req.resident.is_empty() {
            None
        } else {
            Some(resident_in("resident", &req.resident, &istat)?)
        };
        let size = pagination::page_size(req.page_size)?;
        let mut conn = self.db.pool().acquire().await?;
        if let (Some(cf), Some(id)) = (&citizen, &resident_id) {
            // Another person is NOT_FOUND to a citizen, as a missing one.
            let person = storage::read_resident(&mut conn, &istat, id).await?;
            if !person.is_some_and(|p| is_own(cf, &p)) {
                return Err(ApiError::not_found("resident", &req.resident));
            }
        }
        let filter = CertificateFilter {
            resident_id,
            codice_fiscale: citizen,
        };
        let scope = format!(
            "ListCertificates/{}/{}/{}",
            req.parent,
            req.resident,
            filter.codice_fiscale.as_deref().unwrap_or("")
        );
        let after: Option<CertificatePageKey> = pagination::decode_token(&scope, &req.page_token)?;
        let mut rows =
            store::list_certificates(&mut conn, &istat, &filter, after.as_ref(), size + 1).await?;
        let next_page_token =
            pagination::finish_page(&mut rows, size, &scope, |c| (c.issue_time, c.id.clone()));
        let public_key = store::seal_key(&mut conn, &istat)
            .await?
            .map(|k| k.public_key)
            .unwrap_or_default();
        drop(conn);
        let response = pb::ListCertificatesResponse {
            certificates: rows
                .into_iter()
                .map(|c| stored_to_pb(&istat, c, public_key.clone()))
                .collect::<Result<_, _>>()?,
            next_page_token,
        };
        let read = response.certificates.iter().map(|c| c.resident.as_str());
        access::record_reads(&self.db, &reader, &istat, LIST_CERTIFICATES, read).await?;
        Ok(response)
    }
}

/// The wire form of a stored certificate, without its PDF.
fn stored_to_pb(
    istat: &Istat,
    stored: StoredCertificate,
    public_key: Vec<u8>,
) -> Result<pb::Certificate, ApiError> {
    let as_of = chrono::NaiveDate::parse_from_str(&stored.as_of, "%Y-%m-%d")
        .map_err(|e| ApiError::internal(&format!("stored certificate date: {e}")))?;
    Ok(pb::Certificate {
        name: certificate_name(istat, &stored.id),
        r#type: given_type(stored.kind).into(),
        resident: format!("{}/residents/{}", istat.resource_name(), stored.resident_id),
        as_of: Some(date_to_pb(as_of)),
        channel: Channel::from_str_name(&format!("CHANNEL_{}", stored.channel))
            .unwrap_or(Channel::Unspecified)
            .into(),
        verification_code: stored.verification_code,
        content: stored.content,
        seal: stored.seal,
        public_key,
        pdf: Vec::new(),
        issue_time: Some(timestamp(stored.issue_time)),
    })
}

#[tonic::async_trait]
impl CertificateService for CertificateApi {
    async fn get_certificate(
        &self,
        request: Request<pb::GetCertificateRequest>,
    ) -> Result<Response<pb::Certificate>, tonic::Status> {
        Ok(Response::new(self.get_inner(request).await?))
    }

    async fn list_certificates(
        &self,
        request: Request<pb::ListCertificatesRequest>,
    ) -> Result<Response<pb::ListCertificatesResponse>, tonic::Status> {
        Ok(Response::new(self.list_inner(request).await?))
    }

    async fn issue_certificate(
        &self,
        request: Request<pb::IssueCertificateRequest>,
    ) -> Result<Response<pb::Certificate>, tonic::Status> {
        Ok(Response::new(self.issue_inner(request).await?))
    }

    async fn verify_certificate(
        &self,
        request: Request<pb::VerifyCertificateRequest>,
    ) -> Result<Response<pb::VerifyCertificateResponse>, tonic::Status> {
        Ok(Response::new(self.verify_inner(request).await?))
    }
}

/// Who may have a certificate issued: an operator or integrator acting for the comune, or the
/// citizen the certificate is about (PERMISSION_DENIED otherwise). To a citizen, another
/// person is NOT_FOUND (`certificate.resident`), as a missing one: existence is not revealed.
fn authorize(
    who: &Principal,
    istat: &Istat,
    person: &StoredResident,
    resident_name: &str,
) -> Result<(), ApiError> {
    let allowed = match who.role {
        Role::Operator | Role::Integrator => who.comuni.iter().any(|c| c == istat.as_str()),
        Role::Citizen => {
            let own = principal::citizen(Some(who))?.is_some_and(|cf| is_own(&cf, person));
            if !own {
                return Err(ApiError::not_found("certificate.resident", resident_name));
            }
            true
        }
        // Admins, auditors, payment providers and any role added later: never.
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::PermissionDenied,
            "PERMISSION_DENIED",
            "this principal may not have certificates issued about this person",
        ))
    }
}

/// The comune's seal key, made and stored on first use (a concurrent first use keeps
/// whichever key was stored first).
async fn seal_key(
    conn: &mut sqlx::AnyConnection,
    istat: &Istat,
    now: i64,
) -> Result<SealKey, ApiError> {
    if let Some(key) = store::seal_key(conn, istat).await? {
        return Ok(key);
    }
    let (pkcs8, public_key) = rules::generate_key().map_err(|e| ApiError::internal(&e))?;
    store::insert_seal_key(conn, istat, &SealKey { pkcs8, public_key }, now).await?;
    store::seal_key(conn, istat)
        .await?
        .ok_or_else(|| ApiError::internal(&"the seal key just stored cannot be read"))
}

/// A new verification code from the system's secure random source.
fn new_code() -> Result<String, ApiError> {
    let mut random = [0_u8; CODE_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| ApiError::internal(&"the system random source failed"))?;
    Ok(rules::verification_code(random))
}

/// True when the content names `code` as its verification code (so a content moved under
/// another certificate's code does not verify).
fn names_code(content: &str, code: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(content)
        .ok()
        .and_then(|v| v.get("verification_code")?.as_str().map(|c| c == code))
        .unwrap_or(false)
}

fn person_info(stored: &StoredResident) -> PersonInfo {
    let r = &stored.resident;
    PersonInfo {
        codice_fiscale: r.codice_fiscale.clone(),
        family_name: r.family_name.clone(),
        given_name: r.given_name.clone(),
        birth_date: r.birth_date.format("%Y-%m-%d").to_string(),
        birth_place_code: r.birth_place_code.clone(),
    }
}

fn rfc3339(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn certificate_name(istat: &Istat, id: &str) -> String {
    format!("{}/certificates/{id}", istat.resource_name())
}

fn kind_from_pb(value: i32) -> Result<CertificateKind, ApiError> {
    use pb::CertificateType as T;
    match T::try_from(value) {
        Ok(T::Unspecified) => Err(ApiError::required("certificate.type")),
        Ok(T::Residence) => Ok(CertificateKind::Residence),
        Ok(T::HouseholdStatus) => Ok(CertificateKind::HouseholdStatus),
        Ok(T::HistoricalResidence) => Ok(CertificateKind::HistoricalResidence),
        Err(_) => Err(ApiError::invalid(
            "certificate.type",
            "INVALID_ENUM_VALUE",
            format!("certificate.type has an unknown value {value}"),
        )),
    }
}

fn given_type(kind: CertificateKind) -> pb::CertificateType {
    match kind {
        CertificateKind::Residence => pb::CertificateType::Residence,
        CertificateKind::HouseholdStatus => pb::CertificateType::HouseholdStatus,
        CertificateKind::HistoricalResidence => pb::CertificateType::HistoricalResidence,
    }
}

/// The channel's code as recorded (`COUNTER`, `WEB`, `KIOSK`, ...).
fn channel_from_pb(value: i32) -> Result<&'static str, ApiError> {
    match Channel::try_from(value) {
        Ok(Channel::Unspecified) => Err(ApiError::required("certificate.channel")),
        Ok(channel) => Ok(channel
            .as_str_name()
            .strip_prefix("CHANNEL_")
            .unwrap_or(channel.as_str_name())),
        Err(_) => Err(ApiError::invalid(
            "certificate.channel",
            "INVALID_ENUM_VALUE",
            format!("certificate.channel has an unknown value {value}"),
        )),
    }
}
