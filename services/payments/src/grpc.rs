//! The gRPC handlers of `unione.payments.v1.DebtPositionService`: decode the request, parse
//! resource names, check the comune against the routing header and this node's served comuni,
//! call the domain and storage, and map errors to `google.rpc.Status` with an `ErrorInfo`.
//!
//! From an RPC to its SQL in three hops: `create_debt_position` -> [`NewDebtPosition::validate`]
//! -> [`storage::insert_position`]; `invalidate_debt_position` -> [`state::check_invalidate`]
//! -> [`storage::write_state`]. The calls of payment providers are in [`PaymentProviderApi`],
//! the reconciliation flows in [`ReconciliationApi`], the ledger's verification in
//! [`LedgerApi`], the cost sharing among the members of an association in
//! [`CostSharingApi`].
//! Creating a position appends its recognition to the journal
//! ([`ledger::position_created`] -> [`storage::append_transaction`]) in the same transaction.
//!
//! The state sent is always the one in force now ([`state::effective_state`] on the clock's
//! date), so a position past its due dates reads EXPIRED without any job having run.

mod cost_sharing;
mod ledger_api;
mod provider;
mod reconciliation;
mod statistics;

pub use cost_sharing::CostSharingApi;
pub use ledger_api::LedgerApi;
pub use provider::PaymentProviderApi;
pub use reconciliation::ReconciliationApi;
pub use statistics::StatisticsApi;

use chrono::{Datelike, NaiveDate};
use tonic::{Code, Request, Response};
use tracing::{Span, field};
use unione_kit::names::parse_name;
use unione_kit::storage::timestamp;
use unione_kit::{ApiError, Database, Istat, Served, idempotency, pagination, principal};
use unione_proto::google::r#type::Date;
use unione_proto::payments::v1 as pb;
use unione_proto::payments::v1::debt_position_service_server::DebtPositionService;

use crate::clock::{self, Clock};
use crate::domain::ledger;
use crate::domain::notice::SegregationCode;
use crate::domain::state::{self, NoticeStatus};
use crate::domain::{
    DateParts, DebtPositionDraft, DomainError, NewDebtPosition, PaymentError, PaymentOptionDraft,
    PositionState, TransferDraft,
};
use crate::storage::{self, PageKey, StoreError, StoredPosition};

/// `comuni/{istat}`.
pub(crate) const COMUNE: &[&str] = &["comuni", "*"];
/// `comuni/{istat}/debtPositions/{id}`.
const POSITION: &[&str] = &["comuni", "*", "debtPositions", "*"];

/// Every rule the domain refuses is invalid input, on the field it names.
impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        ApiError::invalid(err.field(), err.reason(), err.to_string())
    }
}

/// A payment or a change the state machine refuses: FAILED_PRECONDITION with its reason;
/// a notice that cannot be paid says why in the metadata (`why`).
impl From<PaymentError> for ApiError {
    fn from(err: PaymentError) -> Self {
        let api = ApiError::failed_precondition(err.reason(), err.to_string());
        match err {
            PaymentError::NotPayable(status) => api.with_metadata("why", status.code()),
            PaymentError::FullPaymentAfterInstallment => {
                api.with_metadata("why", NoticeStatus::InstallmentPaid.code())
            }
            PaymentError::InvalidStateTransition { from, to } => api
                .with_metadata("from", from.code())
                .with_metadata("to", to.code()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Database(err) => err.into(),
            err @ StoreError::IuvSequenceExhausted { .. } => ApiError::new(
                Code::ResourceExhausted,
                "IUV_SEQUENCE_EXHAUSTED",
                err.to_string(),
            ),
        }
    }
}

/// The debt position service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct DebtPositionApi {
    db: Database,
    served: Served,
    clock: Clock,
}

impl DebtPositionApi {
    /// The handlers over a migrated database (see [`crate::migrations`]) for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self::with_clock(db, served, Clock::system())
    }

    /// The same, reading the time from `clock` (tests move it).
    pub fn with_clock(db: Database, served: Served, clock: Clock) -> Self {
        Self { db, served, clock }
    }

    #[tracing::instrument(
        name = "CreateDebtPosition",
        skip_all,
        fields(comune = field::Empty, debt_position = field::Empty)
    )]
    async fn create_inner(
        &self,
        request: Request<pb::CreateDebtPositionRequest>,
    ) -> Result<pb::DebtPosition, ApiError> {
        principal::refuse_citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        let profile = self.served.check(&metadata, &istat, "parent")?;
        let segregation = SegregationCode::parse(&profile.segregation_code).map_err(|_| {
            ApiError::failed_precondition(
                "COMUNE_NOT_CONFIGURED",
                format!("comuni/{istat} has no valid pagoPA segregation code on this node"),
            )
        })?;
        let position = req
            .debt_position
            .as_ref()
            .ok_or_else(|| ApiError::required("debt_position"))?;
        let new = NewDebtPosition::validate(draft_from_pb(position))?;

        // The fingerprint covers what the request asks for: not the key itself, nor the
        // output-only fields the contract says are ignored.
        let fingerprint = idempotency::fingerprint(&asked(&req));
        let scope = format!("payments/{}/CreateDebtPosition", istat.resource_name());
        let db = &self.db;
        let istat = &istat;
        let segregation = &segregation;
        let new = &new;
        let now = self.clock.now_micros();
        let created = idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let mut tx = db.begin_write().await?;
                let stored =
                    storage::insert_position(&mut tx, istat, segregation, new, now).await?;
                let recognised = ledger::position_created(&stored.id, &stored.ledger_options());
                storage::append_transaction(&mut tx, istat, &recognised, now).await?;
                let response = position_to_pb(istat, &stored, clock::today(now));
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(response)
            },
        )
        .await?;
        Span::current().record("debt_position", created.name.as_str());
        Ok(created)
    }

    #[tracing::instrument(
        name = "GetDebtPosition",
        skip_all,
        fields(comune = field::Empty, debt_position = field::Empty)
    )]
    async fn get_inner(
        &self,
        request: Request<pb::GetDebtPositionRequest>,
    ) -> Result<pb::DebtPosition, ApiError> {
        let citizen = principal::citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, POSITION)?;
        let id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("debt_position", id);
        self.served.check(&metadata, &istat, "name")?;
        // Another debtor's position is NOT_FOUND to a citizen, as a missing one.
        let stored = storage::get_position(&self.db, &istat, id)
            .await?
            .filter(|p| visible_to(citizen.as_deref(), p))
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        Ok(position_to_pb(
            &istat,
            &stored,
            clock::today(self.clock.now_micros()),
        ))
    }

    #[tracing::instrument(
        name = "InvalidateDebtPosition",
        skip_all,
        fields(comune = field::Empty, debt_position = field::Empty)
    )]
    async fn invalidate_inner(
        &self,
        request: Request<pb::InvalidateDebtPositionRequest>,
    ) -> Result<pb::DebtPosition, ApiError> {
        principal::refuse_citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, POSITION)?;
        let id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("debt_position", id);
        self.served.check(&metadata, &istat, "name")?;
        let now = self.clock.now_micros();
        let today = clock::today(now);
        let mut tx = self.db.begin_write().await?;
        if !storage::lock_position(&mut tx, &istat, id).await? {
            return Err(ApiError::not_found("name", &req.name));
        }
        let stored = storage::read_position(&mut tx, &istat, id)
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        if !req.etag.is_empty() && req.etag != stored.etag() {
            return Err(ApiError::new(
                Code::Aborted,
                "ETAG_MISMATCH",
                "the position changed since it was read; read it again",
            )
            .with_field("etag"));
        }
        state::check_invalidate(&stored.facts(), today)?;
        storage::write_state(&mut tx, &istat, id, PositionState::Invalid, now).await?;
        let after = storage::read_position(&mut tx, &istat, id)
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        tx.commit().await?;
        Ok(position_to_pb(&istat, &after, today))
    }

    #[tracing::instrument(name = "ListDebtPositions", skip_all, fields(comune = field::Empty))]
    async fn list_inner(
        &self,
        request: Request<pb::ListDebtPositionsRequest>,
    ) -> Result<pb::ListDebtPositionsResponse, ApiError> {
        let citizen = principal::citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let size = pagination::page_size(req.page_size)?;
        // A citizen's list holds only the positions where they are the debtor; their page
        // tokens are theirs alone.
        let scope = match &citizen {
            Some(cf) => format!("ListDebtPositions/{}/{cf}", istat.resource_name()),
            None => format!("ListDebtPositions/{}", istat.resource_name()),
        };
        let after: Option<PageKey> = pagination::decode_token(&scope, &req.page_token)?;
        let mut rows = match &citizen {
            Some(cf) => {
                storage::list_positions_of_debtor(&self.db, &istat, cf, after.as_ref(), size + 1)
                    .await?
            }
            None => storage::list_positions(&self.db, &istat, after.as_ref(), size + 1).await?,
        };
        let next_page_token =
            pagination::finish_page(&mut rows, size, &scope, StoredPosition::page_key);
        let today = clock::today(self.clock.now_micros());
        Ok(pb::ListDebtPositionsResponse {
            debt_positions: rows
                .iter()
                .map(|p| position_to_pb(&istat, p, today))
                .collect(),
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl DebtPositionService for DebtPositionApi {
    async fn create_debt_position(
        &self,
        request: Request<pb::CreateDebtPositionRequest>,
    ) -> Result<Response<pb::DebtPosition>, tonic::Status> {
        Ok(Response::new(self.create_inner(request).await?))
    }

    async fn get_debt_position(
        &self,
        request: Request<pb::GetDebtPositionRequest>,
    ) -> Result<Response<pb::DebtPosition>, tonic::Status> {
        Ok(Response::new(self.get_inner(request).await?))
    }

    async fn list_debt_positions(
        &self,
        request: Request<pb::ListDebtPositionsRequest>,
    ) -> Result<Response<pb::ListDebtPositionsResponse>, tonic::Status> {
        Ok(Response::new(self.list_inner(request).await?))
    }

    async fn invalidate_debt_position(
        &self,
        request: Request<pb::InvalidateDebtPositionRequest>,
    ) -> Result<Response<pb::DebtPosition>, tonic::Status> {
        Ok(Response::new(self.invalidate_inner(request).await?))
    }
}

/// Whether a position may be shown: to staff always, to a citizen (`citizen` is their codice
/// fiscale) only when they are its debtor. Handlers answer NOT_FOUND otherwise, as for a
/// missing one, so that another debtor's position is not revealed.
pub(crate) fn visible_to(citizen: Option<&str>, position: &StoredPosition) -> bool {
    citizen.is_none_or(|cf| position.debtor_fiscal_code == cf)
}

/// The request as far as it asks for something: without `request_id` and without the
/// output-only fields of the position.
fn asked(req: &pb::CreateDebtPositionRequest) -> pb::CreateDebtPositionRequest {
    let mut asked = req.clone();
    asked.request_id.clear();
    if let Some(p) = asked.debt_position.as_mut() {
        p.name.clear();
        p.state = 0;
        p.create_time = None;
        p.etag.clear();
        for option in &mut p.payment_options {
            option.iuv.clear();
            option.notice_number.clear();
            option.paid = false;
            for transfer in &mut option.transfers {
                transfer.index = 0;
                transfer.reported = false;
            }
        }
    }
    asked
}

/// The domain's input from the wire form; output-only fields are ignored.
fn draft_from_pb(p: &pb::DebtPosition) -> DebtPositionDraft {
    DebtPositionDraft {
        debtor_fiscal_code: p.debtor_fiscal_code.clone(),
        description: p.description.clone(),
        validity_date: p.validity_date.as_ref().map(date_parts),
        payment_options: p
            .payment_options
            .iter()
            .map(|o| PaymentOptionDraft {
                amount_cents: o.amount_cents,
                due_date: o.due_date.as_ref().map(date_parts),
                installment: o.installment,
                transfers: o
                    .transfers
                    .iter()
                    .map(|t| TransferDraft {
                        creditor_fiscal_code: t.creditor_fiscal_code.clone(),
                        iban: t.iban.clone(),
                        amount_cents: t.amount_cents,
                        remittance_information: t.remittance_information.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(crate) fn date_parts(d: &Date) -> DateParts {
    DateParts {
        year: d.year,
        month: d.month,
        day: d.day,
    }
}

/// The wire form of a civil date.
pub(crate) fn date_to_pb(d: NaiveDate) -> Date {
    Date {
        year: d.year(),
        month: i32::try_from(d.month()).expect("a month is 1 to 12"),
        day: i32::try_from(d.day()).expect("a day is 1 to 31"),
    }
}

pub(crate) fn state_to_pb(state: PositionState) -> pb::debt_position::State {
    use pb::debt_position::State as S;
    match state {
        PositionState::Draft => S::Draft,
        PositionState::Published => S::Published,
        PositionState::Valid => S::Valid,
        PositionState::PartiallyPaid => S::PartiallyPaid,
        PositionState::Paid => S::Paid,
        PositionState::Reported => S::Reported,
        PositionState::Expired => S::Expired,
        PositionState::Invalid => S::Invalid,
    }
}

/// The wire form of a stored position of `istat`, in the state in force on `today`.
pub fn position_to_pb(istat: &Istat, p: &StoredPosition, today: NaiveDate) -> pb::DebtPosition {
    pb::DebtPosition {
        name: format!("{}/debtPositions/{}", istat.resource_name(), p.id),
        debtor_fiscal_code: p.debtor_fiscal_code.clone(),
        description: p.description.clone(),
        state: state_to_pb(state::effective_state(&p.facts(), today)).into(),
        validity_date: p.validity_date.map(date_to_pb),
        payment_options: p
            .payment_options
            .iter()
            .map(|o| pb::PaymentOption {
                iuv: o.iuv.clone(),
                notice_number: o.notice_number.clone(),
                amount_cents: o.amount_cents,
                due_date: Some(date_to_pb(o.due_date)),
                installment: o.installment,
                paid: o.paid,
                transfers: o
                    .transfers
                    .iter()
                    .map(|t| pb::Transfer {
                        index: t.index,
                        creditor_fiscal_code: t.creditor_fiscal_code.clone(),
                        iban: t.iban.clone(),
                        amount_cents: t.amount_cents,
                        remittance_information: t.remittance_information.clone(),
                        reported: t.reported,
                    })
                    .collect(),
            })
            .collect(),
        create_time: Some(timestamp(p.create_time)),
        etag: p.etag(),
    }
}
