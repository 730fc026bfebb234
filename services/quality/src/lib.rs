//! The quality office of Unione (DOMAIN.md "Quality and benchmarks"):
//!
//! - `unione.quality.v1.KpiService`: the federation's standard KPI catalogue and each comune's
//!   own KPIs, and the measurements of each comune per period, corrections kept in a history;
//! - `unione.quality.v1.SurveyService`: satisfaction surveys, anonymous responses, and their
//!   results (satisfaction index, NPS, "Mettiamoci la faccia" shares) with confidence
//!   intervals, suppressed below a minimum sample;
//! - `unione.quality.v1.ComplaintService`: complaints (ISO 10002) with deadlines from each
//!   comune's service charter, their status workflow and history, and indicators;
//! - `unione.quality.v1.ImprovementService`: quality objectives (ISO 9001:2015 6.2),
//!   nonconformities and corrective actions with the check of their effectiveness (10.2), every
//!   change kept with its actor;
//! - `unione.quality.v1.ReviewService`: the management review of a period (9.3), structured and
//!   as an HTML document, and the open data export of measurements (CSV, JSON; CC BY).
//!
//! Three layers, one direction: [`grpc`] (decode, check the comune, map errors) calls
//! [`domain`] (rules, the catalogue; no I/O) and [`storage`] (sqlx over the node's database).

pub mod domain;
pub mod grpc;
pub mod storage;

pub use grpc::complaints::ComplaintApi;
pub use grpc::improvement::ImprovementApi;
pub use grpc::review::ReviewApi;
pub use grpc::surveys::SurveyApi;
pub use grpc::{Clock, KpiApi};
use unione_kit::{Database, Served};
use unione_proto::quality::v1::complaint_service_server::ComplaintServiceServer;
use unione_proto::quality::v1::improvement_service_server::ImprovementServiceServer;
use unione_proto::quality::v1::kpi_service_server::KpiServiceServer;
use unione_proto::quality::v1::review_service_server::ReviewServiceServer;
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

/// The improvement service (objectives, nonconformities, corrective actions) for the comuni in
/// `served`, over a database already migrated with [`migrations`].
pub fn improvement_service(
    db: Database,
    served: Served,
) -> ImprovementServiceServer<ImprovementApi> {
    ImprovementServiceServer::new(ImprovementApi::new(db, served))
}

/// The review service (management review, open data export) for the comuni in `served`, over a
/// database already migrated with [`migrations`].
pub fn review_service(db: Database, served: Served) -> ReviewServiceServer<ReviewApi> {
    ReviewServiceServer::new(ReviewApi::new(db, served))
}
