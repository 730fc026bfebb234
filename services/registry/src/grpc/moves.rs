//! The gRPC handlers of `unione.registry.v1.MoveService` (DOMAIN.md "Registry", Residents:
//! moves between members, two-sided), and the dispatcher that delivers moves.
//!
//! At the origin, CreateMove writes the EMIGRATION (after ANPR accepts it, through the
//! [`AnprConnector`]) and the move's outbox row in one `begin_write` transaction. The
//! [`MoveDispatcher`] then calls DeliverMove at the destination through the gateway, under the
//! node's own certificate, until the destination acknowledges, with backoff
//! ([`crate::domain::moves::retry_delay`]). At the destination, DeliverMove registers the
//! IMMIGRATION (through its ANPR connector) with the address and household given, in one
//! transaction with its own move row, so that a redelivery finds the row and answers the same.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Response};
use tracing::{Span, field};
use unione_kit::names::{parse_name, routing_value};
use unione_kit::storage::{now_micros, timestamp};
use unione_kit::{ApiError, Database, Istat, Served, idempotency, principal};
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::move_service_client::MoveServiceClient;
use unione_proto::registry::v1::move_service_server::MoveService;

use super::household::{civil, operator_of, person_state, relationship_from_pb, resident_in};
use super::{date_to_pb, draft_from_pb, resident_to_pb, today_in_italy};
use crate::domain::anpr::{AnprChange, AnprChangeKind, AnprConnector, NoAnpr};
use crate::domain::household::{
    EventKind, HouseholdError, Membership, Relationship, ResidenceEvent, check_person,
};
use crate::domain::moves::{self, HouseholdPlan, MoveDraft, MoveState};
use crate::domain::{Address, RegistrationReason};
use crate::storage::household as store;
use crate::storage::moves::{self as move_store, Direction, StoredMove};
use crate::storage::{self, Inserted, new_id};

/// `comuni/{istat}`.
const COMUNE: &[&str] = &["comuni", "*"];
/// `comuni/{istat}/moves/{id}`.
const MOVE: &[&str] = &["comuni", "*", "moves", "*"];
/// `comuni/{istat}/households/{id}`.
const HOUSEHOLD: &[&str] = &["comuni", "*", "households", "*"];
/// The prefix of the subject the gateway gives a node calling with its own certificate.
const NODE_SUBJECT: &str = "node:";

/// The move service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct MoveApi {
    db: Database,
    served: Served,
    anpr: Arc<dyn AnprConnector>,
    /// Wakes this node's dispatcher; `None` when the node has none (no gateway configured):
    /// then it can receive moves but not start them.
    dispatcher: Option<Arc<Notify>>,
}

/// The read of personal data this handler logs.
const GET_MOVE: &str = "unione.registry.v1.MoveService/GetMove";

impl MoveApi {
    /// The handlers over a database migrated with [`crate::migrations`], for `served`, with
    /// [`NoAnpr`], and the wake-up of this node's [`MoveDispatcher`] if it runs one.
    pub fn new(db: Database, served: Served, dispatcher: Option<Arc<Notify>>) -> Self {
        Self::with_anpr(db, served, dispatcher, Arc::new(NoAnpr))
    }

    /// The handlers with an ANPR connector, which both sides of every move go through first.
    pub fn with_anpr(
        db: Database,
        served: Served,
        dispatcher: Option<Arc<Notify>>,
        anpr: Arc<dyn AnprConnector>,
    ) -> Self {
        Self {
            db,
            served,
            anpr,
            dispatcher,
        }
    }

    async fn notify(
        &self,
        comune: &Istat,
        codice_fiscale: &str,
        effective_date: chrono::NaiveDate,
        kind: AnprChangeKind,
    ) -> Result<String, HouseholdError> {
        let change = AnprChange {
            comune: comune.as_str().to_owned(),
            codice_fiscale: codice_fiscale.to_owned(),
            effective_date,
            kind,
        };
        Ok(self.anpr.notify(&change).await?.reference)
    }

    #[tracing::instrument(name = "CreateMove", skip_all, fields(comune = field::Empty, move_id = field::Empty))]
    async fn create_move_inner(
        &self,
        request: Request<pb::CreateMoveRequest>,
    ) -> Result<pb::Move, ApiError> {
        let operator = principal::require(&request).cloned();
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let operator = operator_of(&operator?, &istat)?;
        let Some(wake) = self.dispatcher.clone() else {
            return Err(ApiError::failed_precondition(
                "MOVES_NOT_CONFIGURED",
                "this node has no gateway to deliver moves through (operational_data.gateway)",
            ));
        };
        let given = req
            .r#move
            .as_ref()
            .ok_or_else(|| ApiError::required("move"))?;
        let resident_id = resident_in("move.origin_resident", &given.origin_resident, &istat)?;
        let mv = move_draft(&istat, given, "move.destination")?.validate(today_in_italy())?;

        let mut asked = req.clone();
        asked.request_id.clear();
        if let Some(m) = asked.r#move.as_mut() {
            *m = pb::Move {
                origin_resident: m.origin_resident.clone(),
                destination: m.destination.clone(),
                effective_date: m.effective_date,
                address: m.address.clone(),
                household: m.household.clone(),
                relationship: m.relationship,
                ..pb::Move::default()
            };
        }
        let fingerprint = idempotency::fingerprint(&asked);
        let scope = format!("registry/{}/CreateMove", istat.resource_name());
        let (db, istat, mv, resident_id, operator, resident_name) = (
            &self.db,
            &istat,
            &mv,
            &resident_id,
            &operator,
            &given.origin_resident,
        );
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
                    .ok_or_else(|| ApiError::not_found("move.origin_resident", resident_name))?;
                let (person, _) = person_state(&mut tx, istat, resident_id).await?;
                check_person(&person, mv.effective_date, "move.effective_date")?;
                let reference = self
                    .notify(
                        istat,
                        &resident.resident.codice_fiscale,
                        mv.effective_date,
                        AnprChangeKind::Emigration {
                            destination: mv.destination.clone(),
                        },
                    )
                    .await?;
                let event = ResidenceEvent {
                    kind: EventKind::Emigration,
                    effective_date: mv.effective_date,
                    address: Address::default(),
                    destination: mv.destination.clone(),
                };
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
                let id = new_id();
                store::set_event_move(&mut tx, istat, &stored.id, &id).await?;
                let (household_id, relationship) = match &mv.household {
                    HouseholdPlan::New => (String::new(), None),
                    HouseholdPlan::Join {
                        household,
                        relationship,
                    } => (household.clone(), Some(*relationship)),
                };
                let row = StoredMove {
                    id,
                    direction: Direction::Out,
                    origin: istat.as_str().to_owned(),
                    destination: mv.destination.clone(),
                    resident_id: resident_id.clone(),
                    origin_resident_id: resident_id.clone(),
                    effective_date: mv.effective_date,
                    address: mv.address.clone(),
                    household_id,
                    relationship,
                    state: MoveState::Pending,
                    destination_resident_id: String::new(),
                    attempts: 0,
                    next_attempt_time: now,
                    last_error: String::new(),
                    recorded_by: operator.clone(),
                    create_time: now,
                    complete_time: None,
                };
                move_store::insert_move(&mut tx, istat, &row).await?;
                let response = move_to_pb(istat, &row);
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(response)
            },
        )
        .await?;
        wake.notify_one();
        Span::current().record("move_id", last_segment(&created.name));
        Ok(created)
    }

    #[tracing::instrument(name = "GetMove", skip_all, fields(comune = field::Empty, move_id = field::Empty))]
    async fn get_move_inner(
        &self,
        request: Request<pb::GetMoveRequest>,
    ) -> Result<pb::Move, ApiError> {
        principal::refuse_citizen(principal::principal(&request))?;
        let reader = super::access::Reader::of(&request)?;
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, MOVE)?;
        Span::current()
            .record("comune", istat.as_str())
            .record("move_id", vars[0]);
        self.served.check(&metadata, &istat, "name")?;
        let mut conn = self.db.pool().acquire().await?;
        let stored = move_store::get_move(&mut conn, &istat, vars[0])
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        drop(conn);
        // A move carries the person's names and addresses: its reads are logged too.
        let moved = move_to_pb(&istat, &stored);
        super::access::record_reads(&self.db, &reader, &istat, GET_MOVE, [moved.name.as_str()])
            .await?;
        Ok(moved)
    }

    #[tracing::instrument(name = "DeliverMove", skip_all, fields(comune = field::Empty, move_id = field::Empty))]
    async fn deliver_move_inner(
        &self,
        request: Request<pb::DeliverMoveRequest>,
    ) -> Result<pb::DeliverMoveResponse, ApiError> {
        let sender = principal::require(&request).cloned();
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let sender = sender?;
        // Only a node, through the gateway under its own certificate, delivers moves.
        if !sender.sub.starts_with(NODE_SUBJECT) {
            return Err(ApiError::new(
                Code::PermissionDenied,
                "PERMISSION_DENIED",
                "only a node of the federation delivers moves",
            ));
        }
        let given = req
            .r#move
            .as_ref()
            .ok_or_else(|| ApiError::required("move"))?;
        let (origin, vars) = parse_name("move.name", &given.name, MOVE)?;
        let id = vars[0].to_owned();
        Span::current().record("move_id", id.as_str());
        if !moves::plausible_sender(&sender.comuni, origin.as_str()) {
            return Err(ApiError::new(
                Code::PermissionDenied,
                "SENDER_NOT_ORIGIN",
                "the calling node does not serve the move's origin",
            ));
        }
        if given.destination != istat.resource_name() {
            return Err(ApiError::invalid(
                "move.destination",
                "DESTINATION_MISMATCH",
                "the move's destination must be the comune in `parent`",
            ));
        }
        let origin_resident = resident_in("move.origin_resident", &given.origin_resident, &origin)?;

        let mut conn = self.db.pool().acquire().await?;
        if let Some(done) = move_store::get_move(&mut conn, &istat, &id).await? {
            return delivered(&istat, &origin, &origin_resident, &done);
        }
        drop(conn);

        let today = today_in_italy();
        let mv = move_draft(&origin, given, "move.destination")?.validate(today)?;
        let person = req
            .resident
            .as_ref()
            .ok_or_else(|| ApiError::required("resident"))?;
        let mut draft = draft_from_pb(person)?;
        draft.address = Some(mv.address.clone());
        draft.registration_date = civil(Some(&date_to_pb(mv.effective_date)));
        draft.registration_reason = Some(RegistrationReason::ImmigrationFromComune);
        let resident = draft.validate(today)?;

        let mut tx = self.db.begin_write().await?;
        let now = now_micros();
        if let Some(done) = move_store::get_move(&mut tx, &istat, &id).await? {
            return delivered(&istat, &origin, &origin_resident, &done);
        }
        if let HouseholdPlan::Join { household, .. } = &mv.household {
            let stored = store::get_household(&mut tx, &istat, household)
                .await?
                .ok_or_else(|| ApiError::not_found("move.household", &given.household))?;
            if mv.effective_date < stored.start_date {
                return Err(HouseholdError::BeforeLatestChange {
                    field: "move.effective_date",
                    latest: stored.start_date,
                }
                .into());
            }
        }
        let reference = self
            .notify(
                &istat,
                &resident.codice_fiscale,
                mv.effective_date,
                AnprChangeKind::Immigration {
                    origin: origin.as_str().to_owned(),
                    address: mv.address.clone(),
                },
            )
            .await?;
        let stored = match storage::insert_resident(&mut tx, &istat, &resident, now).await? {
            Inserted::Created(stored) => stored,
            Inserted::AlreadyResident => {
                return Err(crate::domain::RegistryError::AlreadyRegistered.into());
            }
        };
        // The registration is the resident's first event, under the resident's id.
        store::set_event_move(&mut tx, &istat, &stored.id, &id).await?;
        if !reference.is_empty() {
            sqlx::query(
                "UPDATE registry_residence_events SET anpr_reference = $3 \
                 WHERE comune = $1 AND id = $2",
            )
            .bind(istat.as_str())
            .bind(stored.id.as_str())
            .bind(reference.as_str())
            .execute(&mut *tx)
            .await?;
        }
        let recorded_by = sender.sub.clone();
        let (household_id, relationship, kind) = match &mv.household {
            HouseholdPlan::New => {
                let household = new_id();
                store::insert_household(
                    &mut tx,
                    &istat,
                    &household,
                    mv.effective_date,
                    &recorded_by,
                    now,
                )
                .await?;
                (
                    household.clone(),
                    Relationship::Head,
                    AnprChangeKind::HouseholdFormed { household },
                )
            }
            HouseholdPlan::Join {
                household,
                relationship,
            } => (
                household.clone(),
                *relationship,
                AnprChangeKind::HouseholdJoined {
                    household: household.clone(),
                    relationship: *relationship,
                },
            ),
        };
        self.notify(&istat, &resident.codice_fiscale, mv.effective_date, kind)
            .await?;
        let member = Membership {
            household_id: household_id.clone(),
            resident_id: stored.id.clone(),
            relationship,
            start_date: mv.effective_date,
            end_date: None,
        };
        store::insert_membership(&mut tx, &istat, &member, &recorded_by, now).await?;
        let row = StoredMove {
            id,
            direction: Direction::In,
            origin: origin.as_str().to_owned(),
            destination: istat.as_str().to_owned(),
            resident_id: stored.id.clone(),
            origin_resident_id: origin_resident.clone(),
            effective_date: mv.effective_date,
            address: mv.address.clone(),
            household_id,
            relationship: (relationship != Relationship::Head).then_some(relationship),
            state: MoveState::Completed,
            destination_resident_id: stored.id.clone(),
            attempts: 0,
            next_attempt_time: now,
            last_error: String::new(),
            recorded_by,
            create_time: now,
            complete_time: Some(now),
        };
        move_store::insert_move(&mut tx, &istat, &row).await?;
        tx.commit().await?;
        delivered(&istat, &origin, &origin_resident, &row)
    }
}

#[tonic::async_trait]
impl MoveService for MoveApi {
    async fn create_move(
        &self,
        request: Request<pb::CreateMoveRequest>,
    ) -> Result<Response<pb::Move>, tonic::Status> {
        Ok(Response::new(self.create_move_inner(request).await?))
    }

    async fn get_move(
        &self,
        request: Request<pb::GetMoveRequest>,
    ) -> Result<Response<pb::Move>, tonic::Status> {
        Ok(Response::new(self.get_move_inner(request).await?))
    }

    async fn deliver_move(
        &self,
        request: Request<pb::DeliverMoveRequest>,
    ) -> Result<Response<pb::DeliverMoveResponse>, tonic::Status> {
        Ok(Response::new(self.deliver_move_inner(request).await?))
    }
}

/// The answer to a delivery already recorded as `done` (the same on every redelivery), or
/// ALREADY_EXISTS when the id names another move.
fn delivered(
    istat: &Istat,
    origin: &Istat,
    origin_resident: &str,
    done: &StoredMove,
) -> Result<pb::DeliverMoveResponse, ApiError> {
    if done.direction != Direction::In
        || done.origin != origin.as_str()
        || done.origin_resident_id != origin_resident
    {
        return Err(ApiError::new(
            Code::AlreadyExists,
            "MOVE_ID_REUSED",
            "another move has this id",
        )
        .with_field("move.name"));
    }
    Ok(pb::DeliverMoveResponse {
        r#move: move_name(istat, &done.id),
        resident: format!("{}/residents/{}", istat.resource_name(), done.resident_id),
    })
}

/// The wire move as a draft from `origin`; `destination_field` names the destination's field.
fn move_draft(
    origin: &Istat,
    given: &pb::Move,
    destination_field: &'static str,
) -> Result<MoveDraft, ApiError> {
    let destination = if given.destination.is_empty() {
        String::new()
    } else {
        let (d, _) = parse_name(destination_field, &given.destination, COMUNE)?;
        d.as_str().to_owned()
    };
    let household = if given.household.is_empty() {
        String::new()
    } else {
        let (of, vars) = parse_name("move.household", &given.household, HOUSEHOLD)?;
        if of.as_str() != destination {
            return Err(ApiError::invalid(
                "move.household",
                "COMUNE_MISMATCH",
                "move.household must be a household of the destination",
            ));
        }
        vars[0].to_owned()
    };
    let relationship = if given.relationship == 0 {
        None
    } else {
        Some(relationship_from_pb(
            given.relationship,
            "move.relationship",
        )?)
    };
    Ok(MoveDraft {
        origin: origin.as_str().to_owned(),
        destination,
        effective_date: civil(given.effective_date.as_ref()),
        address: given.address.as_ref().map(|a| Address {
            street: a.street.clone(),
            house_number: a.house_number.clone(),
            postal_code: a.postal_code.clone(),
            locality: a.locality.clone(),
        }),
        household,
        relationship,
    })
}

fn move_name(istat: &Istat, id: &str) -> String {
    format!("{}/moves/{id}", istat.resource_name())
}

fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or_default()
}

fn comune_name(istat: &str) -> String {
    format!("comuni/{istat}")
}

/// The wire form of one side of a move, stored in `istat`.
fn move_to_pb(istat: &Istat, m: &StoredMove) -> pb::Move {
    pb::Move {
        name: move_name(istat, &m.id),
        origin_resident: format!(
            "{}/residents/{}",
            comune_name(&m.origin),
            m.origin_resident_id
        ),
        destination: comune_name(&m.destination),
        effective_date: Some(date_to_pb(m.effective_date)),
        address: Some(super::household::address_to_pb(&m.address)),
        household: if m.household_id.is_empty() {
            String::new()
        } else {
            format!(
                "{}/households/{}",
                comune_name(&m.destination),
                m.household_id
            )
        },
        relationship: m
            .relationship
            .map_or(
                pb::Relationship::Unspecified,
                super::household::relationship_to_pb,
            )
            .into(),
        state: match m.state {
            MoveState::Pending => pb::MoveState::Pending,
            MoveState::Completed => pb::MoveState::Completed,
            MoveState::Failed => pb::MoveState::Failed,
        }
        .into(),
        destination_resident: if m.destination_resident_id.is_empty() {
            String::new()
        } else {
            format!(
                "{}/residents/{}",
                comune_name(&m.destination),
                m.destination_resident_id
            )
        },
        attempts: i32::try_from(m.attempts).unwrap_or(i32::MAX),
        last_error: m.last_error.clone(),
        create_time: Some(timestamp(m.create_time)),
        complete_time: m.complete_time.map(timestamp),
        origin: comune_name(&m.origin),
    }
}

/// Delivers this node's pending moves to their destinations through the gateway, under the
/// node's own certificate, until each is acknowledged (COMPLETED) or refused for good
/// (FAILED), retrying with [`moves::retry_delay`] from `retry_interval` in between.
#[derive(Debug, Clone)]
pub struct MoveDispatcher {
    db: Database,
    gateway: Channel,
    retry_interval: Duration,
    wake: Arc<Notify>,
    /// Told when a failed move restores a person's previous position at the origin.
    anpr: Arc<dyn AnprConnector>,
}

/// Moves delivered per round.
const BATCH: i64 = 32;
/// The bound on one delivery call.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(10);

impl MoveDispatcher {
    /// A dispatcher over the node's database, calling the gateway on `gateway` (a channel
    /// presenting the node's certificate). `wake` is shared with [`MoveApi::new`].
    pub fn new(
        db: Database,
        gateway: Channel,
        retry_interval: Duration,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            db,
            gateway,
            retry_interval,
            wake,
            anpr: Arc::new(NoAnpr),
        }
    }

    /// The same dispatcher telling `anpr` of the restorations it records (the one the
    /// comune's [`MoveApi`] uses).
    #[must_use]
    pub fn with_anpr(mut self, anpr: Arc<dyn AnprConnector>) -> Self {
        self.anpr = anpr;
        self
    }

    /// Delivers until `stop` resolves: every due move, then sleeps until the next is due, a
    /// new move is started, or 32 retry intervals pass.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let wait = match self.round().await {
                Ok(wait) => wait,
                Err(err) => {
                    tracing::warn!(error = %err, "move dispatcher round failed");
                    self.retry_interval
                }
            };
            tokio::select! {
                () = &mut stop => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Delivers every move due now; returns how long to wait for the next one.
    async fn round(&self) -> Result<Duration, sqlx::Error> {
        loop {
            let mut conn = self.db.pool().acquire().await?;
            let due = move_store::due_moves(&mut conn, now_micros(), BATCH).await?;
            drop(conn);
            let full = due.len() as i64 == BATCH;
            for m in due {
                self.deliver(&m).await?;
            }
            if !full {
                break;
            }
        }
        let mut conn = self.db.pool().acquire().await?;
        let idle = self.retry_interval.saturating_mul(32);
        Ok(match move_store::next_due(&mut conn).await? {
            Some(at) => {
                Duration::from_micros(u64::try_from(at - now_micros()).unwrap_or(0)).min(idle)
            }
            None => idle,
        })
    }

    /// One delivery attempt of `m` (an outgoing, pending move) and its outcome recorded.
    async fn deliver(&self, m: &StoredMove) -> Result<(), sqlx::Error> {
        let origin =
            Istat::parse(&m.origin).ok_or_else(|| sqlx::Error::Decode("bad origin".into()))?;
        let destination = Istat::parse(&m.destination)
            .ok_or_else(|| sqlx::Error::Decode("bad destination".into()))?;
        let mut conn = self.db.pool().acquire().await?;
        let person = storage::read_resident(&mut conn, &origin, &m.resident_id).await?;
        drop(conn);
        let Some(person) = person else {
            // Records are never deleted: only a damaged database gets here. The move is
            // marked, not retried for ever, and the other moves go on.
            let mut tx = self.db.begin_write().await?;
            let now = now_micros();
            move_store::record_attempt(
                &mut tx,
                &origin,
                &m.id,
                MoveState::Failed,
                "",
                now,
                "ORIGIN_RECORD_MISSING",
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(());
        };
        let mut request = Request::new(pb::DeliverMoveRequest {
            parent: destination.resource_name(),
            r#move: Some(move_to_pb(&origin, m)),
            resident: Some(resident_to_pb(&origin, &person)),
        });
        request.set_timeout(DELIVERY_DEADLINE);
        request.metadata_mut().insert(
            unione_kit::names::ROUTING_HEADER,
            MetadataValue::try_from(routing_value(&destination))
                .expect("invariant: a routing value is ASCII"),
        );
        let outcome = MoveServiceClient::new(self.gateway.clone())
            .deliver_move(request)
            .await;
        let now = now_micros();
        let attempts = u32::try_from(m.attempts + 1).unwrap_or(u32::MAX);
        let next = now
            + i64::try_from(moves::retry_delay(self.retry_interval, attempts).as_micros())
                .unwrap_or(i64::MAX / 2);
        let (state, resident, error) = match outcome {
            Ok(answer) => {
                let resident = last_segment(&answer.get_ref().resident).to_owned();
                tracing::info!(r#move = %m.id, "move delivered");
                (MoveState::Completed, resident, String::new())
            }
            Err(status) => {
                let (reason, _) = unione_kit::error::reason_and_field(&status);
                let error = format!("{:?} {reason}", status.code());
                let state = if permanent(status.code()) {
                    tracing::warn!(r#move = %m.id, %error, "move refused by the destination");
                    MoveState::Failed
                } else {
                    tracing::info!(r#move = %m.id, %error, attempts, "move delivery to retry");
                    MoveState::Pending
                };
                (state, String::new(), error)
            }
        };
        let mut tx = self.db.begin_write().await?;
        let (state, error) = if state == MoveState::Failed {
            // Refused for good: the emigration never took effect. The origin restores the
            // person's previous position in the same transaction that records the refusal,
            // so that they are never in neither comune; if ANPR does not take the
            // restoration now, the move stays pending and the next attempt tries again.
            let change = AnprChange {
                comune: origin.as_str().to_owned(),
                codice_fiscale: person.resident.codice_fiscale.clone(),
                effective_date: m.effective_date,
                kind: AnprChangeKind::Restoration {
                    destination: m.destination.clone(),
                },
            };
            match self.anpr.notify(&change).await {
                Ok(ack) => {
                    let reference = ack.reference;
                    storage::lock_resident(&mut tx, &origin, &m.resident_id, now).await?;
                    let event = ResidenceEvent {
                        kind: EventKind::Restoration,
                        effective_date: m.effective_date,
                        address: person.resident.address.clone(),
                        destination: String::new(),
                    };
                    let stored = store::insert_event(
                        &mut tx,
                        &origin,
                        &m.resident_id,
                        &event,
                        &reference,
                        RESTORER,
                        now,
                    )
                    .await?;
                    store::set_event_move(&mut tx, &origin, &stored.id, &m.id).await?;
                    tracing::warn!(r#move = %m.id, "previous position restored at the origin");
                    (MoveState::Failed, error)
                }
                Err(err) => (
                    MoveState::Pending,
                    format!("{error}; restoring the previous position: {err}"),
                ),
            }
        } else {
            (state, error)
        };
        move_store::record_attempt(&mut tx, &origin, &m.id, state, &resident, next, &error, now)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Who records the restoration of a person's previous position when a move fails.
pub const RESTORER: &str = "system:move-dispatcher";

/// True for a refusal that retrying cannot change (the destination's rules, a comune that is
/// no member); anything else (the destination or the gateway unreachable, overloaded, ANPR
/// unavailable) is retried.
fn permanent(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::OutOfRange
    )
}
