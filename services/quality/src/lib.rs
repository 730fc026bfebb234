//! The quality office of Unione (`unione.quality.v1.KpiService`): the federation's standard
//! KPI catalogue and each comune's own KPIs, and the measurements of each comune per period,
//! corrections kept in a history (DOMAIN.md "Quality and benchmarks").
//!
//! Three layers, one direction: [`grpc`] (decode, check the comune, map errors) calls
//! [`domain`] (rules, the catalogue; no I/O) and [`storage`] (sqlx over the node's database).

pub mod domain;
pub mod grpc;
pub mod storage;

pub use grpc::KpiApi;
use unione_kit::{Database, Served};
use unione_proto::quality::v1::kpi_service_server::KpiServiceServer;

/// The service's migrations, to run on the node's database before serving.
pub fn migrations() -> unione_kit::storage::Migrations {
    storage::migrations()
}

/// The KPI service for the comuni in `served`, over a database already migrated with
/// [`migrations`].
pub fn service(db: Database, served: Served) -> KpiServiceServer<KpiApi> {
    KpiServiceServer::new(KpiApi::new(db, served))
}
