//! The payments desk of Unione (`unione.payments.v1.DebtPositionService`): pagoPA-style debt
//! positions, each payment option with its IUV and 18-digit notice number (DOMAIN.md
//! "Payments").
//!
//! Three layers, one direction: [`grpc`] (decode, check the comune, map errors) calls
//! [`domain`] (rules; no I/O) and [`storage`] (sqlx over the node's database), which stores
//! the domain's validated values.
//!
//! This is the foundation: positions are created, read and listed; every new position is
//! created VALID (payable). Publication, expiry, payment, reporting and invalidation come later.

pub mod domain;
pub mod grpc;
pub mod storage;

pub use grpc::DebtPositionApi;
use unione_kit::{Database, Served};
use unione_proto::payments::v1::debt_position_service_server::DebtPositionServiceServer;

/// The service's migrations, to run on the node's database before serving.
pub fn migrations() -> unione_kit::storage::Migrations {
    storage::migrations()
}

/// The debt position service for the comuni in `served`, over a database already migrated
/// with [`migrations`].
pub fn service(db: Database, served: Served) -> DebtPositionServiceServer<DebtPositionApi> {
    DebtPositionServiceServer::new(DebtPositionApi::new(db, served))
}
