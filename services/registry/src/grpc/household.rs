//! The gRPC handlers of `unione.registry.v1.HouseholdService` (DOMAIN.md "Registry",
//! Residents): households and residence events, read at any date.
//!
//! Every change runs in one `begin_write` transaction: lock the resident, read their history,
//! check the change ([`crate::domain::household`]), send it to ANPR through the
//! [`AnprConnector`] and, only if ANPR accepts, write it ([`crate::storage::household`]). A
//! refusal drops the transaction: nothing is written. Spans carry the comune and opaque ids.

use std::sync::Arc;

use chrono::NaiveDate;
use sqlx::AnyConnection;
use tonic::{Code, Request, Response};
use tracing::{Span, field};
use unione_kit::names::parse_name;
use unione_kit::principal::Principal;
use unione_kit::storage::{now_micros, timestamp};
use unione_kit::token::Role;
use unione_kit::{ApiError, Database, Istat, Served, idempotency, pagination, principal};
use unione_proto::google::r#type::Date;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::household_service_server::HouseholdService;

use super::{access, date_to_pb, is_own, today_in_italy};
use crate::domain::anpr::{AnprChange, AnprChangeKind, AnprConnector, NoAnpr};
use crate::domain::household::{
    self, EventDraft, EventKind, HouseholdError, HouseholdErrorClass, Membership, PersonState,
    Relationship, Standing, check_person, members_at, standing_at,
};
use crate::domain::{Address, CivilDate};
use crate::storage::household::{self as store, StoredEvent, StoredHousehold};
use crate::storage::{self, StoredResident};

/// `comuni/{istat}`.
const COMUNE: &[&str] = &["comuni", "*"];
/// `comuni/{istat}/residents/{id}`.
pub(super) const RESIDENT: &[&str] = &["comuni", "*", "residents", "*"];
/// `comuni/{istat}/households/{id}`.
const HOUSEHOLD: &[&str] = &["comuni", "*", "households", "*"];
/// The reads of personal data this service logs ([`access::record_reads`]).
const GET_HOUSEHOLD: &str = "unione.registry.v1.HouseholdService/GetHousehold";
const LIST_RESIDENCE_EVENTS: &str = "unione.registry.v1.HouseholdService/ListResidenceEvents";
const GET_RESIDENCE_AT_DATE: &str = "unione.registry.v1.HouseholdService/GetResidenceAtDate";

/// A household rule broken: INVALID_ARGUMENT, FAILED_PRECONDITION or UNAVAILABLE (ANPR).
impl From<HouseholdError> for ApiError {
    fn from(err: HouseholdError) -> Self {
        let code = match err.class() {
            HouseholdErrorClass::Invalid => Code::InvalidArgument,
            HouseholdErrorClass::FailedPrecondition => Code::FailedPrecondition,
            HouseholdErrorClass::Unavailable => Code::Unavailable,
        };
        let api = ApiError::new(code, err.reason(), err.to_string());
        match err.field() {
            Some(field) => api.with_field(field),
            None => api,
        }
    }
}

/// The household service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct HouseholdApi {
    db: Database,
    served: Served,
    anpr: Arc<dyn AnprConnector>,
}

impl HouseholdApi {
    /// The handlers over a database migrated with [`crate::migrations`], for `served`, with
    /// [`NoAnpr`]: this comune's register is authoritative until an ANPR connector is
    /// configured.
    pub fn new(db: Database, served: Served) -> Self {
        Self::with_anpr(db, served, Arc::new(NoAnpr))
    }

    /// The handlers with an ANPR connector, which every change goes through first.
    pub fn with_anpr(db: Database, served: Served, anpr: Arc<dyn AnprConnector>) -> Self {
        Self { db, served, anpr }
    }

    /// Sends a change to ANPR; its refusal becomes the caller's error.
    async fn notify(&self, change: AnprChange) -> Result<String, HouseholdError> {
        let ack = self.anpr.notify(&change).await?;
        Ok(ack.reference)
    }

    #[tracing::instrument(
        name = "CreateHousehold",
        skip_all,
        fields(comune = field::Empty, household = field::Empty)
    )]
    async fn create_household_inner(
        &self,
        request: Request<pb::CreateHouseholdRequest>,
    ) -> Result<pb::Household, ApiError> {
        let operator = principal::require(&request).cloned();
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let operator = operator_of(&operator?, &istat)?;
        let head_id = resident_in("head", &req.head, &istat)?;
        let today = today_in_italy();
        let start = household::effective("start_date", civil(req.start_date.as_ref()), today)?;

        let mut asked = req.clone();
        asked.request_id.clear();
        let fingerprint = idempotency::fingerprint(&asked);
        let scope = format!("registry/{}/CreateHousehold", istat.resource_name());
        let (db, istat, head_id, operator, head_name) = (
            &self.db,
            &istat,
            head_id.as_str(),
            operator.as_str(),
            &req.head,
        );
        let created = idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let mut tx = db.begin_write().await?;
                let now = now_micros();
                let head = storage::lock_resident(&mut tx, istat, head_id, now)
                    .await?
                    .ok_or_else(|| ApiError::not_found("head", head_name))?;
                let (person, memberships) = person_state(&mut tx, istat, head_id).await?;
                check_person(&person, start, "start_date")?;
                if memberships.iter().any(|m| m.end_date.is_none()) {
                    return Err(HouseholdError::AlreadyInHousehold { field: "head" }.into());
                }
                let id = storage::new_id();
                self.notify(change(
                    istat,
                    &head,
                    start,
                    AnprChangeKind::HouseholdFormed {
                        household: id.clone(),
                    },
                ))
                .await?;
                let stored =
                    store::insert_household(&mut tx, istat, &id, start, operator, now).await?;
                let member = Membership {
                    household_id: id.clone(),
                    resident_id: head_id.to_owned(),
                    relationship: Relationship::Head,
                    start_date: start,
                    end_date: None,
                };
                store::insert_membership(&mut tx, istat, &member, operator, now).await?;
                let response = household_to_pb(istat, &stored, &[member], today);
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(response)
            },
        )
        .await?;
        Span::current().record("household", last_segment(&created.name));
        Ok(created)
    }

    #[tracing::instrument(
        name = "GetHousehold",
        skip_all,
        fields(comune = field::Empty, household = field::Empty)
    )]
    async fn get_household_inner(
        &self,
        request: Request<pb::GetHouseholdRequest>,
    ) -> Result<pb::Household, ApiError> {
        let reader = access::Reader::of(&request)?;
        let citizen = principal::citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, HOUSEHOLD)?;
        let id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("household", id);
        self.served.check(&metadata, &istat, "name")?;
        let as_of = household::as_of("as_of", civil(req.as_of.as_ref()), today_in_italy())?;
        let mut conn = self.db.pool().acquire().await?;
        let stored = store::get_household(&mut conn, &istat, id)
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        let memberships = store::memberships_of_household(&mut conn, &istat, id).await?;
        // A citizen sees a household they belong or belonged to; any other is NOT_FOUND, as
        // a missing one.
        if let Some(cf) = &citizen {
            let mut member = false;
            for m in &memberships {
                let person = storage::read_resident(&mut conn, &istat, &m.resident_id).await?;
                if person.is_some_and(|p| is_own(cf, &p)) {
                    member = true;
                    break;
                }
            }
            if !member {
                return Err(ApiError::not_found("name", &req.name));
            }
        }
        drop(conn);
        let household = household_to_pb(&istat, &stored, &memberships, as_of);
        // The household, and each member it lists.
        let read = std::iter::once(household.name.as_str())
            .chain(household.members.iter().map(|m| m.resident.as_str()));
        access::record_reads(&self.db, &reader, &istat, GET_HOUSEHOLD, read).await?;
        Ok(household)
    }

    #[tracing::instrument(
        name = "AddHouseholdMember",
        skip_all,
        fields(comune = field::Empty, household = field::Empty, resident = field::Empty)
    )]
    async fn add_member_inner(
        &self,
        request: Request<pb::AddHouseholdMemberRequest>,
    ) -> Result<pb::Household, ApiError> {
        let operator = principal::require(&request).cloned();
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("household", &req.household, HOUSEHOLD)?;
        let household_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("household", household_id);
        self.served.check(&metadata, &istat, "household")?;
        let operator = operator_of(&operator?, &istat)?;
        let resident_id = resident_in("resident", &req.resident, &istat)?;
        Span::current().record("resident", resident_id.as_str());
        let relationship = relationship_from_pb(req.relationship, "relationship")?;
        if relationship == Relationship::Head {
            return Err(HouseholdError::HeadNotAllowed.into());
        }
        let today = today_in_italy();
        let date =
            household::effective("effective_date", civil(req.effective_date.as_ref()), today)?;

        let mut tx = self.db.begin_write().await?;
        let now = now_micros();
        let stored = store::get_household(&mut tx, &istat, household_id)
            .await?
            .ok_or_else(|| ApiError::not_found("household", &req.household))?;
        let resident = storage::lock_resident(&mut tx, &istat, &resident_id, now)
            .await?
            .ok_or_else(|| ApiError::not_found("resident", &req.resident))?;
        let (person, memberships) = person_state(&mut tx, &istat, &resident_id).await?;
        check_person(&person, date, "effective_date")?;
        if date < stored.start_date {
            return Err(HouseholdError::BeforeLatestChange {
                field: "effective_date",
                latest: stored.start_date,
            }
            .into());
        }
        if memberships.iter().any(|m| m.end_date.is_none()) {
            return Err(HouseholdError::AlreadyInHousehold { field: "resident" }.into());
        }
        self.notify(change(
            &istat,
            &resident,
            date,
            AnprChangeKind::HouseholdJoined {
                household: household_id.to_owned(),
                relationship,
            },
        ))
        .await?;
        let member = Membership {
            household_id: household_id.to_owned(),
            resident_id: resident_id.clone(),
            relationship,
            start_date: date,
            end_date: None,
        };
        store::insert_membership(&mut tx, &istat, &member, &operator, now).await?;
        let all = store::memberships_of_household(&mut tx, &istat, household_id).await?;
        tx.commit().await?;
        Ok(household_to_pb(&istat, &stored, &all, today))
    }

    #[tracing::instrument(
        name = "RemoveHouseholdMember",
        skip_all,
        fields(comune = field::Empty, household = field::Empty, resident = field::Empty)
    )]
    async fn remove_member_inner(
        &self,
        request: Request<pb::RemoveHouseholdMemberRequest>,
    ) -> Result<pb::Household, ApiError> {
        let operator = principal::require(&request).cloned();
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("household", &req.household, HOUSEHOLD)?;
        let household_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("household", household_id);
        self.served.check(&metadata, &istat, "household")?;
        operator_of(&operator?, &istat)?;
        let resident_id = resident_in("resident", &req.resident, &istat)?;
        Span::current().record("resident", resident_id.as_str());
        let today = today_in_italy();
        let date =
            household::effective("effective_date", civil(req.effective_date.as_ref()), today)?;

        let mut tx = self.db.begin_write().await?;
        let now = now_micros();
        let stored = store::get_household(&mut tx, &istat, household_id)
            .await?
            .ok_or_else(|| ApiError::not_found("household", &req.household))?;
        let resident = storage::lock_resident(&mut tx, &istat, &resident_id, now)
            .await?
            .ok_or_else(|| ApiError::not_found("resident", &req.resident))?;
        let all = store::memberships_of_household(&mut tx, &istat, household_id).await?;
        let current = all
            .iter()
            .find(|m| m.resident_id == resident_id && m.end_date.is_none())
            .ok_or(HouseholdError::NotAMember)?;
        let (person, _) = person_state(&mut tx, &istat, &resident_id).await?;
        check_person(&person, date, "effective_date")?;
        let others = all
            .iter()
            .any(|m| m.resident_id != resident_id && m.end_date.is_none());
        if current.relationship == Relationship::Head && others {
            return Err(HouseholdError::HeadHasMembers.into());
        }
        self.notify(change(
            &istat,
            &resident,
            date,
            AnprChangeKind::HouseholdLeft {
                household: household_id.to_owned(),
            },
        ))
        .await?;
        store::end_membership(&mut tx, &istat, household_id, &resident_id, date).await?;
        let all = store::memberships_of_household(&mut tx, &istat, household_id).await?;
        tx.commit().await?;
        Ok(household_to_pb(&istat, &stored, &all, today))
    }

    #[tracing::instrument(
        name = "CreateResidenceEvent",
        skip_all,
        fields(comune = field::Empty, resident = field::Empty, event = field::Empty)
    )]
    async fn create_event_inner(
        &self,
        request: Request<pb::CreateResidenceEventRequest>,
    ) -> Result<pb::ResidenceEvent, ApiError> {
        let operator = principal::require(&request).cloned();
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("parent", &req.parent, RESIDENT)?;
        let resident_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("resident", resident_id);
        self.served.check(&metadata, &istat, "parent")?;
        let operator = operator_of(&operator?, &istat)?;
        let given = req
            .event
            .as_ref()
            .ok_or_else(|| ApiError::required("event"))?;
        let draft = event_draft_from_pb(given)?;

        let asked = pb::CreateResidenceEventRequest {
            parent: req.parent.clone(),
            event: Some(pb::ResidenceEvent {
                kind: given.kind,
                effective_date: given.effective_date,
                address: given.address.clone(),
                destination: given.destination.clone(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let fingerprint = idempotency::fingerprint(&asked);
        let scope = format!("registry/{}/CreateResidenceEvent", istat.resource_name());
        let (db, istat, operator, parent) = (&self.db, &istat, operator.as_str(), &req.parent);
        let created = idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let mut tx = db.begin_write().await?;
                let now = now_micros();
                let resident = storage::lock_resident(&mut tx, istat, resident_id, now)
                    .await?
                    .ok_or_else(|| ApiError::not_found("parent", parent))?;
                let (person, _) = person_state(&mut tx, istat, resident_id).await?;
                let event = draft.validate(&person, today_in_italy())?;
                let kind = match event.kind {
                    // validate() refuses registrations and restorations.
                    EventKind::AddressChange | EventKind::Registration | EventKind::Restoration => {
                        AnprChangeKind::AddressChange {
                            address: event.address.clone(),
                        }
                    }
                    EventKind::Emigration => AnprChangeKind::Emigration {
                        destination: event.destination.clone(),
                    },
                    EventKind::Death => AnprChangeKind::Death,
                };
                let reference = self
                    .notify(change(istat, &resident, event.effective_date, kind))
                    .await?;
                let stored = store::insert_event(
                    &mut tx,
                    istat,
                    resident_id,
                    &event,
                    &reference,
                    operator,
                    now,
                )
                .await?;
                let response = event_to_pb(istat, resident_id, &stored);
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(response)
            },
        )
        .await?;
        Span::current().record("event", last_segment(&created.name));
        Ok(created)
    }

    #[tracing::instrument(
        name = "ListResidenceEvents",
        skip_all,
        fields(comune = field::Empty, resident = field::Empty)
    )]
    async fn list_events_inner(
        &self,
        request: Request<pb::ListResidenceEventsRequest>,
    ) -> Result<pb::ListResidenceEventsResponse, ApiError> {
        let reader = access::Reader::of(&request)?;
        let citizen = principal::citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("parent", &req.parent, RESIDENT)?;
        let resident_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("resident", resident_id);
        self.served.check(&metadata, &istat, "parent")?;
        let size = pagination::page_size(req.page_size)?;
        let scope = format!("ListResidenceEvents/{}", req.parent);
        let after: Option<i64> = pagination::decode_token(&scope, &req.page_token)?;
        let mut conn = self.db.pool().acquire().await?;
        storage::read_resident(&mut conn, &istat, resident_id)
            .await?
            .filter(|r| citizen.as_deref().is_none_or(|cf| is_own(cf, r)))
            .ok_or_else(|| ApiError::not_found("parent", &req.parent))?;
        let mut rows =
            store::events(&mut conn, &istat, resident_id, after.unwrap_or(0), size + 1).await?;
        let next_page_token = pagination::finish_page(&mut rows, size, &scope, |e| e.seq);
        drop(conn);
        let read = [req.parent.as_str()];
        access::record_reads(&self.db, &reader, &istat, LIST_RESIDENCE_EVENTS, read).await?;
        Ok(pb::ListResidenceEventsResponse {
            events: rows
                .iter()
                .map(|e| event_to_pb(&istat, resident_id, e))
                .collect(),
            next_page_token,
        })
    }

    #[tracing::instrument(
        name = "GetResidenceAtDate",
        skip_all,
        fields(comune = field::Empty, resident = field::Empty)
    )]
    async fn residence_at_inner(
        &self,
        request: Request<pb::GetResidenceAtDateRequest>,
    ) -> Result<pb::ResidenceAtDate, ApiError> {
        let reader = access::Reader::of(&request)?;
        let citizen = principal::citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, RESIDENT)?;
        let resident_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("resident", resident_id);
        self.served.check(&metadata, &istat, "name")?;
        let date = household::effective("date", civil(req.date.as_ref()), today_in_italy())?;
        let mut conn = self.db.pool().acquire().await?;
        storage::read_resident(&mut conn, &istat, resident_id)
            .await?
            .filter(|r| citizen.as_deref().is_none_or(|cf| is_own(cf, r)))
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        let at = residence_at(&mut conn, &istat, resident_id, date).await?;
        drop(conn);
        let read = [req.name.as_str()];
        access::record_reads(&self.db, &reader, &istat, GET_RESIDENCE_AT_DATE, read).await?;
        let (status, address) = match &at.standing {
            Standing::Resident(address) => {
                (pb::ResidenceStatus::Resident, Some(address_to_pb(address)))
            }
            Standing::NotRegistered => (pb::ResidenceStatus::NotRegistered, None),
            Standing::Emigrated => (pb::ResidenceStatus::Emigrated, None),
            Standing::Deceased => (pb::ResidenceStatus::Deceased, None),
        };
        Ok(pb::ResidenceAtDate {
            resident: req.name.clone(),
            date: Some(date_to_pb(date)),
            status: status.into(),
            address,
            household: at
                .membership
                .as_ref()
                .map(|m| household_name(&istat, &m.household_id))
                .unwrap_or_default(),
            relationship: at
                .membership
                .as_ref()
                .map_or(pb::Relationship::Unspecified, |m| {
                    relationship_to_pb(m.relationship)
                })
                .into(),
        })
    }
}

#[tonic::async_trait]
impl HouseholdService for HouseholdApi {
    async fn create_household(
        &self,
        request: Request<pb::CreateHouseholdRequest>,
    ) -> Result<Response<pb::Household>, tonic::Status> {
        Ok(Response::new(self.create_household_inner(request).await?))
    }

    async fn get_household(
        &self,
        request: Request<pb::GetHouseholdRequest>,
    ) -> Result<Response<pb::Household>, tonic::Status> {
        Ok(Response::new(self.get_household_inner(request).await?))
    }

    async fn add_household_member(
        &self,
        request: Request<pb::AddHouseholdMemberRequest>,
    ) -> Result<Response<pb::Household>, tonic::Status> {
        Ok(Response::new(self.add_member_inner(request).await?))
    }

    async fn remove_household_member(
        &self,
        request: Request<pb::RemoveHouseholdMemberRequest>,
    ) -> Result<Response<pb::Household>, tonic::Status> {
        Ok(Response::new(self.remove_member_inner(request).await?))
    }

    async fn create_residence_event(
        &self,
        request: Request<pb::CreateResidenceEventRequest>,
    ) -> Result<Response<pb::ResidenceEvent>, tonic::Status> {
        Ok(Response::new(self.create_event_inner(request).await?))
    }

    async fn list_residence_events(
        &self,
        request: Request<pb::ListResidenceEventsRequest>,
    ) -> Result<Response<pb::ListResidenceEventsResponse>, tonic::Status> {
        Ok(Response::new(self.list_events_inner(request).await?))
    }

    async fn get_residence_at_date(
        &self,
        request: Request<pb::GetResidenceAtDateRequest>,
    ) -> Result<Response<pb::ResidenceAtDate>, tonic::Status> {
        Ok(Response::new(self.residence_at_inner(request).await?))
    }
}

/// A resident's standing and household membership at a date.
pub(super) struct ResidenceAt {
    /// The standing.
    pub standing: Standing,
    /// The membership covering the date, if any.
    pub membership: Option<Membership>,
}

/// Reads a resident's standing and membership at `date`.
pub(super) async fn residence_at(
    conn: &mut AnyConnection,
    istat: &Istat,
    resident_id: &str,
    date: NaiveDate,
) -> Result<ResidenceAt, sqlx::Error> {
    let history = store::history(conn, istat, resident_id).await?;
    let memberships = store::memberships_of_resident(conn, istat, resident_id).await?;
    Ok(ResidenceAt {
        standing: standing_at(&history, date),
        membership: memberships.into_iter().find(|m| m.covers(date)),
    })
}

/// A person's state for a change, and their memberships.
pub(super) async fn person_state(
    conn: &mut AnyConnection,
    istat: &Istat,
    resident_id: &str,
) -> Result<(PersonState, Vec<Membership>), sqlx::Error> {
    let history = store::history(conn, istat, resident_id).await?;
    let memberships = store::memberships_of_resident(conn, istat, resident_id).await?;
    Ok((PersonState::of(&history, &memberships), memberships))
}

/// The operator recording a change: an operator or integrator acting for the comune
/// (PERMISSION_DENIED otherwise: citizens and other roles read, they do not change the
/// register). Returns the principal's opaque id, stored with the change.
pub(super) fn operator_of(who: &Principal, istat: &Istat) -> Result<String, ApiError> {
    let allowed = matches!(who.role, Role::Operator | Role::Integrator)
        && who.comuni.iter().any(|c| c == istat.as_str());
    if allowed {
        Ok(who.sub.clone())
    } else {
        Err(ApiError::new(
            Code::PermissionDenied,
            "PERMISSION_DENIED",
            "only the comune's operators may change its register",
        ))
    }
}

/// The change sent to ANPR about `resident`.
fn change(
    istat: &Istat,
    resident: &StoredResident,
    effective_date: NaiveDate,
    kind: AnprChangeKind,
) -> AnprChange {
    AnprChange {
        comune: istat.as_str().to_owned(),
        codice_fiscale: resident.resident.codice_fiscale.clone(),
        effective_date,
        kind,
    }
}

/// The id of a resident named in `field`, which must be of the comune `istat`.
pub(super) fn resident_in(field: &str, name: &str, istat: &Istat) -> Result<String, ApiError> {
    if name.is_empty() {
        return Err(ApiError::required(field));
    }
    let (of, vars) = parse_name(field, name, RESIDENT)?;
    if &of != istat {
        return Err(ApiError::invalid(
            field,
            "COMUNE_MISMATCH",
            format!("{field} must be a resident of comuni/{istat}"),
        ));
    }
    Ok(vars[0].to_owned())
}

/// A wire date as a civil date for the domain to check.
pub(super) fn civil(date: Option<&Date>) -> Option<CivilDate> {
    date.map(|d| CivilDate {
        year: d.year,
        month: d.month,
        day: d.day,
    })
}

fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or_default()
}

fn household_name(istat: &Istat, id: &str) -> String {
    format!("{}/households/{id}", istat.resource_name())
}

fn resident_name(istat: &Istat, id: &str) -> String {
    format!("{}/residents/{id}", istat.resource_name())
}

pub(super) fn relationship_from_pb(
    value: i32,
    field: &str,
) -> Result<Relationship, HouseholdError> {
    use pb::Relationship as R;
    Ok(match R::try_from(value) {
        Ok(R::Unspecified) => {
            return Err(HouseholdError::Required {
                field: field.to_owned(),
            });
        }
        Ok(R::Head) => Relationship::Head,
        Ok(R::Spouse) => Relationship::Spouse,
        Ok(R::CivilPartner) => Relationship::CivilPartner,
        Ok(R::Child) => Relationship::Child,
        Ok(R::Parent) => Relationship::Parent,
        Ok(R::Sibling) => Relationship::Sibling,
        Ok(R::OtherRelative) => Relationship::OtherRelative,
        Ok(R::InLaw) => Relationship::InLaw,
        Ok(R::Ward) => Relationship::Ward,
        Ok(R::Cohabitant) => Relationship::Cohabitant,
        Err(_) => {
            return Err(HouseholdError::UnknownEnumValue {
                field: field.to_owned(),
                value,
            });
        }
    })
}

pub(super) fn relationship_to_pb(relationship: Relationship) -> pb::Relationship {
    use pb::Relationship as R;
    match relationship {
        Relationship::Head => R::Head,
        Relationship::Spouse => R::Spouse,
        Relationship::CivilPartner => R::CivilPartner,
        Relationship::Child => R::Child,
        Relationship::Parent => R::Parent,
        Relationship::Sibling => R::Sibling,
        Relationship::OtherRelative => R::OtherRelative,
        Relationship::InLaw => R::InLaw,
        Relationship::Ward => R::Ward,
        Relationship::Cohabitant => R::Cohabitant,
    }
}

fn event_draft_from_pb(e: &pb::ResidenceEvent) -> Result<EventDraft, HouseholdError> {
    use pb::ResidenceEventKind as K;
    let kind = match K::try_from(e.kind) {
        Ok(K::Unspecified) => None,
        Ok(K::Registration) => Some(EventKind::Registration),
        Ok(K::AddressChange) => Some(EventKind::AddressChange),
        Ok(K::Emigration) => Some(EventKind::Emigration),
        Ok(K::Death) => Some(EventKind::Death),
        Ok(K::Restoration) => Some(EventKind::Restoration),
        Err(_) => {
            return Err(HouseholdError::UnknownEnumValue {
                field: "event.kind".to_owned(),
                value: e.kind,
            });
        }
    };
    Ok(EventDraft {
        kind,
        effective_date: civil(e.effective_date.as_ref()),
        address: e.address.as_ref().map(|a| Address {
            street: a.street.clone(),
            house_number: a.house_number.clone(),
            postal_code: a.postal_code.clone(),
            locality: a.locality.clone(),
        }),
        destination: e.destination.clone(),
    })
}

pub(super) fn address_to_pb(a: &Address) -> pb::Address {
    pb::Address {
        street: a.street.clone(),
        house_number: a.house_number.clone(),
        postal_code: a.postal_code.clone(),
        locality: a.locality.clone(),
    }
}

fn event_to_pb(istat: &Istat, resident_id: &str, stored: &StoredEvent) -> pb::ResidenceEvent {
    use pb::ResidenceEventKind as K;
    let e = &stored.event;
    pb::ResidenceEvent {
        name: format!(
            "{}/residenceEvents/{}",
            resident_name(istat, resident_id),
            stored.id
        ),
        kind: match e.kind {
            EventKind::Registration => K::Registration,
            EventKind::AddressChange => K::AddressChange,
            EventKind::Emigration => K::Emigration,
            EventKind::Death => K::Death,
            EventKind::Restoration => K::Restoration,
        }
        .into(),
        effective_date: Some(date_to_pb(e.effective_date)),
        address: (e.address != Address::default()).then(|| address_to_pb(&e.address)),
        destination: e.destination.clone(),
        anpr_reference: stored.anpr_reference.clone(),
        create_time: Some(timestamp(stored.create_time)),
        r#move: if stored.move_id.is_empty() {
            String::new()
        } else {
            format!("{}/moves/{}", istat.resource_name(), stored.move_id)
        },
    }
}

/// The wire household with its members at `as_of`.
fn household_to_pb(
    istat: &Istat,
    stored: &StoredHousehold,
    memberships: &[Membership],
    as_of: NaiveDate,
) -> pb::Household {
    pb::Household {
        name: household_name(istat, &stored.id),
        start_date: Some(date_to_pb(stored.start_date)),
        members: members_at(memberships, as_of)
            .iter()
            .map(|m| pb::HouseholdMember {
                resident: resident_name(istat, &m.resident_id),
                relationship: relationship_to_pb(m.relationship).into(),
                start_date: Some(date_to_pb(m.start_date)),
                end_date: m.end_date.map(date_to_pb),
            })
            .collect(),
        as_of: Some(date_to_pb(as_of)),
        create_time: Some(timestamp(stored.create_time)),
    }
}
