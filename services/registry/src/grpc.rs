//! The gRPC handlers of `unione.registry.v1.ResidentService`: decode the request, parse the
//! resource name, check the comune against the routing header and this node's served comuni,
//! call the domain and storage, and map errors to `google.rpc.Status` with an `ErrorInfo`.
//!
//! Spans are named after the RPC and carry the comune and the record's opaque id, never a name
//! or a codice fiscale.

use chrono::{Datelike, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use tonic::{Code, Request, Response};
use tracing::{Span, field};
use unione_kit::idempotency;
use unione_kit::names::parse_name;
use unione_kit::pagination;
use unione_kit::storage::{now_micros, timestamp};
use unione_kit::{ApiError, Database, Istat, Served};
use unione_proto::google::r#type::Date;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::resident_service_server::ResidentService;

use unione_kit::principal;

use crate::domain::codice_fiscale;
use crate::domain::{Address, CivilDate, RegistrationReason, RegistryError, ResidentDraft, Sex};
use crate::storage::{self, Inserted, PageKey, StoredResident};

pub mod access;
pub mod cases;
pub mod certificate;
pub mod household;
pub mod moves;
pub mod protocol;
pub mod statistics;

/// `comuni/{istat}`.
const COMUNE: &[&str] = &["comuni", "*"];
/// `comuni/{istat}/residents/{id}`.
const RESIDENT: &[&str] = &["comuni", "*", "residents", "*"];
/// The reads of personal data this service logs ([`access::record_reads`]).
const GET_RESIDENT: &str = "unione.registry.v1.ResidentService/GetResident";
const LIST_RESIDENTS: &str = "unione.registry.v1.ResidentService/ListResidents";

/// A registry rule broken: invalid input on the field it names, or ALREADY_EXISTS for a
/// resident registered twice.
impl From<RegistryError> for ApiError {
    fn from(err: RegistryError) -> Self {
        if err.is_conflict() {
            ApiError::new(Code::AlreadyExists, err.reason(), err.to_string())
                .with_field(err.field())
        } else {
            ApiError::invalid(err.field(), err.reason(), err.to_string())
        }
    }
}

/// True when `stored` is the record of the citizen with codice fiscale `cf`.
pub(crate) fn is_own(cf: &str, stored: &StoredResident) -> bool {
    codice_fiscale::normalize(&stored.resident.codice_fiscale) == cf
}

/// The resident service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct ResidentApi {
    db: Database,
    served: Served,
}

impl ResidentApi {
    /// The handlers over a database migrated with [`crate::migrations`], for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self { db, served }
    }

    #[tracing::instrument(
        name = "CreateResident",
        skip_all,
        fields(comune = field::Empty, resident = field::Empty)
    )]
    async fn create_resident_inner(
        &self,
        request: Request<pb::CreateResidentRequest>,
    ) -> Result<pb::Resident, ApiError> {
        principal::refuse_citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let given = req
            .resident
            .as_ref()
            .ok_or_else(|| ApiError::required("resident"))?;
        let resident = draft_from_pb(given)?.validate(today_in_italy())?;

        // The fingerprint covers what the request asks for: not the key itself, nor the
        // fields the contract says are ignored.
        let mut asked = req.clone();
        asked.request_id.clear();
        if let Some(r) = asked.resident.as_mut() {
            r.name.clear();
            r.create_time = None;
            r.etag.clear();
        }
        let fingerprint = idempotency::fingerprint(&asked);
        let scope = format!("registry/{}/CreateResident", istat.resource_name());
        let db = &self.db;
        let istat = &istat;
        let resident = &resident;
        let created = idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let mut tx = db.begin_write().await?;
                let stored =
                    match storage::insert_resident(&mut tx, istat, resident, now_micros()).await? {
                        Inserted::Created(stored) => stored,
                        Inserted::AlreadyResident => {
                            return Err(RegistryError::AlreadyRegistered.into());
                        }
                    };
                let response = resident_to_pb(istat, &stored);
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(response)
            },
        )
        .await?;
        Span::current().record("resident", resident_id(&created.name));
        Ok(created)
    }

    #[tracing::instrument(
        name = "GetResident",
        skip_all,
        fields(comune = field::Empty, resident = field::Empty)
    )]
    async fn get_resident_inner(
        &self,
        request: Request<pb::GetResidentRequest>,
    ) -> Result<pb::Resident, ApiError> {
        let reader = access::Reader::of(&request)?;
        let citizen = principal::citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, RESIDENT)?;
        let id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("resident", id);
        self.served.check(&metadata, &istat, "name")?;
        // Another person's record is NOT_FOUND to a citizen, as a missing one.
        let stored = storage::get_resident(&self.db, &istat, id)
            .await?
            .filter(|r| citizen.as_deref().is_none_or(|cf| is_own(cf, r)))
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        let resident = resident_to_pb(&istat, &stored);
        access::record_reads(
            &self.db,
            &reader,
            &istat,
            GET_RESIDENT,
            [resident.name.as_str()],
        )
        .await?;
        Ok(resident)
    }

    #[tracing::instrument(name = "ListResidents", skip_all, fields(comune = field::Empty))]
    async fn list_residents_inner(
        &self,
        request: Request<pb::ListResidentsRequest>,
    ) -> Result<pb::ListResidentsResponse, ApiError> {
        let reader = access::Reader::of(&request)?;
        let citizen = principal::citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let size = pagination::page_size(req.page_size)?;
        let search = ResidentSearch::of(&req)?;
        // A citizen's list holds their own current record only; a search by codice fiscale
        // finds at most one.
        let one = match (&citizen, &search) {
            (Some(own), ResidentSearch::CodiceFiscale(asked)) if asked != own => Some(None),
            (Some(own), _) | (None, ResidentSearch::CodiceFiscale(own)) => Some(Some(own.clone())),
            (None, _) => None,
        };
        let response = if let Some(cf) = one {
            // At most one current record: a single page.
            let scope = format!("ListResidents/{}/{search}/{cf:?}", istat.resource_name());
            let after: Option<String> = pagination::decode_token(&scope, &req.page_token)?;
            let mut conn = self.db.pool().acquire().await?;
            let found = match (after, cf) {
                (None, Some(cf)) => {
                    storage::current_resident_by_codice_fiscale(&mut conn, &istat, &cf).await?
                }
                _ => None,
            };
            let prefix = search.family_key_prefix();
            pb::ListResidentsResponse {
                residents: found
                    .iter()
                    .filter(|r| r.page_key.family_key.starts_with(prefix))
                    .map(|r| resident_to_pb(&istat, r))
                    .collect(),
                next_page_token: String::new(),
            }
        } else {
            let scope = format!("ListResidents/{}/{search}", istat.resource_name());
            let after: Option<PageKey> = pagination::decode_token(&scope, &req.page_token)?;
            let mut rows = storage::list_residents(
                &self.db,
                &istat,
                search.family_key_prefix(),
                after.as_ref(),
                size + 1,
            )
            .await?;
            let next_page_token =
                pagination::finish_page(&mut rows, size, &scope, |r| r.page_key.clone());
            pb::ListResidentsResponse {
                residents: rows.iter().map(|r| resident_to_pb(&istat, r)).collect(),
                next_page_token,
            }
        };
        let read = response.residents.iter().map(|r| r.name.as_str());
        access::record_reads(&self.db, &reader, &istat, LIST_RESIDENTS, read).await?;
        Ok(response)
    }
}

/// What a ListResidents call searches for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ResidentSearch {
    /// Every current resident.
    All,
    /// The current resident with this codice fiscale (normalised).
    CodiceFiscale(String),
    /// The current residents whose family name's sort key starts with this.
    FamilyKeyPrefix(String),
}

/// The longest family name prefix searched for.
const MAX_PREFIX_CHARS: usize = 100;

impl ResidentSearch {
    fn of(req: &pb::ListResidentsRequest) -> Result<Self, ApiError> {
        let cf = req.codice_fiscale.trim();
        let prefix = req.family_name_prefix.trim();
        match (cf.is_empty(), prefix.is_empty()) {
            (true, true) => Ok(Self::All),
            (false, false) => Err(ApiError::invalid(
                "family_name_prefix",
                "CONFLICTING_FILTERS",
                "search by codice_fiscale or by family_name_prefix, not both",
            )),
            (false, true) => {
                let cf = codice_fiscale::normalize(cf);
                codice_fiscale::validate(&cf).map_err(|e| {
                    ApiError::from(RegistryError::from(e)).with_field("codice_fiscale")
                })?;
                Ok(Self::CodiceFiscale(cf))
            }
            (true, false) => {
                if prefix.chars().count() > MAX_PREFIX_CHARS {
                    return Err(ApiError::invalid(
                        "family_name_prefix",
                        "PREFIX_TOO_LONG",
                        format!("family_name_prefix has at most {MAX_PREFIX_CHARS} characters"),
                    ));
                }
                Ok(Self::FamilyKeyPrefix(crate::domain::resident::sort_key(
                    prefix,
                )))
            }
        }
    }

    /// The family key prefix to list by (empty: every key).
    fn family_key_prefix(&self) -> &str {
        match self {
            Self::FamilyKeyPrefix(prefix) => prefix,
            _ => "",
        }
    }
}

impl std::fmt::Display for ResidentSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::CodiceFiscale(cf) => write!(f, "cf={cf}"),
            Self::FamilyKeyPrefix(p) => write!(f, "family={p}"),
        }
    }
}

#[tonic::async_trait]
impl ResidentService for ResidentApi {
    async fn create_resident(
        &self,
        request: Request<pb::CreateResidentRequest>,
    ) -> Result<Response<pb::Resident>, tonic::Status> {
        Ok(Response::new(self.create_resident_inner(request).await?))
    }

    async fn get_resident(
        &self,
        request: Request<pb::GetResidentRequest>,
    ) -> Result<Response<pb::Resident>, tonic::Status> {
        Ok(Response::new(self.get_resident_inner(request).await?))
    }

    async fn list_residents(
        &self,
        request: Request<pb::ListResidentsRequest>,
    ) -> Result<Response<pb::ListResidentsResponse>, tonic::Status> {
        Ok(Response::new(self.list_residents_inner(request).await?))
    }
}

/// Today's date in Italy, at its latest: UTC plus two hours (CEST), so that a birth registered
/// just after midnight in Rome is never taken for a future one. During CET this runs an hour
/// ahead, which only matters for a birth date of "tomorrow" between 23:00 and midnight.
fn today_in_italy() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(2)).date_naive()
}

/// The last segment of a resource name.
fn resident_id(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or_default()
}

/// The wire resident as a draft for the domain to check. Only enum values this version does
/// not know are refused here.
fn draft_from_pb(r: &pb::Resident) -> Result<ResidentDraft, RegistryError> {
    let sex = match pb::Sex::try_from(r.sex) {
        Ok(pb::Sex::Unspecified) => None,
        Ok(pb::Sex::Male) => Some(Sex::Male),
        Ok(pb::Sex::Female) => Some(Sex::Female),
        Err(_) => {
            return Err(RegistryError::UnknownEnumValue {
                field: "resident.sex",
                value: r.sex,
            });
        }
    };
    let registration_reason = match pb::RegistrationReason::try_from(r.registration_reason) {
        Ok(pb::RegistrationReason::Unspecified) => None,
        Ok(pb::RegistrationReason::Birth) => Some(RegistrationReason::Birth),
        Ok(pb::RegistrationReason::ImmigrationFromComune) => {
            Some(RegistrationReason::ImmigrationFromComune)
        }
        Ok(pb::RegistrationReason::ImmigrationFromAbroad) => {
            Some(RegistrationReason::ImmigrationFromAbroad)
        }
        Ok(pb::RegistrationReason::Reinstatement) => Some(RegistrationReason::Reinstatement),
        Err(_) => {
            return Err(RegistryError::UnknownEnumValue {
                field: "resident.registration_reason",
                value: r.registration_reason,
            });
        }
    };
    let civil = |d: &Date| CivilDate {
        year: d.year,
        month: d.month,
        day: d.day,
    };
    Ok(ResidentDraft {
        codice_fiscale: r.codice_fiscale.clone(),
        given_name: r.given_name.clone(),
        family_name: r.family_name.clone(),
        birth_date: r.birth_date.as_ref().map(civil),
        birth_place_code: r.birth_place_code.clone(),
        sex,
        citizenship: r.citizenship.clone(),
        address: r.address.as_ref().map(|a| Address {
            street: a.street.clone(),
            house_number: a.house_number.clone(),
            postal_code: a.postal_code.clone(),
            locality: a.locality.clone(),
        }),
        registration_date: r.registration_date.as_ref().map(civil),
        registration_reason,
    })
}

fn date_to_pb(date: NaiveDate) -> Date {
    Date {
        year: date.year(),
        month: i32::try_from(date.month()).expect("invariant: months are 1 to 12"),
        day: i32::try_from(date.day()).expect("invariant: days are 1 to 31"),
    }
}

/// The etag of a record (AIP-154): opaque, changes with every revision.
fn etag(stored: &StoredResident) -> String {
    let digest = Sha256::digest(format!(
        "{}:{}:{}",
        stored.id, stored.revision, stored.update_time
    ));
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The wire form of a stored resident of `istat`.
pub fn resident_to_pb(istat: &Istat, stored: &StoredResident) -> pb::Resident {
    let r = &stored.resident;
    pb::Resident {
        name: format!("{}/residents/{}", istat.resource_name(), stored.id),
        codice_fiscale: r.codice_fiscale.clone(),
        given_name: r.given_name.clone(),
        family_name: r.family_name.clone(),
        birth_date: Some(date_to_pb(r.birth_date)),
        birth_place_code: r.birth_place_code.clone(),
        sex: match r.sex {
            Sex::Male => pb::Sex::Male,
            Sex::Female => pb::Sex::Female,
        }
        .into(),
        citizenship: r.citizenship.clone(),
        address: Some(pb::Address {
            street: r.address.street.clone(),
            house_number: r.address.house_number.clone(),
            postal_code: r.address.postal_code.clone(),
            locality: r.address.locality.clone(),
        }),
        registration_date: Some(date_to_pb(r.registration_date)),
        registration_reason: match r.registration_reason {
            RegistrationReason::Birth => pb::RegistrationReason::Birth,
            RegistrationReason::ImmigrationFromComune => {
                pb::RegistrationReason::ImmigrationFromComune
            }
            RegistrationReason::ImmigrationFromAbroad => {
                pb::RegistrationReason::ImmigrationFromAbroad
            }
            RegistrationReason::Reinstatement => pb::RegistrationReason::Reinstatement,
        }
        .into(),
        create_time: Some(timestamp(stored.create_time)),
        etag: etag(stored),
    }
}
