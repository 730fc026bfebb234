//! The gRPC handlers of `unione.quality.v1.ImprovementService`. Writes record their actor, the
//! authenticated user's id ([`principal::require`]); no description, root cause or action text
//! goes into logs or spans, only the comune and the ids.

use tonic::{Request, Response};
use tracing::{Span, field};
use unione_kit::idempotency;
use unione_kit::names::parse_name;
use unione_kit::pagination;
use unione_kit::principal;
use unione_kit::storage::timestamp;
use unione_kit::{ApiError, Database, Istat, Served};
use unione_proto::quality::v1 as pb;
use unione_proto::quality::v1::improvement_service_server::ImprovementService;

use super::{COMUNE, Clock, KPI, date_from_pb, date_to_pb};
use crate::domain::calendar::rome_date;
use crate::domain::improvement::{
    self as rules, Check, CorrectiveAction, Effectiveness, ImprovementError, Nonconformity,
    NonconformitySource, Objective, ObjectiveStatus, action_overdue, check_closable,
    check_root_cause,
};
use crate::domain::{self, Kpi};
use crate::storage;
use crate::storage::improvement::{
    self as store, Change, StoredAction, StoredNonconformity, StoredObjective,
};

/// `comuni/{istat}/objectives/{objective_id}`.
const OBJECTIVE: &[&str] = &["comuni", "*", "objectives", "*"];
/// `comuni/{istat}/nonconformities/{nonconformity_id}`.
const NONCONFORMITY: &[&str] = &["comuni", "*", "nonconformities", "*"];
/// `comuni/{istat}/nonconformities/{nonconformity_id}/correctiveActions/{action_id}`.
const ACTION: &[&str] = &[
    "comuni",
    "*",
    "nonconformities",
    "*",
    "correctiveActions",
    "*",
];

/// A state that refuses the change is FAILED_PRECONDITION; every other refusal is invalid
/// input.
impl From<ImprovementError> for ApiError {
    fn from(err: ImprovementError) -> Self {
        if err.is_precondition() {
            ApiError::failed_precondition(err.reason(), err.to_string()).with_field(err.field())
        } else {
            ApiError::invalid(err.field(), err.reason(), err.to_string())
        }
    }
}

/// The improvement service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct ImprovementApi {
    db: Database,
    served: Served,
    clock: Clock,
}

/// A KPI of a comune, standard or its own, named by `kpi` (`comuni/{istat}/kpis/{id}` of
/// `istat`); INVALID_ARGUMENT or NOT_FOUND on `field` otherwise.
pub(crate) async fn referenced_kpi(
    db: &Database,
    istat: &Istat,
    kpi: &str,
    field: &str,
) -> Result<Kpi, ApiError> {
    let (of, vars) = parse_name(field, kpi, KPI)?;
    if &of != istat {
        return Err(ApiError::invalid(
            field,
            "INVALID_RESOURCE_NAME",
            "the KPI must be one of the same comune",
        ));
    }
    if let Some(kpi) = domain::standard_kpi(vars[0]) {
        return Ok(kpi.clone());
    }
    storage::get_local_kpi(db, istat, vars[0])
        .await?
        .ok_or_else(|| ApiError::not_found(field, kpi))
}

impl ImprovementApi {
    /// The handlers over a migrated database (see [`crate::migrations`]) for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self::with_clock(db, served, Clock::system())
    }

    /// The handlers, reading the time from `clock`.
    pub fn with_clock(db: Database, served: Served, clock: Clock) -> Self {
        Self { db, served, clock }
    }

    #[tracing::instrument(name = "CreateObjective", skip_all, fields(comune = field::Empty, objective = field::Empty))]
    async fn create_objective_inner(
        &self,
        request: Request<pb::CreateObjectiveRequest>,
    ) -> Result<pb::Objective, ApiError> {
        let actor = principal::require(&request).map(|p| p.sub.clone());
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let actor = actor?;
        let given = req
            .objective
            .as_ref()
            .ok_or_else(|| ApiError::required("objective"))?;
        let kpi = if given.kpi.is_empty() {
            None
        } else {
            Some(referenced_kpi(&self.db, &istat, &given.kpi, "objective.kpi").await?)
        };
        let due = date_from_pb(given.due_date.as_ref(), "objective.due_date")?;
        let objective = Objective::new(
            &given.title,
            kpi.as_ref(),
            &given.measure,
            given.target_value,
            &given.owner_office,
            due,
        )?;

        let asked = pb::CreateObjectiveRequest {
            parent: req.parent.clone(),
            objective: Some(pb::Objective {
                title: given.title.clone(),
                kpi: given.kpi.clone(),
                measure: given.measure.clone(),
                target_value: given.target_value,
                owner_office: given.owner_office.clone(),
                due_date: given.due_date,
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let fingerprint = idempotency::fingerprint(&asked);
        let scope = format!("quality/{}/CreateObjective", istat.resource_name());
        let (db, istat, objective, actor) = (&self.db, &istat, &objective, &actor);
        let now = self.clock.now();
        idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let objective_id = uuid::Uuid::now_v7().simple().to_string();
                Span::current().record("objective", objective_id.as_str());
                let mut tx = db.begin_write().await?;
                store::insert_objective(&mut tx, istat, &objective_id, objective, actor, now)
                    .await?;
                let stored = store::get_objective(&mut tx, istat, &objective_id)
                    .await?
                    .ok_or_else(|| ApiError::internal(&"an objective vanished in its creation"))?;
                let response = objective_to_pb(istat, &stored, rome_date(now));
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok(response)
            },
        )
        .await
    }

    #[tracing::instrument(name = "GetObjective", skip_all, fields(comune = field::Empty, objective = field::Empty))]
    async fn get_objective_inner(
        &self,
        request: Request<pb::GetObjectiveRequest>,
    ) -> Result<pb::Objective, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, OBJECTIVE)?;
        Span::current()
            .record("comune", istat.as_str())
            .record("objective", vars[0]);
        self.served.check(&metadata, &istat, "name")?;
        let mut conn = self.db.pool().acquire().await?;
        let stored = store::get_objective(&mut conn, &istat, vars[0])
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        Ok(objective_to_pb(&istat, &stored, self.today()))
    }

    #[tracing::instrument(name = "ListObjectives", skip_all, fields(comune = field::Empty))]
    async fn list_objectives_inner(
        &self,
        request: Request<pb::ListObjectivesRequest>,
    ) -> Result<pb::ListObjectivesResponse, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let size = pagination::page_size(req.page_size)?;
        let scope = format!(
            "ListObjectives/{}/{}/{}",
            req.parent, req.open_only, req.overdue_only
        );
        let after: Option<String> = pagination::decode_token(&scope, &req.page_token)?;
        let today = self.today();
        let mut conn = self.db.pool().acquire().await?;
        let mut rows = store::list_objectives(
            &mut conn,
            &istat,
            after.as_deref(),
            req.open_only,
            req.overdue_only.then_some(today),
            size + 1,
        )
        .await?;
        let next_page_token =
            pagination::finish_page(&mut rows, size, &scope, |o| o.objective_id.clone());
        Ok(pb::ListObjectivesResponse {
            objectives: rows
                .iter()
                .map(|o| objective_to_pb(&istat, o, today))
                .collect(),
            next_page_token,
        })
    }

    #[tracing::instrument(name = "UpdateObjectiveStatus", skip_all, fields(comune = field::Empty, objective = field::Empty))]
    async fn update_objective_status_inner(
        &self,
        request: Request<pb::UpdateObjectiveStatusRequest>,
    ) -> Result<pb::Objective, ApiError> {
        let actor = principal::require(&request).map(|p| p.sub.clone());
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, OBJECTIVE)?;
        let objective_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("objective", objective_id);
        self.served.check(&metadata, &istat, "name")?;
        let actor = actor?;
        let to = objective_status_from_pb(req.status)?;
        let now = self.clock.now();
        let mut tx = self.db.begin_write().await?;
        let current = store::get_objective(&mut tx, &istat, objective_id)
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        current.status.check_transition(to)?;
        let moved = store::set_objective_status(
            &mut tx,
            &istat,
            objective_id,
            current.status,
            to,
            &actor,
            now,
        )
        .await?;
        if !moved {
            // Another change committed between the read and the update (PostgreSQL).
            return Err(ApiError::failed_precondition(
                "INVALID_STATUS_TRANSITION",
                "the objective changed status meanwhile; read it again",
            )
            .with_field("status"));
        }
        let stored = store::get_objective(&mut tx, &istat, objective_id)
            .await?
            .ok_or_else(|| ApiError::internal(&"an objective vanished in its own transaction"))?;
        tx.commit().await?;
        Ok(objective_to_pb(&istat, &stored, rome_date(now)))
    }

    #[tracing::instrument(name = "CreateNonconformity", skip_all, fields(comune = field::Empty, nonconformity = field::Empty))]
    async fn create_nonconformity_inner(
        &self,
        request: Request<pb::CreateNonconformityRequest>,
    ) -> Result<pb::Nonconformity, ApiError> {
        let actor = principal::require(&request).map(|p| p.sub.clone());
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let actor = actor?;
        let given = req
            .nonconformity
            .as_ref()
            .ok_or_else(|| ApiError::required("nonconformity"))?;
        let detected = date_from_pb(
            given.detection_date.as_ref(),
            "nonconformity.detection_date",
        )?;
        let now = self.clock.now();
        let nc = Nonconformity::new(
            &given.description,
            source_from_pb(given.source)?,
            detected,
            &given.root_cause,
            rome_date(now),
        )?;

        let asked = pb::CreateNonconformityRequest {
            parent: req.parent.clone(),
            nonconformity: Some(pb::Nonconformity {
                description: given.description.clone(),
                source: given.source,
                detection_date: given.detection_date,
                root_cause: given.root_cause.clone(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let fingerprint = idempotency::fingerprint(&asked);
        let scope = format!("quality/{}/CreateNonconformity", istat.resource_name());
        let (db, istat, nc, actor) = (&self.db, &istat, &nc, &actor);
        idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let nonconformity_id = uuid::Uuid::now_v7().simple().to_string();
                Span::current().record("nonconformity", nonconformity_id.as_str());
                let mut tx = db.begin_write().await?;
                store::insert_nonconformity(&mut tx, istat, &nonconformity_id, nc, actor, now)
                    .await?;
                let stored = store::get_nonconformity(&mut tx, istat, &nonconformity_id)
                    .await?
                    .ok_or_else(|| {
                        ApiError::internal(&"a nonconformity vanished in its creation")
                    })?;
                let response = nonconformity_to_pb(istat, &stored, rome_date(now));
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok(response)
            },
        )
        .await
    }

    #[tracing::instrument(name = "GetNonconformity", skip_all, fields(comune = field::Empty, nonconformity = field::Empty))]
    async fn get_nonconformity_inner(
        &self,
        request: Request<pb::GetNonconformityRequest>,
    ) -> Result<pb::Nonconformity, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, NONCONFORMITY)?;
        Span::current()
            .record("comune", istat.as_str())
            .record("nonconformity", vars[0]);
        self.served.check(&metadata, &istat, "name")?;
        let mut conn = self.db.pool().acquire().await?;
        let stored = store::get_nonconformity(&mut conn, &istat, vars[0])
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        Ok(nonconformity_to_pb(&istat, &stored, self.today()))
    }

    #[tracing::instrument(name = "ListNonconformities", skip_all, fields(comune = field::Empty))]
    async fn list_nonconformities_inner(
        &self,
        request: Request<pb::ListNonconformitiesRequest>,
    ) -> Result<pb::ListNonconformitiesResponse, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let size = pagination::page_size(req.page_size)?;
        let scope = format!("ListNonconformities/{}/{}", req.parent, req.open_only);
        let after: Option<String> = pagination::decode_token(&scope, &req.page_token)?;
        let mut conn = self.db.pool().acquire().await?;
        let mut rows = store::list_nonconformities(
            &mut conn,
            &istat,
            after.as_deref(),
            req.open_only,
            size + 1,
        )
        .await?;
        let next_page_token =
            pagination::finish_page(&mut rows, size, &scope, |n| n.nonconformity_id.clone());
        let today = self.today();
        Ok(pb::ListNonconformitiesResponse {
            nonconformities: rows
                .iter()
                .map(|n| nonconformity_to_pb(&istat, n, today))
                .collect(),
            next_page_token,
        })
    }

    #[tracing::instrument(name = "SetRootCause", skip_all, fields(comune = field::Empty, nonconformity = field::Empty))]
    async fn set_root_cause_inner(
        &self,
        request: Request<pb::SetRootCauseRequest>,
    ) -> Result<pb::Nonconformity, ApiError> {
        let actor = principal::require(&request).map(|p| p.sub.clone());
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, NONCONFORMITY)?;
        let id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("nonconformity", id);
        self.served.check(&metadata, &istat, "name")?;
        let actor = actor?;
        let root_cause = check_root_cause("root_cause", &req.root_cause, 1)?;
        let now = self.clock.now();
        let mut tx = self.db.begin_write().await?;
        let current = store::lock_nonconformity(&mut tx, &istat, id)
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        if current.close_time.is_some() {
            return Err(ImprovementError::Closed.into());
        }
        store::set_root_cause(&mut tx, &istat, id, &root_cause, &actor, now).await?;
        let stored = store::get_nonconformity(&mut tx, &istat, id)
            .await?
            .ok_or_else(|| ApiError::internal(&"a nonconformity vanished in its transaction"))?;
        tx.commit().await?;
        Ok(nonconformity_to_pb(&istat, &stored, rome_date(now)))
    }

    #[tracing::instrument(name = "CreateCorrectiveAction", skip_all, fields(comune = field::Empty, nonconformity = field::Empty))]
    async fn create_action_inner(
        &self,
        request: Request<pb::CreateCorrectiveActionRequest>,
    ) -> Result<pb::CorrectiveAction, ApiError> {
        let actor = principal::require(&request).map(|p| p.sub.clone());
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("parent", &req.parent, NONCONFORMITY)?;
        let nc_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("nonconformity", nc_id);
        self.served.check(&metadata, &istat, "parent")?;
        let actor = actor?;
        let given = req
            .corrective_action
            .as_ref()
            .ok_or_else(|| ApiError::required("corrective_action"))?;
        let due = date_from_pb(given.due_date.as_ref(), "corrective_action.due_date")?;
        let action = CorrectiveAction::new(&given.action, &given.owner_office, due)?;

        let asked = pb::CreateCorrectiveActionRequest {
            parent: req.parent.clone(),
            corrective_action: Some(pb::CorrectiveAction {
                action: given.action.clone(),
                owner_office: given.owner_office.clone(),
                due_date: given.due_date,
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let fingerprint = idempotency::fingerprint(&asked);
        let scope = format!("quality/{}/CreateCorrectiveAction", istat.resource_name());
        let (db, istat, action, actor, parent) = (&self.db, &istat, &action, &actor, &req.parent);
        let now = self.clock.now();
        idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let mut tx = db.begin_write().await?;
                let nc = store::lock_nonconformity(&mut tx, istat, nc_id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("parent", parent))?;
                if nc.close_time.is_some() {
                    return Err(ApiError::from(ImprovementError::Closed).with_field("parent"));
                }
                let action_id = uuid::Uuid::now_v7().simple().to_string();
                store::insert_action(&mut tx, istat, nc_id, &action_id, action, actor, now).await?;
                let stored = StoredAction {
                    nonconformity_id: nc_id.to_owned(),
                    action_id,
                    action: action.clone(),
                    check: None,
                    create_time: now,
                };
                let response = action_to_pb(istat, &stored, rome_date(now));
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok(response)
            },
        )
        .await
    }

    #[tracing::instrument(name = "ListCorrectiveActions", skip_all, fields(comune = field::Empty))]
    async fn list_actions_inner(
        &self,
        request: Request<pb::ListCorrectiveActionsRequest>,
    ) -> Result<pb::ListCorrectiveActionsResponse, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("parent", &req.parent, NONCONFORMITY)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let size = pagination::page_size(req.page_size)?;
        let scope = format!("ListCorrectiveActions/{}/{}", req.parent, req.overdue_only);
        let after: Option<(String, String)> = pagination::decode_token(&scope, &req.page_token)?;
        let mut conn = self.db.pool().acquire().await?;
        let of = match vars[0] {
            "-" => None,
            id => {
                store::get_nonconformity(&mut conn, &istat, id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("parent", &req.parent))?;
                Some(id)
            }
        };
        let today = self.today();
        let mut rows = store::list_actions(
            &mut conn,
            &istat,
            of,
            after,
            req.overdue_only.then_some(today),
            size + 1,
        )
        .await?;
        let next_page_token = pagination::finish_page(&mut rows, size, &scope, |a| {
            (a.nonconformity_id.clone(), a.action_id.clone())
        });
        Ok(pb::ListCorrectiveActionsResponse {
            corrective_actions: rows
                .iter()
                .map(|a| action_to_pb(&istat, a, today))
                .collect(),
            next_page_token,
        })
    }

    #[tracing::instrument(name = "CheckCorrectiveAction", skip_all, fields(comune = field::Empty, nonconformity = field::Empty))]
    async fn check_action_inner(
        &self,
        request: Request<pb::CheckCorrectiveActionRequest>,
    ) -> Result<pb::CorrectiveAction, ApiError> {
        let actor = principal::require(&request).map(|p| p.sub.clone());
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, ACTION)?;
        let (nc_id, action_id) = (vars[0], vars[1]);
        Span::current()
            .record("comune", istat.as_str())
            .record("nonconformity", nc_id);
        self.served.check(&metadata, &istat, "name")?;
        let actor = actor?;
        let date = date_from_pb(req.check_date.as_ref(), "check_date")?;
        let result = effectiveness_from_pb(req.result)?;
        let now = self.clock.now();
        let today = rome_date(now);
        let mut tx = self.db.begin_write().await?;
        let nc = store::lock_nonconformity(&mut tx, &istat, nc_id)
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        if nc.close_time.is_some() {
            return Err(ImprovementError::Closed.into());
        }
        let mut action = nc
            .actions
            .into_iter()
            .find(|a| a.action_id == action_id)
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        let check = Check::new(date, result, nc.nonconformity.detection_date, today)?;
        store::check_action(&mut tx, &istat, nc_id, action_id, check, &actor, now).await?;
        tx.commit().await?;
        action.check = Some(check);
        Ok(action_to_pb(&istat, &action, today))
    }

    #[tracing::instrument(name = "CloseNonconformity", skip_all, fields(comune = field::Empty, nonconformity = field::Empty))]
    async fn close_inner(
        &self,
        request: Request<pb::CloseNonconformityRequest>,
    ) -> Result<pb::Nonconformity, ApiError> {
        let actor = principal::require(&request).map(|p| p.sub.clone());
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, NONCONFORMITY)?;
        let id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("nonconformity", id);
        self.served.check(&metadata, &istat, "name")?;
        let actor = actor?;
        let now = self.clock.now();
        let mut tx = self.db.begin_write().await?;
        let current = store::lock_nonconformity(&mut tx, &istat, id)
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        let checks: Vec<Option<Check>> = current.actions.iter().map(|a| a.check).collect();
        check_closable(
            current.close_time.is_some(),
            &current.nonconformity.root_cause,
            &checks,
        )?;
        store::close_nonconformity(&mut tx, &istat, id, &actor, now).await?;
        let stored = store::get_nonconformity(&mut tx, &istat, id)
            .await?
            .ok_or_else(|| ApiError::internal(&"a nonconformity vanished in its transaction"))?;
        tx.commit().await?;
        Ok(nonconformity_to_pb(&istat, &stored, rome_date(now)))
    }

    fn today(&self) -> chrono::NaiveDate {
        rome_date(self.clock.now())
    }
}

#[tonic::async_trait]
impl ImprovementService for ImprovementApi {
    async fn create_objective(
        &self,
        request: Request<pb::CreateObjectiveRequest>,
    ) -> Result<Response<pb::Objective>, tonic::Status> {
        Ok(Response::new(self.create_objective_inner(request).await?))
    }

    async fn get_objective(
        &self,
        request: Request<pb::GetObjectiveRequest>,
    ) -> Result<Response<pb::Objective>, tonic::Status> {
        Ok(Response::new(self.get_objective_inner(request).await?))
    }

    async fn list_objectives(
        &self,
        request: Request<pb::ListObjectivesRequest>,
    ) -> Result<Response<pb::ListObjectivesResponse>, tonic::Status> {
        Ok(Response::new(self.list_objectives_inner(request).await?))
    }

    async fn update_objective_status(
        &self,
        request: Request<pb::UpdateObjectiveStatusRequest>,
    ) -> Result<Response<pb::Objective>, tonic::Status> {
        Ok(Response::new(
            self.update_objective_status_inner(request).await?,
        ))
    }

    async fn create_nonconformity(
        &self,
        request: Request<pb::CreateNonconformityRequest>,
    ) -> Result<Response<pb::Nonconformity>, tonic::Status> {
        Ok(Response::new(
            self.create_nonconformity_inner(request).await?,
        ))
    }

    async fn get_nonconformity(
        &self,
        request: Request<pb::GetNonconformityRequest>,
    ) -> Result<Response<pb::Nonconformity>, tonic::Status> {
        Ok(Response::new(self.get_nonconformity_inner(request).await?))
    }

    async fn list_nonconformities(
        &self,
        request: Request<pb::ListNonconformitiesRequest>,
    ) -> Result<Response<pb::ListNonconformitiesResponse>, tonic::Status> {
        Ok(Response::new(
            self.list_nonconformities_inner(request).await?,
        ))
    }

    async fn set_root_cause(
        &self,
        request: Request<pb::SetRootCauseRequest>,
    ) -> Result<Response<pb::Nonconformity>, tonic::Status> {
        Ok(Response::new(self.set_root_cause_inner(request).await?))
    }

    async fn create_corrective_action(
        &self,
        request: Request<pb::CreateCorrectiveActionRequest>,
    ) -> Result<Response<pb::CorrectiveAction>, tonic::Status> {
        Ok(Response::new(self.create_action_inner(request).await?))
    }

    async fn list_corrective_actions(
        &self,
        request: Request<pb::ListCorrectiveActionsRequest>,
    ) -> Result<Response<pb::ListCorrectiveActionsResponse>, tonic::Status> {
        Ok(Response::new(self.list_actions_inner(request).await?))
    }

    async fn check_corrective_action(
        &self,
        request: Request<pb::CheckCorrectiveActionRequest>,
    ) -> Result<Response<pb::CorrectiveAction>, tonic::Status> {
        Ok(Response::new(self.check_action_inner(request).await?))
    }

    async fn close_nonconformity(
        &self,
        request: Request<pb::CloseNonconformityRequest>,
    ) -> Result<Response<pb::Nonconformity>, tonic::Status> {
        Ok(Response::new(self.close_inner(request).await?))
    }
}

/// The wire status asked for: required, and a known one.
fn objective_status_from_pb(code: i32) -> Result<ObjectiveStatus, ApiError> {
    use pb::ObjectiveStatus as S;
    match S::try_from(code) {
        Ok(S::Unspecified) => Err(ApiError::required("status")),
        Ok(S::Planned) => Ok(ObjectiveStatus::Planned),
        Ok(S::InProgress) => Ok(ObjectiveStatus::InProgress),
        Ok(S::Achieved) => Ok(ObjectiveStatus::Achieved),
        Ok(S::NotAchieved) => Ok(ObjectiveStatus::NotAchieved),
        Ok(S::Cancelled) => Ok(ObjectiveStatus::Cancelled),
        Err(_) => Err(ApiError::invalid(
            "status",
            "INVALID_STATUS",
            format!("{code} is not an objective status"),
        )),
    }
}

fn objective_status_to_pb(status: ObjectiveStatus) -> i32 {
    use pb::ObjectiveStatus as S;
    match status {
        ObjectiveStatus::Planned => S::Planned,
        ObjectiveStatus::InProgress => S::InProgress,
        ObjectiveStatus::Achieved => S::Achieved,
        ObjectiveStatus::NotAchieved => S::NotAchieved,
        ObjectiveStatus::Cancelled => S::Cancelled,
    }
    .into()
}

/// The wire source: `None` when not given, an error when unknown.
fn source_from_pb(code: i32) -> Result<Option<NonconformitySource>, ApiError> {
    use pb::NonconformitySource as S;
    match S::try_from(code) {
        Ok(S::Unspecified) => Ok(None),
        Ok(S::Audit) => Ok(Some(NonconformitySource::Audit)),
        Ok(S::Complaint) => Ok(Some(NonconformitySource::Complaint)),
        Ok(S::KpiOffTarget) => Ok(Some(NonconformitySource::KpiOffTarget)),
        Ok(S::Other) => Ok(Some(NonconformitySource::Other)),
        Err(_) => Err(ApiError::invalid(
            "nonconformity.source",
            "INVALID_SOURCE",
            format!("{code} is not a nonconformity source"),
        )),
    }
}

fn source_to_pb(source: NonconformitySource) -> i32 {
    use pb::NonconformitySource as S;
    match source {
        NonconformitySource::Audit => S::Audit,
        NonconformitySource::Complaint => S::Complaint,
        NonconformitySource::KpiOffTarget => S::KpiOffTarget,
        NonconformitySource::Other => S::Other,
    }
    .into()
}

/// The wire result of a check: required, and a known one.
fn effectiveness_from_pb(code: i32) -> Result<Effectiveness, ApiError> {
    use pb::EffectivenessResult as R;
    match R::try_from(code) {
        Ok(R::Unspecified) => Err(ApiError::required("result")),
        Ok(R::Effective) => Ok(Effectiveness::Effective),
        Ok(R::NotEffective) => Ok(Effectiveness::NotEffective),
        Err(_) => Err(ApiError::invalid(
            "result",
            "INVALID_RESULT",
            format!("{code} is not an effectiveness result"),
        )),
    }
}

fn effectiveness_to_pb(result: Effectiveness) -> i32 {
    use pb::EffectivenessResult as R;
    match result {
        Effectiveness::Effective => R::Effective,
        Effectiveness::NotEffective => R::NotEffective,
    }
    .into()
}

fn history_to_pb(history: &[Change]) -> Vec<pb::ImprovementChange> {
    history
        .iter()
        .map(|c| pb::ImprovementChange {
            time: Some(timestamp(c.time)),
            actor: c.actor.clone(),
            change: c.change.clone(),
        })
        .collect()
}

/// The wire form of a stored objective of `istat`, overdue as of `today`.
pub(crate) fn objective_to_pb(
    istat: &Istat,
    o: &StoredObjective,
    today: chrono::NaiveDate,
) -> pb::Objective {
    pb::Objective {
        name: format!("{}/objectives/{}", istat.resource_name(), o.objective_id),
        objective_id: o.objective_id.clone(),
        title: o.objective.title.clone(),
        kpi: o
            .objective
            .kpi_id
            .as_ref()
            .map(|id| format!("{}/kpis/{id}", istat.resource_name()))
            .unwrap_or_default(),
        measure: o.objective.measure.clone(),
        target_value: o.objective.target_value,
        owner_office: o.objective.owner_office.clone(),
        due_date: Some(date_to_pb(o.objective.due_date)),
        status: objective_status_to_pb(o.status),
        overdue: o.status.is_open() && rules::is_overdue(o.objective.due_date, today),
        create_time: Some(timestamp(o.create_time)),
        history: history_to_pb(&o.history),
    }
}

/// The wire form of a stored corrective action of `istat`, overdue as of `today`.
pub(crate) fn action_to_pb(
    istat: &Istat,
    a: &StoredAction,
    today: chrono::NaiveDate,
) -> pb::CorrectiveAction {
    pb::CorrectiveAction {
        name: format!(
            "{}/nonconformities/{}/correctiveActions/{}",
            istat.resource_name(),
            a.nonconformity_id,
            a.action_id
        ),
        action_id: a.action_id.clone(),
        action: a.action.action.clone(),
        owner_office: a.action.owner_office.clone(),
        due_date: Some(date_to_pb(a.action.due_date)),
        check_date: a.check.map(|c| date_to_pb(c.date)),
        result: a.check.map(|c| effectiveness_to_pb(c.result)).unwrap_or(0),
        overdue: action_overdue(a.action.due_date, a.check, today),
        create_time: Some(timestamp(a.create_time)),
    }
}

/// The wire form of a stored nonconformity of `istat`, its actions overdue as of `today`.
pub(crate) fn nonconformity_to_pb(
    istat: &Istat,
    n: &StoredNonconformity,
    today: chrono::NaiveDate,
) -> pb::Nonconformity {
    pb::Nonconformity {
        name: format!(
            "{}/nonconformities/{}",
            istat.resource_name(),
            n.nonconformity_id
        ),
        nonconformity_id: n.nonconformity_id.clone(),
        description: n.nonconformity.description.clone(),
        source: source_to_pb(n.nonconformity.source),
        detection_date: Some(date_to_pb(n.nonconformity.detection_date)),
        root_cause: n.nonconformity.root_cause.clone(),
        closed: n.close_time.is_some(),
        create_time: Some(timestamp(n.create_time)),
        close_time: n.close_time.map(timestamp),
        corrective_actions: n
            .actions
            .iter()
            .map(|a| action_to_pb(istat, a, today))
            .collect(),
        history: history_to_pb(&n.history),
    }
}
