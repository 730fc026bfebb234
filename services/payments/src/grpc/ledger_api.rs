//! The gRPC handler of `unione.payments.v1.LedgerService`: `verify_ledger` ->
//! [`ledger::verify`] over [`storage::load_journal`]. The journal itself is written by the
//! other services' handlers, each inside the transaction of the fact it records.

use tonic::{Request, Response};
use tracing::{Span, field};
use unione_kit::names::parse_name;
use unione_kit::{ApiError, Database, Served};
use unione_proto::payments::v1 as pb;
use unione_proto::payments::v1::ledger_service_server::LedgerService;

use super::COMUNE;
use crate::domain::ledger::{self, Breach, BreachKind};
use crate::storage;

/// The ledger service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct LedgerApi {
    db: Database,
    served: Served,
}

impl LedgerApi {
    /// The handlers over a migrated database (see [`crate::migrations`]) for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self { db, served }
    }

    #[tracing::instrument(name = "VerifyLedger", skip_all, fields(comune = field::Empty))]
    async fn verify_inner(
        &self,
        request: Request<pb::VerifyLedgerRequest>,
    ) -> Result<pb::VerifyLedgerResponse, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let (entries, receipts) = storage::load_journal(&self.db, &istat).await?;
        let v = ledger::verify(&entries, &receipts);
        if !v.breaches.is_empty() {
            tracing::warn!(breaches = v.breaches.len(), "the ledger does not verify");
        }
        Ok(pb::VerifyLedgerResponse {
            verified: v.breaches.is_empty(),
            transaction_count: v.transaction_count,
            entry_count: v.entry_count,
            total_debit_cents: v.total_debit_cents,
            total_credit_cents: v.total_credit_cents,
            receipt_count: v.receipt_count,
            receipt_total_cents: v.receipt_total_cents,
            clearing_debit_cents: v.clearing_debit_cents,
            breaches: v.breaches.iter().map(breach_to_pb).collect(),
        })
    }
}

#[tonic::async_trait]
impl LedgerService for LedgerApi {
    async fn verify_ledger(
        &self,
        request: Request<pb::VerifyLedgerRequest>,
    ) -> Result<Response<pb::VerifyLedgerResponse>, tonic::Status> {
        Ok(Response::new(self.verify_inner(request).await?))
    }
}

fn breach_to_pb(b: &Breach) -> pb::LedgerBreach {
    use pb::ledger_breach::Kind;
    pb::LedgerBreach {
        kind: match b.kind {
            BreachKind::UnbalancedTransaction => Kind::UnbalancedTransaction,
            BreachKind::OverpaidPosition => Kind::OverpaidPosition,
            BreachKind::ReceiptMismatch => Kind::ReceiptMismatch,
        }
        .into(),
        transaction_id: b.transaction_id.clone(),
        account: b.account.clone(),
        iuv: b.iuv.clone(),
        expected_cents: b.expected_cents,
        actual_cents: b.actual_cents,
        detail: b.detail(),
    }
}
