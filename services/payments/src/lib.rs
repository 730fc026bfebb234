//! The payments desk of Unione (`unione.payments.v1.DebtPositionService`): pagoPA-style debt
//! positions, each payment option with its IUV and 18-digit notice number (DOMAIN.md
//! "Payments").
//!
//! Three layers, one direction: [`grpc`] (decode, check the comune, map errors) calls
//! [`domain`] (rules; no I/O) and [`storage`] (sqlx over the node's database), which stores
//! the domain's validated values.
//!
//! Positions are created, read, listed and invalidated; their state follows the state machine
//! of DOMAIN.md (`domain::state`), derived from stored facts and the [`Clock`]. Payment
//! providers pay notices through `unione.payments.v1.PaymentProviderService`
//! ([`provider_service`]): verify, activate, send the receipt, get the sealed receipt.
//! Reconciliation flows ([`reconciliation_service`]) report the transfers of paid notices as
//! settled (REPORTED, rolling up to the position). Every movement of money is a balanced
//! double-entry transaction in the comune's journal, appended in the same database
//! transaction as the fact it records; [`ledger_service`] verifies the journal's invariants
//! (`domain::ledger` has the chart of accounts). A capofila shares the yearly cost of a
//! function among its member comuni and issues each share as a debt position
//! ([`cost_sharing_service`]; `domain::apportion` has the arithmetic).

pub mod clock;
pub mod domain;
pub mod grpc;
pub mod storage;

pub use clock::Clock;
pub use grpc::{
    CostSharingApi, DebtPositionApi, LedgerApi, PaymentProviderApi, ReconciliationApi,
    StatisticsApi,
};
use unione_kit::{Database, Served};
use unione_proto::payments::v1::cost_sharing_service_server::CostSharingServiceServer;
use unione_proto::payments::v1::debt_position_service_server::DebtPositionServiceServer;
use unione_proto::payments::v1::ledger_service_server::LedgerServiceServer;
use unione_proto::payments::v1::payment_provider_service_server::PaymentProviderServiceServer;
use unione_proto::payments::v1::payment_statistics_service_server::PaymentStatisticsServiceServer;
use unione_proto::payments::v1::reconciliation_service_server::ReconciliationServiceServer;

/// The service's migrations, to run on the node's database before serving.
pub fn migrations() -> unione_kit::storage::Migrations {
    storage::migrations()
}

/// The debt position service for the comuni in `served`, over a database already migrated
/// with [`migrations`].
pub fn service(db: Database, served: Served) -> DebtPositionServiceServer<DebtPositionApi> {
    DebtPositionServiceServer::new(DebtPositionApi::new(db, served))
}

/// The payment provider service (the calls a PSP makes) for the comuni in `served`, over a
/// database already migrated with [`migrations`].
pub fn provider_service(
    db: Database,
    served: Served,
) -> PaymentProviderServiceServer<PaymentProviderApi> {
    PaymentProviderServiceServer::new(PaymentProviderApi::new(db, served))
}

/// The reconciliation service (import reconciliation flows, get their results) for the comuni
/// in `served`, over a database already migrated with [`migrations`].
pub fn reconciliation_service(
    db: Database,
    served: Served,
) -> ReconciliationServiceServer<ReconciliationApi> {
    ReconciliationServiceServer::new(ReconciliationApi::new(db, served))
}

/// The ledger service (verify the journal's invariants) for the comuni in `served`, over a
/// database already migrated with [`migrations`].
pub fn ledger_service(db: Database, served: Served) -> LedgerServiceServer<LedgerApi> {
    LedgerServiceServer::new(LedgerApi::new(db, served))
}

/// The cost sharing service (apportion a shared cost among the members of an association,
/// issue the shares as debt positions) for the comuni in `served`, each as capofila, over a
/// database already migrated with [`migrations`].
pub fn cost_sharing_service(
    db: Database,
    served: Served,
) -> CostSharingServiceServer<CostSharingApi> {
    CostSharingServiceServer::new(CostSharingApi::new(db, served))
}

/// The payment statistics service (counts and sums of the options falling due in a range of
/// days, for the quality office's indicators) for the comuni in `served`, over a database
/// already migrated with [`migrations`]. From an RPC to its SQL: `grpc::StatisticsApi` ->
/// `domain::statistics` -> `storage::statistics`.
pub fn statistics_service(
    db: Database,
    served: Served,
) -> PaymentStatisticsServiceServer<StatisticsApi> {
    PaymentStatisticsServiceServer::new(StatisticsApi::new(db, served))
}
