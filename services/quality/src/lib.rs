//! The quality office of Unione (DOMAIN.md "Quality and benchmarks"):
//!
//! - `unione.quality.v1.KpiService`: the federation's standard KPI catalogue and each comune's
//!   own KPIs, and the measurements of each comune per period, corrections kept in a history;
//! - `unione.quality.v1.SurveyService`: satisfaction surveys, anonymous responses, and their
//!   results (satisfaction index, NPS, "Mettiamoci la faccia" shares) with confidence
//!   intervals, suppressed below a minimum sample;
//! - `unione.quality.v1.ComplaintService`: complaints (ISO 10002) with deadlines from each
//!   comune's service charter, their status workflow and history, and indicators.
//!
//! Three layers, one direction: [`grpc`] (decode, check the comune, map errors) calls
//! [`domain`] (rules, the catalogue; no I/O) and [`storage`] (sqlx over the node's database).

pub mod domain;
pub mod grpc;
pub mod storage;

pub use grpc::complaints::ComplaintApi;
pub use grpc::surveys::SurveyApi;
pub use grpc::{Clock, KpiApi};
use unione_kit::{Database, Served};
use unione_proto::quality::v1::complaint_service_server::ComplaintServiceServer;
use unione_proto::quality::v1::kpi_service_server::KpiServiceServer;
use unione_proto::quality::v1::survey_service_server::SurveyServiceServer;

/// The service's migrations, to run on the node's database before serving.
pub fn migrations() -> unione_kit::storage::Migrations {
    storage::migrations()
}

/// The KPI service for the comuni in `served`, over a database already migrated with
/// [`migrations`].
pub fn service(db: Database, served: Served) -> KpiServiceServer<KpiApi> {
    KpiServiceServer::new(KpiApi::new(db, served))
}

/// The survey service for the comuni in `served`, over a database already migrated with
/// [`migrations`].
pub fn survey_service(db: Database, served: Served) -> SurveyServiceServer<SurveyApi> {
    SurveyServiceServer::new(SurveyApi::new(db, served))
}

/// The complaint service for the comuni in `served`, over a database already migrated with
/// [`migrations`].
pub fn complaint_service(db: Database, served: Served) -> ComplaintServiceServer<ComplaintApi> {
    ComplaintServiceServer::new(ComplaintApi::new(db, served))
}
