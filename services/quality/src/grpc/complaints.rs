//! The gRPC handlers of `unione.quality.v1.ComplaintService`. No complaint text, contact or
//! actor goes into logs or spans: only the comune and the complaint id.

use tonic::{Request, Response};
use tracing::{Span, field};
use unione_kit::idempotency;
use unione_kit::names::parse_name;
use unione_kit::storage::timestamp;
use unione_kit::{ApiError, Database, Istat, Served, pagination, principal};
use unione_proto::quality::v1 as pb;
use unione_proto::quality::v1::complaint_service_server::ComplaintService;

use super::{COMUNE, Clock, channel_from_pb, channel_to_pb, date_to_pb, period_from_pb};
use crate::domain::calendar::{rome_date, rome_range_micros};
use crate::domain::complaints::{
    self, Charter, ComplaintError, ComplaintStatus, Intake, check_actor,
};
use crate::storage::complaints::{
    self as storage, ComplaintPageKey, StatusChange, StoredComplaint,
};

/// `comuni/{istat}/complaints/{complaint_id}`.
const COMPLAINT: &[&str] = &["comuni", "*", "complaints", "*"];
/// `comuni/{istat}/serviceCharter`.
const CHARTER: &[&str] = &["comuni", "*", "serviceCharter"];

/// A refused workflow move is FAILED_PRECONDITION; every other refusal is invalid input.
impl From<ComplaintError> for ApiError {
    fn from(err: ComplaintError) -> Self {
        if err.is_precondition() {
            ApiError::failed_precondition(err.reason(), err.to_string()).with_field(err.field())
        } else {
            ApiError::invalid(err.field(), err.reason(), err.to_string())
        }
    }
}

/// The complaint service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct ComplaintApi {
    db: Database,
    served: Served,
    clock: Clock,
}

impl ComplaintApi {
    /// The handlers over a migrated database (see [`crate::migrations`]) for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self::with_clock(db, served, Clock::system())
    }

    /// The handlers, reading the time from `clock`.
    pub fn with_clock(db: Database, served: Served, clock: Clock) -> Self {
        Self { db, served, clock }
    }

    #[tracing::instrument(
        name = "CreateComplaint",
        skip_all,
        fields(comune = field::Empty, complaint = field::Empty)
    )]
    async fn create_complaint_inner(
        &self,
        request: Request<pb::CreateComplaintRequest>,
    ) -> Result<pb::Complaint, ApiError> {
        let who = principal::principal(&request).cloned();
        let citizen = principal::citizen(who.as_ref())?;
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let given = req
            .complaint
            .as_ref()
            .ok_or_else(|| ApiError::required("complaint"))?;
        let intake = Intake::new(
            &given.category,
            channel_from_pb(given.channel),
            &given.text,
            &given.contact,
        )?;

        // Only what intake reads is the request; output-only fields echoed back are not.
        let asked = pb::CreateComplaintRequest {
            parent: req.parent.clone(),
            complaint: Some(pb::Complaint {
                category: given.category.clone(),
                channel: given.channel,
                text: given.text.clone(),
                contact: given.contact.clone(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let fingerprint = idempotency::fingerprint(&asked);
        // A citizen's keys are theirs alone: two citizens' keys never meet.
        let scope = match (&citizen, &who) {
            (Some(_), Some(who)) => format!(
                "quality/{}/CreateComplaint/{}",
                istat.resource_name(),
                who.sub
            ),
            _ => format!("quality/{}/CreateComplaint", istat.resource_name()),
        };
        let filer = citizen.as_deref();
        let db = &self.db;
        let istat = &istat;
        let intake = &intake;
        let now = self.clock.now();
        idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let complaint_id = uuid::Uuid::now_v7().simple().to_string();
                let mut tx = db.begin_write().await?;
                // The deadlines come from the charter in force at receipt, and stay.
                let charter = storage::get_charter(&mut tx, istat)
                    .await?
                    .map(|(c, _)| c)
                    .unwrap_or_default();
                let deadlines = charter.deadlines(now);
                storage::insert_complaint(&mut tx, istat, &complaint_id, intake, &deadlines, now)
                    .await?;
                if let Some(filer) = filer {
                    storage::set_filer(&mut tx, istat, &complaint_id, filer).await?;
                }
                Span::current().record("complaint", complaint_id.as_str());
                let response = complaint_to_pb(
                    istat,
                    &StoredComplaint {
                        complaint_id,
                        intake: intake.clone(),
                        status: ComplaintStatus::Received,
                        receive_time: now,
                        deadlines,
                        history: vec![StatusChange {
                            status: ComplaintStatus::Received,
                            time: now,
                            actor: storage::INTAKE_ACTOR.to_owned(),
                        }],
                    },
                );
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok(response)
            },
        )
        .await
    }

    #[tracing::instrument(name = "GetComplaint", skip_all, fields(comune = field::Empty, complaint = field::Empty))]
    async fn get_complaint_inner(
        &self,
        request: Request<pb::GetComplaintRequest>,
    ) -> Result<pb::Complaint, ApiError> {
        let citizen = principal::citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, COMPLAINT)?;
        Span::current()
            .record("comune", istat.as_str())
            .record("complaint", vars[0]);
        self.served.check(&metadata, &istat, "name")?;
        let mut conn = self.db.pool().acquire().await?;
        // A citizen reads only a complaint they filed; any other is NOT_FOUND, as a missing
        // one.
        if let Some(cf) = &citizen
            && storage::filer(&mut conn, &istat, vars[0]).await?.as_ref() != Some(cf)
        {
            return Err(ApiError::not_found("name", &req.name));
        }
        let stored = storage::get_complaint(&mut conn, &istat, vars[0])
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        Ok(complaint_to_pb(&istat, &stored))
    }

    #[tracing::instrument(name = "ListComplaints", skip_all, fields(comune = field::Empty))]
    async fn list_complaints_inner(
        &self,
        request: Request<pb::ListComplaintsRequest>,
    ) -> Result<pb::ListComplaintsResponse, ApiError> {
        let citizen = principal::citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let size = pagination::page_size(req.page_size)?;
        // A citizen's list holds only the complaints they filed; their tokens are theirs.
        let scope = format!(
            "ListComplaints/{}/{}",
            req.parent,
            citizen.as_deref().unwrap_or("")
        );
        let after: Option<ComplaintPageKey> = pagination::decode_token(&scope, &req.page_token)?;
        let mut conn = self.db.pool().acquire().await?;
        let mut rows = storage::list_complaints(
            &mut conn,
            &istat,
            citizen.as_deref(),
            after.as_ref(),
            size + 1,
        )
        .await?;
        let next_page_token = pagination::finish_page(&mut rows, size, &scope, |c| {
            (c.receive_time, c.complaint_id.clone())
        });
        Ok(pb::ListComplaintsResponse {
            complaints: rows.iter().map(|c| complaint_to_pb(&istat, c)).collect(),
            next_page_token,
        })
    }

    #[tracing::instrument(
        name = "TransitionComplaint",
        skip_all,
        fields(comune = field::Empty, complaint = field::Empty)
    )]
    async fn transition_inner(
        &self,
        request: Request<pb::TransitionComplaintRequest>,
    ) -> Result<pb::Complaint, ApiError> {
        principal::refuse_citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, COMPLAINT)?;
        let complaint_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("complaint", complaint_id);
        self.served.check(&metadata, &istat, "name")?;
        let to = status_from_pb(req.status)?;
        check_actor(&req.actor)?;
        let now = self.clock.now();
        let mut tx = self.db.begin_write().await?;
        let current = storage::get_complaint(&mut tx, &istat, complaint_id)
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        current.status.check_transition(to)?;
        let moved = storage::transition(
            &mut tx,
            &istat,
            complaint_id,
            current.status,
            to,
            req.actor.trim(),
            now,
        )
        .await?;
        if !moved {
            // Another change committed between the read and the update (PostgreSQL).
            return Err(ApiError::failed_precondition(
                "INVALID_STATUS_TRANSITION",
                "the complaint changed status meanwhile; read it again",
            )
            .with_field("status"));
        }
        let stored = storage::get_complaint(&mut tx, &istat, complaint_id)
            .await?
            .ok_or_else(|| ApiError::internal(&"a complaint vanished in its own transaction"))?;
        tx.commit().await?;
        Ok(complaint_to_pb(&istat, &stored))
    }

    #[tracing::instrument(name = "GetServiceCharter", skip_all, fields(comune = field::Empty))]
    async fn get_charter_inner(
        &self,
        request: Request<pb::GetServiceCharterRequest>,
    ) -> Result<pb::ServiceCharter, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("name", &req.name, CHARTER)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "name")?;
        let mut conn = self.db.pool().acquire().await?;
        let stored = storage::get_charter(&mut conn, &istat).await?;
        Ok(charter_to_pb(&istat, stored))
    }

    #[tracing::instrument(name = "UpdateServiceCharter", skip_all, fields(comune = field::Empty))]
    async fn update_charter_inner(
        &self,
        request: Request<pb::UpdateServiceCharterRequest>,
    ) -> Result<pb::ServiceCharter, ApiError> {
        principal::refuse_citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let given = req
            .service_charter
            .as_ref()
            .ok_or_else(|| ApiError::required("service_charter"))?;
        let (istat, _) = parse_name("service_charter.name", &given.name, CHARTER)?;
        Span::current().record("comune", istat.as_str());
        self.served
            .check(&metadata, &istat, "service_charter.name")?;
        let charter = Charter::new(given.acknowledgement_days, given.response_days)?;
        let now = self.clock.now();
        let mut tx = self.db.begin_write().await?;
        storage::set_charter(&mut tx, &istat, &charter, now).await?;
        tx.commit().await?;
        Ok(charter_to_pb(&istat, Some((charter, now))))
    }

    #[tracing::instrument(name = "ComputeComplaintIndicators", skip_all, fields(comune = field::Empty))]
    async fn indicators_inner(
        &self,
        request: Request<pb::ComputeComplaintIndicatorsRequest>,
    ) -> Result<pb::ComplaintIndicators, ApiError> {
        principal::refuse_citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let (start, end) = period_from_pb(req.start_date.as_ref(), req.end_date.as_ref())?;
        let (from, until) = rome_range_micros(start, end);
        let facts = storage::received_between(&self.db, &istat, from, until).await?;
        let i = complaints::indicators(&facts, rome_date(self.clock.now()));
        Ok(pb::ComplaintIndicators {
            parent: req.parent.clone(),
            start_date: Some(date_to_pb(start)),
            end_date: Some(date_to_pb(end)),
            received_count: i.received,
            acknowledged_count: i.acknowledged,
            answered_count: i.answered,
            closed_count: i.closed,
            overdue_count: i.overdue,
            acknowledged_in_time_share: i.acknowledged_in_time_share,
            acknowledgement_due_count: i.acknowledgement_due,
            answered_in_time_share: i.answered_in_time_share,
            response_due_count: i.response_due,
            median_response_days: i.median_response_days,
        })
    }
}

#[tonic::async_trait]
impl ComplaintService for ComplaintApi {
    async fn create_complaint(
        &self,
        request: Request<pb::CreateComplaintRequest>,
    ) -> Result<Response<pb::Complaint>, tonic::Status> {
        Ok(Response::new(self.create_complaint_inner(request).await?))
    }

    async fn get_complaint(
        &self,
        request: Request<pb::GetComplaintRequest>,
    ) -> Result<Response<pb::Complaint>, tonic::Status> {
        Ok(Response::new(self.get_complaint_inner(request).await?))
    }

    async fn list_complaints(
        &self,
        request: Request<pb::ListComplaintsRequest>,
    ) -> Result<Response<pb::ListComplaintsResponse>, tonic::Status> {
        Ok(Response::new(self.list_complaints_inner(request).await?))
    }

    async fn transition_complaint(
        &self,
        request: Request<pb::TransitionComplaintRequest>,
    ) -> Result<Response<pb::Complaint>, tonic::Status> {
        Ok(Response::new(self.transition_inner(request).await?))
    }

    async fn get_service_charter(
        &self,
        request: Request<pb::GetServiceCharterRequest>,
    ) -> Result<Response<pb::ServiceCharter>, tonic::Status> {
        Ok(Response::new(self.get_charter_inner(request).await?))
    }

    async fn update_service_charter(
        &self,
        request: Request<pb::UpdateServiceCharterRequest>,
    ) -> Result<Response<pb::ServiceCharter>, tonic::Status> {
        Ok(Response::new(self.update_charter_inner(request).await?))
    }

    async fn compute_complaint_indicators(
        &self,
        request: Request<pb::ComputeComplaintIndicatorsRequest>,
    ) -> Result<Response<pb::ComplaintIndicators>, tonic::Status> {
        Ok(Response::new(self.indicators_inner(request).await?))
    }
}

/// The wire status asked for: required, and a known one.
fn status_from_pb(code: i32) -> Result<ComplaintStatus, ApiError> {
    use pb::ComplaintStatus as S;
    match S::try_from(code) {
        Ok(S::Unspecified) => Err(ApiError::required("status")),
        Ok(S::Received) => Ok(ComplaintStatus::Received),
        Ok(S::Acknowledged) => Ok(ComplaintStatus::Acknowledged),
        Ok(S::Assessed) => Ok(ComplaintStatus::Assessed),
        Ok(S::Answered) => Ok(ComplaintStatus::Answered),
        Ok(S::Closed) => Ok(ComplaintStatus::Closed),
        Err(_) => Err(ApiError::invalid(
            "status",
            "INVALID_STATUS",
            format!("{code} is not a complaint status"),
        )),
    }
}

fn status_to_pb(status: ComplaintStatus) -> i32 {
    use pb::ComplaintStatus as S;
    match status {
        ComplaintStatus::Received => S::Received,
        ComplaintStatus::Acknowledged => S::Acknowledged,
        ComplaintStatus::Assessed => S::Assessed,
        ComplaintStatus::Answered => S::Answered,
        ComplaintStatus::Closed => S::Closed,
    }
    .into()
}

/// The wire form of a stored complaint of `istat`.
fn complaint_to_pb(istat: &Istat, c: &StoredComplaint) -> pb::Complaint {
    pb::Complaint {
        name: format!("{}/complaints/{}", istat.resource_name(), c.complaint_id),
        complaint_id: c.complaint_id.clone(),
        category: c.intake.category.clone(),
        channel: channel_to_pb(c.intake.channel),
        text: c.intake.text.clone(),
        contact: c.intake.contact.clone().unwrap_or_default(),
        status: status_to_pb(c.status),
        receive_time: Some(timestamp(c.receive_time)),
        acknowledgement_deadline: Some(date_to_pb(c.deadlines.acknowledgement)),
        response_deadline: Some(date_to_pb(c.deadlines.response)),
        history: c
            .history
            .iter()
            .map(|h| pb::StatusChange {
                status: status_to_pb(h.status),
                time: Some(timestamp(h.time)),
                actor: h.actor.clone(),
            })
            .collect(),
    }
}

/// The wire form of a comune's charter, the defaults when never set.
fn charter_to_pb(istat: &Istat, stored: Option<(Charter, i64)>) -> pb::ServiceCharter {
    let (charter, update_time) = match stored {
        Some((c, t)) => (c, Some(timestamp(t))),
        None => (Charter::default(), None),
    };
    pb::ServiceCharter {
        name: format!("{}/serviceCharter", istat.resource_name()),
        acknowledgement_days: charter.acknowledgement_days,
        response_days: charter.response_days,
        update_time,
    }
}
