//! The gRPC handlers of `unione.payments.v1.ReconciliationService`: import a reconciliation
//! flow, get its result.
//!
//! From an RPC to its SQL in three hops: `import_reconciliation_flow` -> [`Flow::validate`]
//! (totals) and [`reconciliation::reconcile`] (matching) -> [`storage::insert_flow`],
//! [`storage::insert_reported_transfer`], [`storage::write_state`] (REPORTED) and
//! [`storage::append_transaction`] (the settlement), all in one `begin_write()` transaction:
//! a flow is imported whole or not at all. The primary key (comune, flow id) makes a second
//! import of the same id find the first: the same content replays its result, other content
//! is refused.

use std::collections::BTreeMap;

use tonic::{Code, Request, Response};
use tracing::{Span, field};
use unione_kit::names::parse_name;
use unione_kit::storage::timestamp;
use unione_kit::{ApiError, Database, Istat, Served};
use unione_proto::payments::v1 as pb;
use unione_proto::payments::v1::reconciliation_service_server::ReconciliationService;

use super::{COMUNE, date_parts};
use crate::clock::{self, Clock};
use crate::domain::ledger;
use crate::domain::reconciliation::{
    self, ExceptionKind, Flow, FlowDraft, FlowException, FlowLine, FlowLineDraft,
};
use crate::domain::state;
use crate::storage;

/// `comuni/{istat}/reconciliationFlows/{flow_id}`.
const FLOW: &[&str] = &["comuni", "*", "reconciliationFlows", "*"];

/// The reconciliation service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct ReconciliationApi {
    db: Database,
    served: Served,
    clock: Clock,
}

/// How one attempt at importing ended: an answer, or beaten to the flow id (or a transfer) by
/// a concurrent import, in which case a second attempt sees what it wrote.
enum ImportError {
    Api(ApiError),
    Raced,
}

impl From<ApiError> for ImportError {
    fn from(err: ApiError) -> Self {
        Self::Api(err)
    }
}

impl From<sqlx::Error> for ImportError {
    fn from(err: sqlx::Error) -> Self {
        if storage::is_unique_violation(&err) {
            Self::Raced
        } else {
            Self::Api(err.into())
        }
    }
}

impl ReconciliationApi {
    /// The handlers over a migrated database (see [`crate::migrations`]) for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self::with_clock(db, served, Clock::system())
    }

    /// The same, reading the time from `clock` (tests move it).
    pub fn with_clock(db: Database, served: Served, clock: Clock) -> Self {
        Self { db, served, clock }
    }

    #[tracing::instrument(
        name = "ImportReconciliationFlow",
        skip_all,
        fields(comune = field::Empty, flow = field::Empty)
    )]
    async fn import_inner(
        &self,
        request: Request<pb::ImportReconciliationFlowRequest>,
    ) -> Result<pb::ReconciliationFlow, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        let profile = self.served.check(&metadata, &istat, "parent")?;
        let flow = req
            .flow
            .as_ref()
            .ok_or_else(|| ApiError::required("flow"))?;
        let header = flow
            .header
            .as_ref()
            .ok_or_else(|| ApiError::required("flow.header"))?;
        let totals = flow
            .totals
            .as_ref()
            .ok_or_else(|| ApiError::required("flow.totals"))?;
        let flow = Flow::validate(
            draft_from_pb(header, totals, &flow.lines),
            &profile.fiscal_code,
        )?;
        Span::current().record("flow", flow.flow_id.as_str());
        for attempt in 0.. {
            match self.import_once(&istat, header, totals, &flow).await {
                Ok(result) => return Ok(result),
                Err(ImportError::Api(err)) => return Err(err),
                Err(ImportError::Raced) if attempt < 2 => continue,
                Err(ImportError::Raced) => {
                    return Err(ApiError::new(
                        Code::Aborted,
                        "CONCURRENT_IMPORT",
                        "another import of this flow or its transfers is in progress; retry",
                    ));
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// One attempt at importing, in one write transaction.
    async fn import_once(
        &self,
        istat: &Istat,
        header: &pb::FlowHeader,
        totals: &pb::FlowTotals,
        flow: &Flow,
    ) -> Result<pb::ReconciliationFlow, ImportError> {
        let now = self.clock.now_micros();
        let today = clock::today(now);
        let mut tx = self.db.begin_write().await?;
        if let Some(earlier) = storage::find_flow(&mut tx, istat, &flow.flow_id).await? {
            if earlier.fingerprint != flow.fingerprint() {
                return Err(ApiError::new(
                    Code::AlreadyExists,
                    "FLOW_ID_REUSED",
                    "a flow with this id and other content was already imported",
                )
                .with_field("flow.header.flow_id")
                .into());
            }
            let first = prost::Message::decode(earlier.response.as_slice())
                .map_err(|e| ApiError::internal(&e))?;
            return Ok(first);
        }

        let notices = storage::notice_facts(&mut tx, istat, &flow.iuvs()).await?;
        let result = reconciliation::reconcile(flow, &notices);

        // The positions whose transfers this flow reports, locked, and those it completes.
        let mut touched: BTreeMap<&str, Vec<(&str, i32)>> = BTreeMap::new();
        for m in &result.matched {
            touched
                .entry(m.position_id.as_str())
                .or_default()
                .push((m.iuv.as_str(), m.transfer_index));
        }
        let mut reported = Vec::new();
        for (position_id, transfers) in &touched {
            storage::lock_position(&mut tx, istat, position_id).await?;
            let Some(mut position) = storage::read_position(&mut tx, istat, position_id).await?
            else {
                continue;
            };
            for option in &mut position.payment_options {
                for t in &mut option.transfers {
                    if transfers.contains(&(option.iuv.as_str(), t.index)) {
                        t.reported = true;
                    }
                }
            }
            let after = state::state_after_reporting(
                &position.facts(),
                today,
                position.paid_transfers_all_reported(),
            );
            if let Some(after) = after {
                reported.push(((*position_id).to_owned(), after));
            }
        }

        let response = pb::ReconciliationFlow {
            name: format!(
                "{}/reconciliationFlows/{}",
                istat.resource_name(),
                flow.flow_id
            ),
            header: Some(header.clone()),
            totals: Some(*totals),
            lines: Vec::new(),
            matched_count: i64::try_from(result.matched.len()).unwrap_or(i64::MAX),
            matched_amount_cents: result.matched_cents(),
            exceptions: result.exceptions.iter().map(exception_to_pb).collect(),
            reported_positions: reported
                .iter()
                .map(|(id, _)| format!("{}/debtPositions/{id}", istat.resource_name()))
                .collect(),
            import_time: Some(timestamp(now)),
        };
        let encoded = prost::Message::encode_to_vec(&response);
        storage::insert_flow(&mut tx, istat, flow, &result, &encoded, now).await?;
        for m in &result.matched {
            storage::insert_reported_transfer(&mut tx, istat, &flow.flow_id, m, now).await?;
        }
        for (position_id, after) in &reported {
            storage::write_state(&mut tx, istat, position_id, *after, now).await?;
        }
        let settled: Vec<(String, i64)> = result
            .matched
            .iter()
            .map(|m| (m.iban.clone(), m.amount_cents))
            .collect();
        if let Some(t) = ledger::flow_settled(&flow.flow_id, &flow.psp_id, &settled) {
            storage::append_transaction(&mut tx, istat, &t, now).await?;
        }
        tx.commit().await?;
        Ok(response)
    }

    #[tracing::instrument(
        name = "GetReconciliationFlow",
        skip_all,
        fields(comune = field::Empty, flow = field::Empty)
    )]
    async fn get_inner(
        &self,
        request: Request<pb::GetReconciliationFlowRequest>,
    ) -> Result<pb::ReconciliationFlow, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, FLOW)?;
        let flow_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("flow", flow_id);
        self.served.check(&metadata, &istat, "name")?;
        let response = storage::get_flow_response(&self.db, &istat, flow_id)
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        prost::Message::decode(response.as_slice()).map_err(|e| ApiError::internal(&e))
    }
}

#[tonic::async_trait]
impl ReconciliationService for ReconciliationApi {
    async fn import_reconciliation_flow(
        &self,
        request: Request<pb::ImportReconciliationFlowRequest>,
    ) -> Result<Response<pb::ReconciliationFlow>, tonic::Status> {
        Ok(Response::new(self.import_inner(request).await?))
    }

    async fn get_reconciliation_flow(
        &self,
        request: Request<pb::GetReconciliationFlowRequest>,
    ) -> Result<Response<pb::ReconciliationFlow>, tonic::Status> {
        Ok(Response::new(self.get_inner(request).await?))
    }
}

/// The domain's input from the wire form.
fn draft_from_pb(
    header: &pb::FlowHeader,
    totals: &pb::FlowTotals,
    lines: &[pb::FlowLine],
) -> FlowDraft {
    FlowDraft {
        flow_id: header.flow_id.clone(),
        flow_date: header.flow_date.as_ref().map(date_parts),
        psp_id: header.psp_id.clone(),
        settlement_reference: header.settlement_reference.clone(),
        creditor_fiscal_code: header.creditor_fiscal_code.clone(),
        total_count: totals.count,
        total_amount_cents: totals.amount_cents,
        lines: lines
            .iter()
            .map(|l| FlowLineDraft {
                iuv: l.iuv.clone(),
                receipt_id: l.receipt_id.clone(),
                transfer_index: l.transfer_index,
                amount_cents: l.amount_cents,
                outcome: l.outcome,
            })
            .collect(),
    }
}

fn line_to_pb(l: &FlowLine) -> pb::FlowLine {
    pb::FlowLine {
        iuv: l.iuv.clone(),
        receipt_id: l.receipt_id.clone(),
        transfer_index: l.transfer_index,
        amount_cents: l.amount_cents,
        outcome: l.outcome.code(),
    }
}

fn exception_to_pb(e: &FlowException) -> pb::ReconciliationException {
    use pb::reconciliation_exception::Kind;
    pb::ReconciliationException {
        kind: match e.kind {
            ExceptionKind::UnknownIuv => Kind::UnknownIuv,
            ExceptionKind::AmountMismatch => Kind::AmountMismatch,
            ExceptionKind::LineWithoutReceipt => Kind::LineWithoutReceipt,
            ExceptionKind::Revoked => Kind::Revoked,
            ExceptionKind::DuplicateLine => Kind::DuplicateLine,
            ExceptionKind::UnknownTransfer => Kind::UnknownTransfer,
        }
        .into(),
        line: Some(line_to_pb(&e.line)),
        expected_amount_cents: e.expected_amount_cents.unwrap_or(0),
    }
}
