//! What moves when the quality office of one comune moves to another node (`unione export` /
//! `unione import`; the machinery is `unione_kit::transfer`): the comune's own KPIs, its
//! measurements with their history and computations, surveys with their anonymous
//! responses, the service charter, complaints with their history, objectives,
//! nonconformities and corrective actions, parents before children, each scoped by its `comune` column, and the quality
//! idempotency keys for the comune. The standard KPI catalogue is code, the same everywhere.

use unione_kit::transfer::{Service, Table};

/// The quality office's data of one comune.
pub const TABLES: &[Table] = &[
    Table::by_comune("quality_local_kpis"),
    Table::by_comune("quality_measurements"),
    Table::by_comune("quality_measurement_history"),
    Table::by_comune("quality_computations"),
    Table::by_comune("quality_surveys"),
    Table::by_comune("quality_survey_questions"),
    Table::by_comune("quality_survey_responses"),
    Table::by_comune("quality_survey_answers"),
    Table::by_comune("quality_service_charters"),
    Table::by_comune("quality_complaints"),
    Table::by_comune("quality_complaint_history"),
    Table::by_comune("quality_objectives"),
    Table::by_comune("quality_nonconformities"),
    Table::by_comune("quality_corrective_actions"),
    Table::by_comune("quality_improvement_history"),
    Table::idempotency_keys("quality/comuni/"),
];

/// The quality service, for `unione_kit::transfer::{export, import}`.
pub fn service() -> Service {
    Service {
        name: "quality",
        migrations: crate::storage::migrations,
        prefixes: &["quality_"],
        tables: TABLES,
    }
}
